//! Time as the store keeps it: UTC milliseconds since the Unix epoch, portable across SQLite and PostgreSQL.

use chrono::{DateTime, TimeZone, Utc};

/// Now, in UTC milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
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
    fn durations_parse() {
        assert_eq!(parse_duration("90").map(|d| d.as_secs()), Some(90));
        assert_eq!(parse_duration("15m").map(|d| d.as_secs()), Some(900));
        assert_eq!(parse_duration("12h").map(|d| d.as_secs()), Some(43_200));
        assert_eq!(parse_duration("7d").map(|d| d.as_secs()), Some(604_800));
        assert_eq!(parse_duration("7w"), None);
        assert_eq!(parse_duration("h"), None);
    }
}
