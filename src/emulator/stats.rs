//! Per-operation request counters, served as JSON at `GET /-/stats` (COS API operation names),
//! so tests can assert how many requests a workload costs.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counters by COS operation name (`GetBucket`, `PutObject`, ...).
#[derive(Debug, Default)]
pub struct Stats {
    /// Counts; std mutex, held only to bump or copy.
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    /// Adds one request of operation `op`.
    pub fn bump(&self, op: &'static str) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry(op).or_insert(0) += 1;
    }

    /// Count for one operation (0 when never seen).
    pub fn get(&self, op: &str) -> u64 {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.get(op).copied().unwrap_or(0)
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// `{"requests": {...}}`, every known operation listed (zero when unused).
    pub fn to_json(&self) -> String {
        self.to_json_with_faults(None)
    }

    /// `to_json`, plus `"faults_injected": N` when given (soak reports).
    pub fn to_json_with_faults(&self, faults: Option<u64>) -> String {
        let snap = self.snapshot();
        let mut m = serde_json::Map::new();
        for op in OPERATIONS {
            m.insert(op.to_string(), snap.get(*op).copied().unwrap_or(0).into());
        }
        for (k, v) in snap {
            m.insert(k, v.into());
        }
        match faults {
            Some(n) => serde_json::json!({ "requests": m, "faults_injected": n }).to_string(),
            None => serde_json::json!({ "requests": m }).to_string(),
        }
    }
}

/// Every operation name the emulator counts.
pub const OPERATIONS: &[&str] = &[
    "GetBucket",
    "HeadBucket",
    "PutBucket",
    "DeleteBucket",
    "HeadObject",
    "GetObject",
    "PutObject",
    "PostObject",
    "PutObjectCopy",
    "DeleteObject",
    "DeleteMultipleObjects",
    "InitiateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "ListMultipartUploads",
    "PutObjectACL",
    "GetObjectACL",
    "PostObjectRestore",
    "OptionsObject",
    "PutBucketCORS",
    "GetBucketCORS",
    "DeleteBucketCORS",
    "GetBucketLocation",
    "GetBucketVersioning",
    "GetBucketACL",
    "PutBucketACL",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let s = Stats::default();
        s.bump("GetObject");
        s.bump("GetObject");
        assert_eq!(s.get("GetObject"), 2);
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["requests"]["GetObject"], 2);
        assert_eq!(v["requests"]["PutObject"], 0);
        s.reset();
        assert_eq!(s.get("GetObject"), 0);
    }
}
