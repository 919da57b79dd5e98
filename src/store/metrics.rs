//! The mount's counters, shown by `cosfuse stats MOUNTPOINT` and logged at unmount: requests by
//! COS operation and outcome with their latency (p50/p99 from a fixed histogram), bytes up and
//! down, named counters (cache hits and misses), and errors by errno. Operation names are COS's
//! (the emulator's `/-/stats` uses the same ones), one count per call of the store (the COS
//! client's own retries of a call are inside it).
//!
//! Locking: one std mutex, a leaf lock, never held across `.await`; errno counts are atomics
//! because errors are counted where they are logged (`fs::error`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Upper bounds of the latency histogram's buckets, in milliseconds (the last is open).
const BUCKETS_MS: [u64; 15] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000,
];

/// Errors by errno, counted where `fs::error` logs them (errno values are small).
static ERRNOS: [AtomicU64; 160] = [const { AtomicU64::new(0) }; 160];

/// Counts one error reply with this errno.
pub fn count_errno(errno: i32) {
    if let Some(c) = usize::try_from(errno).ok().and_then(|i| ERRNOS.get(i)) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// One operation's numbers.
#[derive(Debug, Default, Clone)]
struct Op {
    /// Successful calls.
    ok: u64,
    /// Failed calls by outcome (the error's kind).
    failed: BTreeMap<String, u64>,
    /// Latency histogram (`BUCKETS_MS`, plus one open bucket).
    hist: [u64; 16],
}

/// Everything behind the mutex.
#[derive(Debug, Default)]
struct Inner {
    /// By COS operation name.
    ops: BTreeMap<&'static str, Op>,
    /// Bytes sent in request bodies.
    bytes_up: u64,
    /// Bytes received in object bodies.
    bytes_down: u64,
}

/// The counters (see module doc).
#[derive(Debug, Default)]
pub struct Metrics {
    /// State; leaf lock.
    inner: Mutex<Inner>,
    /// Attribute-cache hits: counted on every lookup, so an atomic, not the mutex.
    attr_hits: AtomicU64,
    /// Attribute-cache misses (stale or unknown).
    attr_misses: AtomicU64,
}

/// One operation in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpView {
    /// Successful calls.
    pub ok: u64,
    /// Failed calls by outcome.
    pub failed: BTreeMap<String, u64>,
    /// Median latency, ms (a histogram bucket's upper bound).
    pub p50_ms: u64,
    /// 99th percentile latency, ms (a histogram bucket's upper bound).
    pub p99_ms: u64,
}

/// A snapshot of the counters, as `cosfuse stats` prints it (and `--json` emits it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsView {
    /// Requests by COS operation.
    pub requests: BTreeMap<String, OpView>,
    /// Bytes sent to COS.
    pub bytes_up: u64,
    /// Bytes received from COS.
    pub bytes_down: u64,
    /// Named counters (cache hits and misses, ...).
    pub counters: BTreeMap<String, u64>,
    /// Error replies by errno name (`ENOENT`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Uploads queued, running or waiting for a retry.
    pub queue_depth: u64,
}

/// The kind of a store error, as an outcome name.
fn outcome(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound(_) => "NotFound",
        StoreError::NoSuchBucket(_) => "NoSuchBucket",
        StoreError::PreconditionFailed(_) => "PreconditionFailed",
        StoreError::Archived { .. } => "InvalidObjectState",
        StoreError::AccessDenied { .. } => "AccessDenied",
        StoreError::InvalidName(_) => "InvalidObjectName",
        StoreError::KeyTooLong(_) => "KeyTooLong",
        StoreError::TooLarge(_) => "EntityTooLarge",
        StoreError::InvalidRequest { .. } => "InvalidRequest",
        StoreError::Conflict { .. } => "Conflict",
        StoreError::NotSupported(_) => "NotSupported",
        StoreError::Unavailable { .. } => "Unavailable",
        StoreError::Network(_) => "Network",
        StoreError::Protocol(_) => "Protocol",
        StoreError::Io(_) => "Io",
    }
}

fn errno_name(n: usize) -> String {
    let name = match n as i32 {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EACCES => "EACCES",
        libc::EAGAIN => "EAGAIN",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::ESTALE => "ESTALE",
        libc::E2BIG => "E2BIG",
        libc::EBUSY => "EBUSY",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => return format!("errno {n}"),
    };
    name.to_string()
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one call of `op` that took `elapsed`.
    pub fn record(&self, op: &'static str, result: Result<(), &StoreError>, elapsed: Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(BUCKETS_MS.len());
        let mut g = self.lock();
        let o = g.ops.entry(op).or_default();
        o.hist[bucket] += 1;
        match result {
            Ok(()) => o.ok += 1,
            Err(e) => *o.failed.entry(outcome(e).to_string()).or_default() += 1,
        }
    }

    /// Adds transferred bytes.
    pub fn bytes(&self, up: u64, down: u64) {
        let mut g = self.lock();
        g.bytes_up += up;
        g.bytes_down += down;
    }

    /// Counts one attribute-cache answer (a lookup's hot path: lock-free).
    pub fn attr_cache(&self, hit: bool) {
        let c = if hit {
            &self.attr_hits
        } else {
            &self.attr_misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now (`queue_depth` is the caller's to fill).
    pub fn snapshot(&self) -> StatsView {
        let g = self.lock();
        let quantile = |h: &[u64; 16], q: f64| -> u64 {
            let total: u64 = h.iter().sum();
            let want = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut acc = 0;
            for (i, n) in h.iter().enumerate() {
                acc += n;
                if acc >= want {
                    return BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX);
                }
            }
            0
        };
        StatsView {
            requests: g
                .ops
                .iter()
                .map(|(k, o)| {
                    let v = OpView {
                        ok: o.ok,
                        failed: o.failed.clone(),
                        p50_ms: quantile(&o.hist, 0.5),
                        p99_ms: quantile(&o.hist, 0.99),
                    };
                    (k.to_string(), v)
                })
                .collect(),
            bytes_up: g.bytes_up,
            bytes_down: g.bytes_down,
            counters: BTreeMap::from([
                (
                    "attr_cache_hit".to_string(),
                    self.attr_hits.load(Ordering::Relaxed),
                ),
                (
                    "attr_cache_miss".to_string(),
                    self.attr_misses.load(Ordering::Relaxed),
                ),
            ]),
            errors: ERRNOS
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let n = c.load(Ordering::Relaxed);
                    (n > 0).then(|| (errno_name(i), n))
                })
                .collect(),
            queue_depth: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_bytes_and_quantiles() {
        let m = Metrics::default();
        for ms in [1, 3, 3, 3, 40] {
            m.record("GetObject", Ok(()), Duration::from_millis(ms));
        }
        m.record(
            "HeadObject",
            Err(&StoreError::NotFound("k".into())),
            Duration::from_millis(1),
        );
        m.bytes(10, 20);
        m.attr_cache(true);
        let s = m.snapshot();
        let g = &s.requests["GetObject"];
        assert_eq!((g.ok, g.p50_ms, g.p99_ms), (5, 5, 50));
        assert_eq!(s.requests["HeadObject"].failed["NotFound"], 1);
        assert_eq!((s.bytes_up, s.bytes_down), (10, 20));
        assert_eq!(s.counters["attr_cache_hit"], 1);
    }
}
