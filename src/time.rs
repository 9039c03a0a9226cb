//! Time as the store keeps it: UTC milliseconds since the Unix epoch, portable across SQLite and PostgreSQL;
//! and [`Clock`], the application's view of now.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Now, in UTC milliseconds, by the system clock. Code that holds an `App` asks [`App::clock`] instead.
///
/// [`App::clock`]: crate::app::App::clock
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The application's clock: the system clock moved forward by an offset that starts at zero. Code that
/// holds an `App` reads the time here (grace periods, expiry, the times it records), so a test can let an
/// hour pass with [`Clock::advance`] instead of sleeping through it. Only the offset is shared: timestamps
/// the store takes by itself and the assistant's media timing stay on the system clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Now, in UTC milliseconds.
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every copy of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        // `fetch_update` never fails with a closure that always returns `Some`.
        let _ = self.offset_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some(o.saturating_add(ms)));
    }
}

/// Milliseconds → a UTC timestamp for API output (RFC 3339 when serialised).
pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Parses `30s`, `15m`, `12h`, `7d` (or a bare number of seconds) into a duration.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_runs_ahead_in_every_copy() {
        let clock = Clock::default();
        let copy = clock.clone();
        clock.advance(Duration::from_secs(3600));
        let ahead = copy.now_ms() - now_ms();
        assert!((3_599_000..=3_600_000).contains(&ahead), "{ahead}");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").map(|d| d.as_secs()), Some(90));
        assert_eq!(parse_duration("15m").map(|d| d.as_secs()), Some(900));
        assert_eq!(parse_duration("12h").map(|d| d.as_secs()), Some(43_200));
        assert_eq!(parse_duration("7d").map(|d| d.as_secs()), Some(604_800));
        assert_eq!(parse_duration("7w"), None);
        assert_eq!(parse_duration("h"), None);
    }
}
