//! Bounded fault injection, off by default: added latency per request, a `503 SlowDown` every
//! Nth bucket request, a connection dropped mid-body every Nth GET/PUT of object data, and an
//! `<Error>` inside an HTTP 200 answer every Nth copy/complete. `limit` caps how many faults
//! (503s, drops, 200-errors) are injected in total, so a test can never loop forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Fault settings; zero / None means off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Latency added before answering every bucket request, in ms.
    pub latency_ms: u64,
    /// Answer every Nth bucket request with 503 SlowDown (0 = never).
    pub slowdown_every: u64,
    /// Drop the connection mid-body on every Nth object GET/PUT (0 = never).
    pub drop_every: u64,
    /// Answer every Nth copy / complete-multipart with HTTP 200 + `<Error>` (0 = never).
    pub error_in_200_every: u64,
    /// Maximum number of injected faults in total (None = unbounded).
    pub limit: Option<u64>,
}

/// Live fault switches plus the counters that pick the Nth request.
#[derive(Debug, Default)]
pub struct Faults {
    /// Current settings; std mutex, copied out before any `.await`.
    config: Mutex<FaultConfig>,
    /// Bucket requests seen (for `slowdown_every`).
    requests: AtomicU64,
    /// Object data GET/PUTs seen (for `drop_every`).
    transfers: AtomicU64,
    /// Copy / complete requests seen (for `error_in_200_every`).
    long_ops: AtomicU64,
    /// Faults injected so far (for `limit`).
    injected: AtomicU64,
}

impl Faults {
    /// Switches with the given initial settings.
    pub fn new(config: FaultConfig) -> Faults {
        Faults {
            config: Mutex::new(config),
            ..Faults::default()
        }
    }

    /// Replaces the settings and restarts the Nth-request counters.
    pub fn set(&self, config: FaultConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
        for c in [
            &self.requests,
            &self.transfers,
            &self.long_ops,
            &self.injected,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.set(FaultConfig::default());
    }

    /// The current settings.
    pub fn config(&self) -> FaultConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many faults were injected since the last `set`.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Latency to add to this request.
    pub fn latency(&self) -> Option<Duration> {
        let ms = self.config().latency_ms;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    fn nth(&self, counter: &AtomicU64, every: u64) -> bool {
        if every == 0 {
            return false;
        }
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(every) {
            return false;
        }
        let limit = self.config().limit.unwrap_or(u64::MAX);
        let prev = self.injected.fetch_add(1, Ordering::Relaxed);
        if prev >= limit {
            self.injected.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// True when this bucket request must get a 503 SlowDown.
    pub fn slowdown_now(&self) -> bool {
        let every = self.config().slowdown_every;
        self.nth(&self.requests, every)
    }

    /// True when this object GET/PUT must lose its connection mid-body.
    pub fn drop_now(&self) -> bool {
        let every = self.config().drop_every;
        self.nth(&self.transfers, every)
    }

    /// True when this copy/complete must answer 200 with an `<Error>` body.
    pub fn error_in_200_now(&self) -> bool {
        let every = self.config().error_in_200_every;
        self.nth(&self.long_ops, every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_and_bounded() {
        let f = Faults::new(FaultConfig {
            slowdown_every: 2,
            limit: Some(2),
            ..FaultConfig::default()
        });
        let hits: Vec<bool> = (0..8).map(|_| f.slowdown_now()).collect();
        assert_eq!(hits, [false, true, false, true, false, false, false, false]);
        assert_eq!(f.injected(), 2);
        f.clear();
        assert!(!f.slowdown_now() && !f.slowdown_now());
    }
}
