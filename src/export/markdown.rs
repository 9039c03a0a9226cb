//! `lecture.md`: the whole lecture as Markdown, every piece of user text escaped so that it reads literally.

use std::fmt::Write;

use super::clock::{date_time, one_line, size, span};
use super::doc::{LectureDoc, Summary, SummaryItem, SummaryKind};
use super::transcript::{heading_lines, paragraphs};

pub fn render(doc: &LectureDoc) -> String {
    let mut md = String::new();
    let [title, room, facts] = heading_lines(doc);
    line(&mut md, format_args!("# {}\n", escape(&title)));
    line(&mut md, format_args!("{} · {}\n", escape(&room), escape(&facts)));

    md.push_str("## Summary\n\n");
    match (&doc.summary, doc.summary_status.message(doc.summary_error.as_deref())) {
        (Some(summary), None) => summary_section(&mut md, summary),
        (_, message) => line(&mut md, format_args!("{}\n", escape(&message.unwrap_or_default()))),
    }

    md.push_str("## Transcript\n\n");
    let paragraphs = paragraphs(&doc.transcript);
    if paragraphs.is_empty() {
        md.push_str("No transcript was recorded.\n\n");
    }
    for p in paragraphs {
        // A new speaker is named; the same speaker's next paragraph carries its time only.
        if p.same_speaker {
            line(&mut md, format_args!("**[{}]** {}\n", super::clock::clock(p.start_ms), escape(&p.text)));
        } else {
            let (at, who) = (super::clock::clock(p.start_ms), escape(&one_line(p.speaker)));
            line(&mut md, format_args!("**[{at}] {who}:** {}\n", escape(&p.text)));
        }
    }

    md.push_str("## Chat\n\n");
    if doc.chat.is_empty() {
        md.push_str("No chat messages.\n\n");
    } else {
        for m in &doc.chat {
            let (at, who, role) =
                (super::clock::clock(m.offset_ms), escape(&one_line(&m.sender_name)), escape(&m.sender_role));
            line(&mut md, format_args!("- [{at}] **{who}** ({role}): {}", escape(&one_line(&m.text))));
        }
        md.push('\n');
    }

    md.push_str("## Shared files\n\n");
    if doc.files.is_empty() {
        md.push_str("No files were shared.\n\n");
    } else {
        md.push_str("| File | Size | Shared by | Shared at |\n|---|---:|---|---|\n");
        for f in &doc.files {
            let row = [
                escape(&one_line(&f.name)),
                size(f.size),
                escape(&one_line(&f.uploader_name)),
                date_time(&f.shared_at),
            ];
            line(&mut md, format_args!("| {} |", row.join(" | ")));
        }
        md.push('\n');
    }

    if let Some(attendance) = &doc.attendance {
        md.push_str("## Attendance\n\n");
        md.push_str(
            "| Name | Role | First join | Last leave | Minutes present | Joins |\n|---|---|---|---|---:|---:|\n",
        );
        for a in attendance {
            let row = [
                escape(&one_line(&a.name)),
                escape(&a.role),
                date_time(&a.first_join),
                a.last_leave.as_ref().map_or_else(|| "still present".to_owned(), date_time),
                a.minutes_present.to_string(),
                a.joins.to_string(),
            ];
            line(&mut md, format_args!("| {} |", row.join(" | ")));
        }
        md.push('\n');
    }

    line(&mut md, format_args!("*{} · {}*", escape(&doc.generator), date_time(&doc.generated_at)));
    md
}

fn summary_section(md: &mut String, summary: &Summary) {
    let by = match summary.kind {
        SummaryKind::Llm => "Written by the AI assistant (language model)",
        SummaryKind::Extractive => "Sentences picked from the transcript by the AI assistant",
    };
    let by_host = if summary.edited { ", edited by the host" } else { "" };
    line(md, format_args!("*{by}{by_host}.*\n"));
    for paragraph in summary.abstract_text.split("\n\n").map(one_line).filter(|p| !p.is_empty()) {
        line(md, format_args!("{}\n", escape(&paragraph)));
    }
    items(md, "Key topics", &summary.key_topics);
    items(md, "Action items", &summary.action_items);
    if !summary.qa.is_empty() {
        md.push_str("### Questions and answers\n\n");
        for qa in &summary.qa {
            let (q, a) = (escape(&one_line(&qa.question)), escape(&one_line(&qa.answer)));
            // Two trailing spaces: a line break inside the list item.
            line(md, format_args!("- **Q:** {q} — \\[{}\\]{}  ", span(qa.start_ms, qa.end_ms), edited(qa.edited)));
            line(md, format_args!("  **A:** {a}"));
        }
        md.push('\n');
    }
}

