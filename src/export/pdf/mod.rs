//! `lecture.pdf`, typeset in-process by typst. User text reaches the typesetter as data only: the lecture
//! becomes JSON in a virtual file that a template compiled into the binary reads with `json(…)`, and the
//! typst world serves nothing but that template and that file (every other path is not found).

mod world;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::clock::{clock, date_time, duration, one_line, role, size, span};
use super::doc::{LectureDoc, QaItem, SummaryItem};
use super::transcript::{Paragraph, paragraph_at, paragraphs};
use crate::error::Result;

/// Renders the PDF. Takes a few hundred milliseconds for a long lecture: call it off the async executor
/// (`spawn_blocking`).
pub fn render(doc: &LectureDoc) -> Result<Vec<u8>> {
    world::typeset(&view(doc), &doc.lecture.id, &doc.generated_at)
}

/// What the template shows, every string already written for people: the template only lays it out.
/// Kebab-case, typst's own spelling of names (`data.summary-note`).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct View<'a> {
    /// Hyphenation language: the lecture's, when it is a plain ISO 639 code.
    lang: &'a str,
    /// The template's own words (headings, column names), in the lecture's language: `data.labels.chat`.
    labels: BTreeMap<&'static str, &'static str>,
    title: String,
    host: String,
    room: String,
    facts: Vec<[String; 2]>,
    /// A sentence in place of the summary (being written, failed…).
    summary_note: Option<String>,
    summary: Option<SummaryView>,
    transcript: Vec<ParagraphView>,
    chat: Vec<[String; 4]>,
    files: Vec<[String; 4]>,
    attendance: Option<Vec<[String; 6]>>,
    footer: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct SummaryView {
    by: String,
    abstract_paragraphs: Vec<String>,
    sections: Vec<SectionView>,
    qa: Vec<QaView>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct SectionView {
    heading: &'static str,
    items: Vec<ItemView>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ItemView {
    text: String,
    cite: Cite,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct QaView {
    question: String,
    answer: String,
    cite: Cite,
}

/// A summary item's time range, linked to the transcript paragraph it falls in.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Cite {
    span: String,
    target: Option<String>,
    edited: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ParagraphView {
    /// Named when the speaker changes, `None` when the same speaker goes on.
    speaker: Option<String>,
    time: String,
    text: String,
    /// The label a citation links to, on cited paragraphs only.
    anchor: Option<String>,
}

/// The words the template prints itself, by their name there (`export.<name>` in `web/i18n`).
const LABELS: &[&str] = &[
    "summary",
    "transcript",
    "chat",
    "files",
    "attendance",
    "qa",
    "q",
    "a",
    "edited",
    "no_transcript",
    "no_chat",
    "no_files",
    "file",
    "size",
    "shared_by",
    "time",
    "name",
    "role",
    "joined",
    "left",
    "minutes_column",
    "joins",
];

fn view(doc: &LectureDoc) -> View<'_> {
    let (l, words) = (&doc.lecture, doc.words());
    let paragraphs = paragraphs(&doc.transcript);
    let mut cited = vec![false; paragraphs.len()];
    let mut cite = |start_ms: i64, end_ms: i64, edited: bool| {
        let target = paragraph_at(&paragraphs, start_ms);
        if let Some(i) = target {
            cited[i] = true;
        }
        Cite { span: span(start_ms, end_ms), target: target.map(anchor), edited }
    };

    let summary = match (&doc.summary, doc.summary_status.message(doc.summary_error.as_deref(), words)) {
        (Some(s), None) => {
            let mut section = |heading, items: &[SummaryItem]| SectionView {
                heading,
                items: items
                    .iter()
                    .map(|i| ItemView { text: one_line(&i.text), cite: cite(i.start_ms, i.end_ms, i.edited) })
                    .collect(),
            };
            let sections = vec![
                section(words.get("export.key_topics"), &s.key_topics),
                section(words.get("export.action_items"), &s.action_items),
            ];
            let qa =
                s.qa.iter()
                    .map(|q: &QaItem| QaView {
                        question: one_line(&q.question),
                        answer: one_line(&q.answer),
                        cite: cite(q.start_ms, q.end_ms, q.edited),
                    })
                    .collect();
            Some(SummaryView {
                by: s.byline(words),
                abstract_paragraphs: s.abstract_text.split("\n\n").map(one_line).filter(|p| !p.is_empty()).collect(),
                sections: sections.into_iter().filter(|s| !s.items.is_empty()).collect(),
                qa,
            })
        }
        _ => None,
    };
    let summary_note = match &summary {
        Some(_) => None,
        None => Some(doc.summary_status.message(doc.summary_error.as_deref(), words).unwrap_or_default()),
    };

    let transcript = paragraphs
        .iter()
        .zip(&cited)
        .enumerate()
        .map(|(i, (p, &cited)): (usize, (&Paragraph<'_>, &bool))| ParagraphView {
            speaker: (!p.same_speaker).then(|| one_line(p.speaker)),
            time: clock(p.start_ms),
            text: p.text.clone(),
            anchor: cited.then(|| anchor(i)),
        })
        .collect();

    let started = l.started_at.as_ref();
    let mut facts = Vec::new();
    if let Some(at) = started {
        facts.push([words.get("export.date").to_owned(), date_time(at)]);
        facts.push([words.get("export.duration").to_owned(), duration(l.duration_ms, words)]);
    }
    facts.push([words.get("export.host").to_owned(), one_line(&l.host_name)]);

    View {
        lang: hyphenation_language(&l.language),
        labels: LABELS.iter().map(|&name| (name, words.lookup(&format!("export.{name}")).unwrap_or(name))).collect(),
        title: one_line(&l.title),
        host: one_line(&l.host_name),
        room: words.fill("export.room_lecture", &[("room", &one_line(&l.room_name)), ("n", &l.number.to_string())]),
        facts,
        summary_note,
        summary,
        transcript,
        // Chat keeps its line breaks: the template shows each line of a message. Guests are most of the room:
        // only a host's or an administrator's role is spelled out.
        chat: doc
            .chat
            .iter()
            .map(|m| {
                let role = if m.sender_role == "guest" { String::new() } else { role(&m.sender_role, words) };
                [clock(m.offset_ms), one_line(&m.sender_name), role, m.text.trim().to_owned()]
            })
            .collect(),
        files: doc
            .files
            .iter()
            .map(|f| [one_line(&f.name), size(f.size), one_line(&f.uploader_name), moment(&f.shared_at, started)])
            .collect(),
        attendance: doc.attendance.as_ref().map(|all| {
            all.iter()
                .map(|a| {
                    [
                        one_line(&a.name),
                        role(&a.role, words),
                        moment(&a.first_join, started),
                        a.last_leave.as_ref().map_or_else(|| "—".to_owned(), |at| moment(at, started)),
                        a.minutes_present.to_string(),
                        a.joins.to_string(),
                    ]
                })
                .collect()
        }),
        footer: format!("{} · {}", one_line(&doc.generator), date_time(&doc.generated_at)),
    }
}

fn anchor(paragraph: usize) -> String {
    format!("p{paragraph}")
}

/// A moment in the lecture: its time from the start, like the transcript's, or the date when the lecture
/// never started.
fn moment(at: &DateTime<Utc>, started: Option<&DateTime<Utc>>) -> String {
    match started {
        Some(start) => clock((*at - *start).num_milliseconds()),
        None => date_time(at),
    }
}

/// typst hyphenates by an ISO 639 code and rejects anything else; an unknown code falls back to English.
fn hyphenation_language(code: &str) -> &str {
    let primary = code.split(['-', '_']).next().unwrap_or("");
    if (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()) { primary } else { "en" }
}

#[cfg(test)]
mod tests;
