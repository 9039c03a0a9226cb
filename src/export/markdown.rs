//! `lecture.md`: the whole lecture as Markdown, every piece of user text escaped so that it reads literally.

use std::fmt::Write;

use super::clock::{date_time, one_line, role, size, span};
use super::doc::{LectureDoc, Summary, SummaryItem};
use super::transcript::{heading_lines, paragraphs};
use crate::i18n::Catalogue;

/// The document's own words (headings, column names) are in the lecture's language.
pub fn render(doc: &LectureDoc) -> String {
    let mut md = String::new();
    let w = doc.words();
    let [title, room, facts] = heading_lines(doc);
    line(&mut md, format_args!("# {}\n", escape(&title)));
    line(&mut md, format_args!("{} · {}\n", escape(&room), escape(&facts)));

    line(&mut md, format_args!("## {}\n", w.get("export.summary")));
    match (&doc.summary, doc.summary_status.message(doc.summary_error.as_deref(), w)) {
        (Some(summary), None) => summary_section(&mut md, summary, w),
        (_, message) => line(&mut md, format_args!("{}\n", escape(&message.unwrap_or_default()))),
    }

    line(&mut md, format_args!("## {}\n", w.get("export.transcript")));
    let paragraphs = paragraphs(&doc.transcript);
    if paragraphs.is_empty() {
        line(&mut md, format_args!("{}\n", w.get("export.no_transcript")));
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

    line(&mut md, format_args!("## {}\n", w.get("export.chat")));
    if doc.chat.is_empty() {
        line(&mut md, format_args!("{}\n", w.get("export.no_chat")));
    } else {
        for m in &doc.chat {
            let (at, who, role) =
                (super::clock::clock(m.offset_ms), escape(&one_line(&m.sender_name)), escape(&role(&m.sender_role, w)));
            line(&mut md, format_args!("- [{at}] **{who}** ({role}): {}", escape(&one_line(&m.text))));
        }
        md.push('\n');
    }

    line(&mut md, format_args!("## {}\n", w.get("export.files")));
    if doc.files.is_empty() {
        line(&mut md, format_args!("{}\n", w.get("export.no_files")));
    } else {
        let columns = ["export.file", "export.size", "export.shared_by", "export.shared_at"].map(|k| w.get(k));
        line(&mut md, format_args!("| {} |\n|---|---:|---|---|", columns.join(" | ")));
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
        line(&mut md, format_args!("## {}\n", w.get("export.attendance")));
        let columns = [
            "export.name",
            "export.role",
            "export.first_join",
            "export.last_leave",
            "export.minutes_present",
            "export.joins",
        ]
        .map(|k| w.get(k));
        line(&mut md, format_args!("| {} |\n|---|---|---|---|---:|---:|", columns.join(" | ")));
        for a in attendance {
            let row = [
                escape(&one_line(&a.name)),
                escape(&role(&a.role, w)),
                date_time(&a.first_join),
                a.last_leave.as_ref().map_or_else(|| w.get("export.still_present").to_owned(), date_time),
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

fn summary_section(md: &mut String, summary: &Summary, w: &Catalogue) {
    line(md, format_args!("*{}*\n", summary.byline(w)));
    for paragraph in summary.abstract_text.split("\n\n").map(one_line).filter(|p| !p.is_empty()) {
        line(md, format_args!("{}\n", escape(&paragraph)));
    }
    items(md, w.get("export.key_topics"), &summary.key_topics, w);
    items(md, w.get("export.action_items"), &summary.action_items, w);
    if !summary.qa.is_empty() {
        line(md, format_args!("### {}\n", w.get("export.qa")));
        let (q_mark, a_mark) = (w.get("export.q"), w.get("export.a"));
        for qa in &summary.qa {
            let (q, a) = (escape(&one_line(&qa.question)), escape(&one_line(&qa.answer)));
            let (cited, edited) = (span(qa.start_ms, qa.end_ms), edited(qa.edited, w));
            // Two trailing spaces: a line break inside the list item.
            line(md, format_args!("- **{q_mark}:** {q} — \\[{cited}\\]{edited}  "));
            line(md, format_args!("  **{a_mark}:** {a}"));
        }
        md.push('\n');
    }
}

fn items(md: &mut String, heading: &str, items: &[SummaryItem], w: &Catalogue) {
    if items.is_empty() {
        return;
    }
    line(md, format_args!("### {heading}\n"));
    for item in items {
        let text = escape(&one_line(&item.text));
        line(md, format_args!("- {text} — \\[{}\\]{}", span(item.start_ms, item.end_ms), edited(item.edited, w)));
    }
    md.push('\n');
}

fn edited(edited: bool, w: &Catalogue) -> String {
    if edited { format!(" *({})*", w.get("export.edited")) } else { String::new() }
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

    /// The sample lecture with English as its language: the document's own words in English.
    fn english() -> LectureDoc {
        let mut doc = sample();
        doc.lecture.language = "en".into();
        doc
    }

    #[test]
    fn the_whole_lecture_in_markdown() {
        let md = render(&english());
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
        let mut doc = english();
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

    #[test]
    fn a_russian_lecture_gets_russian_headings_and_words() {
        let md = render(&sample());
        assert!(md.contains("Биология 101, лекция 3 · 2026-03-05 10:00 UTC · 1 ч 12 мин · Ведущий: Анна Смирнова\n"));
        assert!(md.contains("## Конспект\n\n*Написан ИИ-ассистентом (языковой моделью), изменён ведущим.*\n"));
        assert!(md.contains("### Задания\n\n- Read chapter 4 — \\[01:10:00\\]\n"));
        assert!(md.contains(
            "- **В:** What happens at night? — \\[00:31:00–00:32:10\\]  \n  **О:** Respiration continues.\n"
        ));
        assert!(md.contains("*(изменено)*"));
        assert!(md.contains("## Расшифровка\n"));
        assert!(md.contains("- [00:05:00] **Bob \\<script\\>** (гость): "));
        assert!(md.contains("## Файлы\n\n| Файл | Размер | Кто поделился | Когда |\n"));
        assert!(md.contains("| гость | 2026-03-05 10:01 UTC | ещё в комнате | 70 | 2 |\n"));
        for english in ["## Summary", "## Transcript", "## Chat", "Host:", "lecture 3", "(guest)"] {
            assert!(!md.contains(english), "{english:?} left in English");
        }
    }
}
