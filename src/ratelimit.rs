//! Attempt limits (logins, registrations, PIN guesses) behind a small interface, so a shared backend can
//! replace the in-memory one when several `confctl serve` replicas run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts attempts per key in fixed windows.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Records one attempt for `key`. Over `limit` attempts within `window`: `Err(time until the window ends)`.
    fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<(), Duration>;
    /// Like [`RateLimiter::hit`] without counting: is `key` already at its limit? Used where only failures
    /// count (wrong PINs), so a crowd behind one campus NAT is not locked out by successful joins.
    fn peek(&self, key: &str, limit: u32) -> Result<(), Duration>;
}

/// The single-process limiter.
#[derive(Debug, Default)]
pub struct InMemoryRateLimiter {
    windows: Mutex<HashMap<String, (Instant, Duration, u32)>>,
}

/// Past this many keys, expired windows are swept on the next hit so an attacker rotating keys cannot grow
/// memory without bound.
const SWEEP_THRESHOLD: usize = 10_000;

impl RateLimiter for InMemoryRateLimiter {
    fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_THRESHOLD {
            windows.retain(|_, (start, len, _)| now.duration_since(*start) < *len);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, window, 0));
        if now.duration_since(entry.0) >= entry.1 {
            *entry = (now, window, 0);
        }
        if entry.2 >= limit {
            return Err(entry.1.saturating_sub(now.duration_since(entry.0)));
        }
        entry.2 += 1;
        Ok(())
    }

    fn peek(&self, key: &str, limit: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match windows.get(key) {
            Some((start, len, count)) if now.duration_since(*start) < *len && *count >= limit => {
                Err(len.saturating_sub(now.duration_since(*start)))
            }
            _ => Ok(()),
        }
    }
}

/// Turns a limiter refusal into the domain's 429 error.
pub fn refused(retry_after: Duration) -> crate::Error {
    crate::Error::RateLimited { retry_after: retry_after.max(Duration::from_secs(1)) }
}

/// Hits `limiter` and turns a refusal into the domain's 429 error.
pub fn check(limiter: &dyn RateLimiter, key: &str, limit: u32, window: Duration) -> crate::Result<()> {
    limiter.hit(key, limit, window).map_err(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_up_to_limit_then_refuses_with_retry_after() {
        let l = InMemoryRateLimiter::default();
        for _ in 0..3 {
            assert!(l.hit("k", 3, Duration::from_secs(60)).is_ok());
        }
        let retry = l.hit("k", 3, Duration::from_secs(60)).unwrap_err();
        assert!(retry <= Duration::from_secs(60) && retry > Duration::from_secs(50));
        assert!(l.hit("other", 3, Duration::from_secs(60)).is_ok(), "keys are independent");
    }

    #[test]
    fn peek_does_not_count() {
        let l = InMemoryRateLimiter::default();
        for _ in 0..10 {
            assert!(l.peek("k", 1).is_ok());
        }
        l.hit("k", 1, Duration::from_secs(60)).unwrap();
        assert!(l.peek("k", 1).is_err());
    }

    #[test]
    fn window_resets() {
        let l = InMemoryRateLimiter::default();
        assert!(l.hit("k", 1, Duration::from_millis(1)).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.hit("k", 1, Duration::from_millis(1)).is_ok());
    }
}
