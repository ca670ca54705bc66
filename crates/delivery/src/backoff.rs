//! Pacing: exponential backoff with jitter between retries, and a token bucket for the
//! per-subscription rate limit.

use std::time::{Duration, Instant};

use crate::model::DeliveryPolicy;

/// The delay before the attempt following `attempts` failed ones: a uniformly random value
/// between `initial_backoff` and `min(max_backoff, initial_backoff * 2^(attempts-1))`.
/// Full jitter spreads the retries of many events failing together (a sink coming back up is
/// not hit by a synchronized wave); the floor keeps a failing sink from being hammered.
pub fn delay(policy: &DeliveryPolicy, attempts: u32) -> Duration {
    let initial = policy.initial_backoff;
    let exp = attempts.saturating_sub(1).min(31);
    let cap = initial
        .checked_mul(1u32 << exp)
        .unwrap_or(policy.max_backoff)
        .min(policy.max_backoff)
        .max(initial);
    let span = (cap - initial).as_nanos();
    if span == 0 {
        return initial;
    }
    let jitter = (fastrand::u64(..) as u128) % (span + 1);
    initial + Duration::from_nanos(jitter as u64)
}

/// A token bucket: `rate` tokens per second, holding at most one second's worth (at least
/// one token), so bursts never exceed the configured rate over a second.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` per second (`rate` > 0).
    pub fn new(rate: f64) -> Self {
        let capacity = rate.max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // The policy's rate is bounded (model::MIN_RATE_LIMIT), so this is at most about
            // 1000 s; the fallback only guards against a rate that skipped validation.
            let wait = (1.0 - self.tokens) / self.rate;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(crate::model::MAX_BACKOFF))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds() {
        let policy = DeliveryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..DeliveryPolicy::default()
        };
        for attempts in 0u32..50 {
            let cap = Duration::from_millis(100 * (1u64 << attempts.saturating_sub(1).min(20)))
                .min(Duration::from_secs(2));
            for _ in 0..20 {
                let d = delay(&policy, attempts);
                assert!(d >= policy.initial_backoff && d <= cap, "{attempts}: {d:?}");
            }
        }
        assert_eq!(delay(&policy, 1), Duration::from_millis(100));
    }

    #[test]
    fn bucket_limits_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0);
        let mut taken = 0;
        for _ in 0..100 {
            if bucket.try_take(start).is_ok() {
                taken += 1;
            }
        }
        assert_eq!(taken, 10);
        let wait = bucket.try_take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(bucket.try_take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.try_take(start + Duration::from_millis(100)).is_err());
    }
}