fn items(md: &mut String, heading: &str, items: &[SummaryItem]) {
    if items.is_empty() {
        return;
    }
    line(md, format_args!("### {heading}\n"));
    for item in items {
        let text = escape(&one_line(&item.text));
        line(md, format_args!("- {text} — \\[{}\\]{}", span(item.start_ms, item.end_ms), edited(item.edited)));
    }
    md.push('\n');
}

fn edited(edited: bool) -> &'static str {
    if edited { " *(edited)*" } else { "" }
}

/// Appends formatted text and a newline (writing to a String cannot fail).
fn line(md: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = md.write_fmt(args);
    md.push('\n');
}

/// User text that Markdown shows as written: every character with a meaning inline is backslash-escaped
/// (CommonMark allows that for all ASCII punctuation), and so is a block marker at the start (`-`, `+`, `=`,
/// `1.`), since the text may open a paragraph or a list item.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in text.chars().enumerate() {
        let inline = matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '$' | '!');
        let block = (i == 0 && matches!(c, '-' | '+' | '=')) || (i == digits && digits > 0 && matches!(c, '.' | ')'));
        if inline || block {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn escaping_keeps_user_text_literal() {
        assert_eq!(escape("*bold* and _it_ `code` [l](x) <b>"), r"\*bold\* and \_it\_ \`code\` \[l\](x) \<b\>");
        assert_eq!(escape("# not a heading | cell"), r"\# not a heading \| cell");
        assert_eq!(escape("- not a list"), r"\- not a list");
        assert_eq!(escape("2026. A year"), r"2026\. A year");
        assert_eq!(escape("a-b 1.5 + 2"), "a-b 1.5 + 2");
        assert_eq!(escape("&amp; $x$ ![i]"), r"\&amp; \$x\$ \!\[i\]");
        assert_eq!(escape("Привет, мир"), "Привет, мир");
    }

    #[test]
    fn the_whole_lecture_in_markdown() {
        let md = render(&sample());
        assert!(md.starts_with(
            "# Фотосинтез: как растения запасают свет\n\n\
             Биология 101, lecture 3 · 2026-03-05 10:00 UTC · 1 h 12 min · Host: Анна Смирнова\n\n\
             ## Summary\n\n*Written by the AI assistant (language model), edited by the host.*\n\n"
        ));
        assert!(md.contains("- Хлорофилл поглощает \\*красный\\* и синий свет — \\[00:01:02–00:03:00\\] *(edited)*\n"));
        assert!(md.contains("### Action items\n\n- Read chapter 4 — \\[01:10:00\\]\n"));
        assert!(md.contains(
            "- **Q:** What happens at night? — \\[00:31:00–00:32:10\\]  \n  **A:** Respiration continues.\n"
        ));
        assert!(md.contains("**[00:00:12] Анна Смирнова:** Растения превращают свет в энергию."));
        assert!(md.contains("- [00:05:00] **Bob \\<script\\>** (guest): \\#import \"/etc/passwd\"\n"));
        assert!(md.contains("- [00:06:00] **Ελένη** (guest): \\*bold\\* Καλημέρα\n"));
        assert!(md.contains("| slides \\| v2.pdf | 1.5 MB | Анна Смирнова | 2026-03-05 10:03 UTC |\n"));
        assert!(md.contains("## Attendance\n\n| Name | Role |"));
        assert!(
            md.contains("| \\=HYPERLINK(\"http://x\") | guest | 2026-03-05 10:01 UTC | still present | 70 | 2 |\n")
        );
        assert!(md.ends_with(&format!("*confctl {} · 2026-03-05 12:00 UTC*\n", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn hidden_attendance_and_missing_summary() {
        let mut doc = sample();
        doc.attendance = None;
        doc.summary = None;
        doc.summary_status = crate::export::SummaryStatus::Failed;
        doc.summary_error = Some("model *timed* out".into());
        doc.chat.clear();
        doc.files.clear();
        let md = render(&doc);
        assert!(!md.contains("Attendance"));
        assert!(md.contains("## Summary\n\nThe summary could not be written: model \\*timed\\* out\n\n## Transcript"));
        assert!(md.contains("## Chat\n\nNo chat messages.\n\n## Shared files\n\nNo files were shared.\n\n"));
    }
}
