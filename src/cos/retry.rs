//! The one retry policy of cosfuse's COS traffic, as data, and the pure decision of what to do
//! after a failed attempt. Every COS request goes through `CosClient::execute`, which applies
//! this policy; nothing above the client should retry transient COS errors again (that
//! multiplies the attempts and stacks two backoffs).
//!
//! Policy (docs/protocol.md §5.2, "Retries"):
//! - **What:** 503 and `SlowDown` for every method — COS did not execute a request it answered
//!   that way, so even Initiate/Complete Multipart and POSTs are safe to resend (Tencent's
//!   Python SDK does the same). Other 5xx and dropped connections only for idempotent requests
//!   (the request may have run); a connection never established, always. The
//!   HTTP-200-with-`<Error>` answers of copy/complete whose code is InternalError, SlowDown or
//!   ServiceUnavailable (the server says the work did not happen). Never other 4xx; a
//!   clock-skew refusal ("Request has expired", RequestTimeTooSkewed) earns one resync.
//! - **How often:** at most `max_attempts` attempts in all, and no retry that would start after
//!   `max_elapsed` since the first attempt began.
//! - **How long between:** exponential backoff (`base_delay · 2^(n-1)`, capped at `max_delay`)
//!   with full jitter (a uniformly random fraction of it), so throttled clients spread out.
//!
//! The sender re-signs every attempt and marks retries with `x-cos-sdk-retry: true`.

use std::time::Duration;

use super::error::{CosError, CODE_CONNECT, CODE_NETWORK};

/// Name of the header marking a retried request (signed, as an `x-cos-*` header).
pub const RETRY_HEADER: &str = "x-cos-sdk-retry";

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = never retry).
    pub max_attempts: u32,
    /// Delay scale: attempt n (1-based retry count) waits up to `base_delay * 2^(n-1)`.
    pub base_delay: Duration,
    /// Upper bound of any single delay.
    pub max_delay: Duration,
    /// Full jitter: wait a uniformly random fraction of the computed delay (spreads bursts).
    pub full_jitter: bool,
    /// Total time bound: no retry is started when the first attempt began longer ago than this
    /// (or would after the backoff), so a caller's wait for one request stays bounded.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            full_jitter: true,
            max_elapsed: Duration::from_secs(60),
        }
    }
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Give up and report the error.
    Fail,
    /// Wait this long, then re-sign and resend.
    RetryAfter(Duration),
    /// Resync the clock offset from the response `Date`, then re-sign and resend at once.
    ResyncClock,
}

impl RetryPolicy {
    /// A policy that never retries (tests of error paths).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// `base_delay · 2^(retry-1)`, capped at `max_delay`: the one exponential schedule of the
    /// project (the client's retries and the upload queue's re-attempts both use it).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
    }

    /// The ceiling with "equal jitter": a random point in its upper half (`unit` in [0, 1)),
    /// so waits spread out but never collapse towards zero (the upload queue's re-attempts).
    pub fn equal_jitter(&self, retry: u32, unit: f64) -> Duration {
        let half = self.ceiling(retry) / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The backoff before retry number `retry` (1 = first retry). `unit` is a random number in
    /// [0, 1) used for full jitter (passed in so this stays pure and testable).
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let full = self.ceiling(retry);
        if self.full_jitter {
            full.mul_f64(unit.clamp(0.0, 1.0))
        } else {
            full
        }
    }

    /// Decides after attempt number `attempt` (1-based) failed with `err`. `idempotent`: the
    /// request may safely run twice; `clock_resynced`: a clock resync was already spent;
    /// `elapsed`: time since the first attempt began.
    pub fn decide(
        &self,
        err: &CosError,
        attempt: u32,
        idempotent: bool,
        clock_resynced: bool,
        elapsed: Duration,
        unit: f64,
    ) -> Decision {
        if err.is_clock_skew() {
            // One resync per request: if the server still refuses, the clock is not the cause.
            return if clock_resynced || err.server_date.is_none() {
                Decision::Fail
            } else {
                Decision::ResyncClock
            };
        }
        if attempt >= self.max_attempts || !is_retryable(err, idempotent) {
            return Decision::Fail;
        }
        let delay = self.delay(attempt, unit);
        if elapsed.saturating_add(delay) > self.max_elapsed {
            return Decision::Fail;
        }
        Decision::RetryAfter(delay)
    }
}

