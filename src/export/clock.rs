//! How the renderers write times, durations, dates and sizes for people, one way in every format.

use chrono::{DateTime, Utc};

use crate::i18n::Catalogue;

/// `HH:MM:SS` for milliseconds from the lecture start (a negative time shows as the start).
pub fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A WebVTT cue time, `HH:MM:SS.mmm`.
pub fn vtt_time(ms: i64) -> String {
    format!("{}.{:03}", clock(ms), ms.max(0) % 1000)
}

/// An SRT cue time, `HH:MM:SS,mmm`.
pub fn srt_time(ms: i64) -> String {
    format!("{},{:03}", clock(ms), ms.max(0) % 1000)
}

/// A cited stretch of the lecture, `00:01:02–00:03:00`, or one time when both ends fall in the same second.
pub fn span(start_ms: i64, end_ms: i64) -> String {
    let (start, end) = (clock(start_ms), clock(end_ms));
    if start == end { start } else { format!("{start}–{end}") }
}

/// A lecture's length: `1 h 05 min`, `45 min`, `20 s`.
pub fn duration(ms: i64, words: &Catalogue) -> String {
    let s = ms.max(0) / 1000;
    match (s / 3600, s / 60 % 60) {
        (0, 0) => words.fill("export.seconds", &[("s", &s.to_string())]),
        (0, m) => words.fill("export.minutes", &[("m", &m.to_string())]),
        (h, m) => words.fill("export.hours_minutes", &[("h", &h.to_string()), ("m", &format!("{m:02}"))]),
    }
}

/// A role (`host`, `admin`, `guest`) in the document's language.
pub fn role(role: &str, words: &Catalogue) -> String {
    match role {
        "host" | "admin" | "guest" => words.get(&format!("export.role.{role}")).to_owned(),
        other => other.to_owned(),
    }
}

/// A moment for people: `2026-03-05 10:00 UTC`.
pub fn date_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A file size: `512 B`, `1.5 KB`, `20.3 MB` (powers of 1,000, as file managers show them).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// User text on one line: a newline would end a caption cue, a list item or a transcript line early.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn cue_times_and_clocks() {
        assert_eq!(clock(3_723_456), "01:02:03");
        assert_eq!(clock(-5), "00:00:00");
        assert_eq!(clock(100 * 3_600_000), "100:00:00");
        assert_eq!(vtt_time(3_723_456), "01:02:03.456");
        assert_eq!(srt_time(3_723_456), "01:02:03,456");
        assert_eq!(srt_time(7), "00:00:00,007");
        assert_eq!(span(62_000, 180_000), "00:01:02–00:03:00");
        assert_eq!(span(62_000, 62_900), "00:01:02");
    }

    #[test]
    fn durations_dates_sizes() {
        let (en, ru) = (Lang::En.catalogue(), Lang::Ru.catalogue());
        assert_eq!(duration(20_000, en), "20 s");
        assert_eq!(duration(45 * 60_000 + 10_000, en), "45 min");
        assert_eq!(duration(3_900_000, en), "1 h 05 min");
        assert_eq!(duration(3_900_000, ru), "1 ч 05 мин");
        let at = DateTime::parse_from_rfc3339("2026-03-05T10:07:59Z").unwrap().with_timezone(&Utc);
        assert_eq!(date_time(&at), "2026-03-05 10:07 UTC");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_500), "1.5 KB");
        assert_eq!(size(999_999), "1.0 MB");
        assert_eq!(size(20_300_000), "20.3 MB");
        assert_eq!(size(u64::MAX), "18446744.1 TB");
        assert_eq!(one_line(" a\n\tb  c \r\n"), "a b c");
    }
}
