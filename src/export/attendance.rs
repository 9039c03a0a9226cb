//! `attendance.csv`: one row per participant, RFC 4180, safe to open in a spreadsheet.

use chrono::{DateTime, Utc};

use super::doc::Attendee;
use crate::error::{Error, Result};

const HEADER: [&str; 6] = ["Name", "Role", "First join (UTC)", "Last leave (UTC)", "Minutes present", "Joins"];

/// The CSV of these attendees.
///
/// CRLF line ends and quoting where needed (RFC 4180), UTF-8 with a byte-order mark — without it, Excel reads
/// the file in the local ANSI code page and garbles every Cyrillic name. Times are `YYYY-MM-DD HH:MM:SS`,
/// which spreadsheets read as dates (they keep RFC 3339's `T…Z` as text).
pub fn render(attendance: &[Attendee]) -> Result<Vec<u8>> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    let failed = |err: csv::Error| Error::internal(format!("writing attendance CSV: {err}"));
    out.write_record(HEADER).map_err(failed)?;
    for a in attendance {
        let row = [
            a.name.clone(),
            a.role.clone(),
            time(&a.first_join),
            a.last_leave.as_ref().map(time).unwrap_or_default(),
            a.minutes_present.to_string(),
            a.joins.to_string(),
        ];
        out.write_record(row.iter().map(|cell| neutralise(cell))).map_err(failed)?;
    }
    out.into_inner().map_err(|err| Error::internal(format!("writing attendance CSV: {}", err.error())))
}

fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, and tab or CR, which some of them skip
/// before looking) gets a leading `'`, so that `=HYPERLINK(…)` in a display name stays text (OWASP's advice
/// on CSV injection).
fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn rfc_4180_with_formula_injection_neutralised() {
        let doc = sample();
        let csv = String::from_utf8(render(doc.attendance.as_deref().unwrap()).unwrap()).unwrap();
        assert_eq!(
            csv,
            "\u{feff}Name,Role,First join (UTC),Last leave (UTC),Minutes present,Joins\r\n\
             Анна Смирнова,host,2026-03-05 10:00:00,2026-03-05 11:12:00,72,1\r\n\
             \"'=HYPERLINK(\"\"http://x\"\")\",guest,2026-03-05 10:01:00,,70,2\r\n\
             \"Smith, \"\"Bob\"\"\nJr\",guest,2026-03-05 10:02:00,2026-03-05 10:30:00,28,1\r\n\
             '+1 555,guest,2026-03-05 10:04:00,2026-03-05 10:20:00,16,3\r\n\
             '-2,guest,2026-03-05 10:05:00,2026-03-05 10:06:00,1,1\r\n\
             '@SUM(A1),guest,2026-03-05 10:05:00,2026-03-05 10:06:00,1,1\r\n"
        );
    }

    #[test]
    fn plain_cells_are_left_alone() {
        assert_eq!(neutralise("Ann"), "Ann");
        assert_eq!(neutralise("a=b"), "a=b");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise(""), "");
    }
}