/// True when `err` is worth retrying for a request of the given idempotency.
pub fn is_retryable(err: &CosError, idempotent: bool) -> bool {
    match err.code.as_str() {
        // The request never reached the server: resending cannot run it twice.
        CODE_CONNECT => return true,
        // It may have reached the server: only idempotent requests.
        CODE_NETWORK => return idempotent,
        _ => {}
    }
    if err.status == 200 {
        // An <Error> inside a 200 (copy / complete): the server says the work did not happen;
        // retry the transient kinds as the Node SDK does, whatever the idempotency.
        return matches!(
            err.code.as_str(),
            "InternalError" | "SlowDown" | "ServiceUnavailable"
        );
    }
    // Throttling: COS refused the request before running it, so any method may be resent.
    if err.status == 503 || err.code == "SlowDown" {
        return true;
    }
    err.status >= 500 && idempotent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(status: u16, code: &str) -> CosError {
        CosError::client(status, code, "")
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            full_jitter: false,
            ..RetryPolicy::default()
        };
        let d: Vec<u128> = (1..=6).map(|n| p.delay(n, 0.5).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        // Huge retry counts do not overflow.
        assert_eq!(p.delay(u32::MAX, 0.0), Duration::from_millis(1000));
    }

    #[test]
    fn full_jitter_scales_by_the_random_unit() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(3, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(200));
        assert!(p.delay(3, 0.999) < Duration::from_millis(400));
    }

    #[test]
    fn what_is_retried() {
        assert!(is_retryable(&e(503, "SlowDown"), true));
        assert!(is_retryable(&e(500, "InternalError"), true));
        assert!(is_retryable(&e(502, "BadGateway"), true));
        // Throttled: never executed, so resent whatever the method (Initiate/Complete too).
        assert!(is_retryable(&e(503, "SlowDown"), false));
        assert!(is_retryable(&e(503, "ServiceUnavailable"), false));
        assert!(is_retryable(&e(429, "SlowDown"), false));
        // Other server errors may have run the request: idempotent ones only.
        assert!(!is_retryable(&e(500, "InternalError"), false));
        assert!(!is_retryable(&e(502, "BadGateway"), false));
        assert!(is_retryable(&e(0, CODE_NETWORK), true));
        assert!(!is_retryable(&e(0, CODE_NETWORK), false));
        assert!(is_retryable(&e(0, CODE_CONNECT), false));
        assert!(is_retryable(&e(200, "InternalError"), false));
        assert!(is_retryable(&e(200, "SlowDown"), true));
        assert!(!is_retryable(&e(200, "AccessDenied"), true));
        for (s, c) in [
            (404, "NoSuchKey"),
            (403, "AccessDenied"),
            (400, "InvalidArgument"),
        ] {
            assert!(!is_retryable(&e(s, c), true), "{c}");
        }
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let err = e(503, "SlowDown");
        assert!(matches!(
            p.decide(&err, 1, true, false, Duration::ZERO, 0.5),
            Decision::RetryAfter(_)
        ));
        assert!(matches!(
            p.decide(&err, 2, true, false, Duration::ZERO, 0.5),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            p.decide(&err, 3, true, false, Duration::ZERO, 0.5),
            Decision::Fail
        );
        assert_eq!(
            RetryPolicy::none().decide(&err, 1, true, false, Duration::ZERO, 0.5),
            Decision::Fail
        );
    }

    #[test]
    fn total_time_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            full_jitter: false,
            max_elapsed: Duration::from_secs(2),
        };
        let err = e(503, "SlowDown");
        assert_eq!(
            p.decide(&err, 1, true, false, Duration::from_millis(500), 0.5),
            Decision::RetryAfter(Duration::from_millis(100))
        );
        // 1.95 s spent + 100 ms backoff would end past the 2 s bound.
        assert_eq!(
            p.decide(&err, 1, true, false, Duration::from_millis(1950), 0.5),
            Decision::Fail
        );
    }

    #[test]
    fn clock_skew_resyncs_once() {
        let p = RetryPolicy::default();
        let mut err = CosError::client(403, "AccessDenied", "Request has expired");
        // Without a Date header there is nothing to resync from.
        assert_eq!(
            p.decide(&err, 1, true, false, Duration::ZERO, 0.5),
            Decision::Fail
        );
        err.server_date = Some(std::time::SystemTime::now());
        assert_eq!(
            p.decide(&err, 1, true, false, Duration::ZERO, 0.5),
            Decision::ResyncClock
        );
        assert_eq!(
            p.decide(&err, 2, true, true, Duration::ZERO, 0.5),
            Decision::Fail
        );
        // Even a non-retrying policy resyncs: the failure was ours, not the server's.
        assert_eq!(
            RetryPolicy::none().decide(&err, 1, false, false, Duration::ZERO, 0.5),
            Decision::ResyncClock
        );
    }
}
