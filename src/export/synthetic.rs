//! Generated lectures of any length, for the renderers' benchmarks and tests: deterministic, in Russian and
//! English, with every section filled.

use chrono::{DateTime, Duration, Utc};

use super::doc::{
    Attendee, ChatMessage, LectureDoc, LectureInfo, QaItem, SharedFile, Summary, SummaryItem, SummaryKind,
    SummaryStatus, TranscriptSegment,
};

const WORDS: &[&str] = &[
    "свет",
    "энергия",
    "хлорофилл",
    "растение",
    "лист",
    "клетка",
    "глюкоза",
    "вода",
    "углекислый",
    "газ",
    "реакция",
    "процесс",
    "например",
    "важно",
    "поэтому",
    "light",
    "energy",
    "reaction",
    "the",
    "and",
    "of",
    "chlorophyll",
    "molecule",
    "carbon",
    "which",
    "is",
    "stored",
    "as",
    "sugar",
    "in",
    "leaves",
    "при",
    "это",
    "как",
    "мы",
    "видим",
    "фотосистема",
    "электрон",
    "мембрана",
    "тилакоид",
];
const STUDENTS: &[&str] = &["Иван Петров", "Maria García", "Ελένη Παπαδοπούλου", "Олег", "Chen Wei"];

/// A small deterministic generator (xorshift): the same lecture on every run, no dependency.
struct Words(u64);

impl Words {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }

    /// `words` words, the first capitalised, and a full stop.
    fn sentence(&mut self, words: usize) -> String {
        let text = (0..words).map(|_| WORDS[self.next() % WORDS.len()]).collect::<Vec<_>>().join(" ");
        let mut chars = text.chars();
        chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>() + ".").unwrap_or_default()
    }
}

/// A lecture of `minutes`, with `segments` transcript segments (about 17 words each, mostly the host's),
/// `chat` messages, ten attendees and three files; the summary cites real stretches of the transcript.
/// Another `seed` gives other words (a benchmark renders a new lecture each time, as a server does).
pub fn lecture(minutes: i64, segments: usize, chat: usize, seed: u64) -> LectureDoc {
    let start: DateTime<Utc> = DateTime::from_timestamp(1_772_704_800, 0).unwrap_or_default(); // 2026-03-05 10:00 UTC
    let length_ms = minutes * 60_000;
    let info = LectureInfo {
        id: "lec_synthetic".into(),
        room_id: "room_synthetic".into(),
        room_name: "Биология 101".into(),
        number: 7,
        title: "Фотосинтез и дыхание растений".into(),
        host_name: "Анна Смирнова".into(),
        language: "ru".into(),
        started_at: Some(start),
        ended_at: Some(start + Duration::milliseconds(length_ms)),
        duration_ms: length_ms,
    };
    let mut doc = LectureDoc::new(info, SummaryStatus::Ready, start + Duration::milliseconds(length_ms + 600_000));
    // xorshift must not start from 0.
    let mut words = Words(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let step = length_ms / segments.max(1) as i64;
    doc.transcript = (0..segments)
        .map(|i| {
            let speaker = if words.next() % 10 == 0 {
                STUDENTS[words.next() % STUDENTS.len()]
            } else {
                "Анна Смирнова"
            };
            let start_ms = i as i64 * step;
            let count = 12 + words.next() % 11;
            TranscriptSegment {
                id: format!("seg{i}"),
                speaker_name: speaker.into(),
                start_ms,
                end_ms: start_ms + step * 9 / 10,
                text: words.sentence(count),
            }
        })
        .collect();
    let chat_step = length_ms / chat.max(1) as i64;
    doc.chat = (0..chat)
        .map(|i| {
            let offset_ms = i as i64 * chat_step + 5_000;
            let count = 3 + words.next() % 15;
            ChatMessage {
                at: start + Duration::milliseconds(offset_ms),
                offset_ms,
                sender_name: STUDENTS[words.next() % STUDENTS.len()].into(),
                sender_role: "guest".into(),
                text: words.sentence(count),
            }
        })
        .collect();
    let cite = |i: usize| {
        let segment = &doc.transcript[i * doc.transcript.len() / 10];
        (segment.start_ms, segment.end_ms)
    };
    let items: Vec<SummaryItem> = (0..8)
        .map(|i| {
            let (start_ms, end_ms) = if doc.transcript.is_empty() { (0, 0) } else { cite(i) };
            SummaryItem { text: words.sentence(8), start_ms, end_ms, edited: i == 2 }
        })
        .collect();
    doc.summary = Some(Summary {
        abstract_text: format!("{} {}", words.sentence(20), words.sentence(18)),
        key_topics: items[..6].to_vec(),
        action_items: items[6..].to_vec(),
        qa: items[..3]
            .iter()
            .map(|i| QaItem {
                question: words.sentence(9).replace('.', "?"),
                answer: words.sentence(14),
                start_ms: i.start_ms,
                end_ms: i.end_ms,
                edited: false,
            })
            .collect(),
        kind: SummaryKind::Llm,
        edited: true,
    });
    doc.files = (0..3)
        .map(|i| SharedFile {
            id: format!("file{i}"),
            name: format!("Лекция 7 — материалы {i}.pdf"),
            size: 350_000 * (i + 1),
            content_type: "application/pdf".into(),
            uploader_name: "Анна Смирнова".into(),
            shared_at: start + Duration::minutes(5 * i as i64 + 2),
        })
        .collect();
    doc.attendance = Some(
        (0..10)
            .map(|i| Attendee {
                name: if i == 0 {
                    "Анна Смирнова".into()
                } else {
                    format!("{} {i}", STUDENTS[i % STUDENTS.len()])
                },
                role: if i == 0 { "host".into() } else { "guest".into() },
                first_join: start + Duration::minutes(i as i64),
                last_leave: Some(start + Duration::milliseconds(length_ms)),
                minutes_present: (minutes - i as i64).max(0) as u32,
                joins: 1 + (i % 3) as u32,
            })
            .collect(),
    );
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_hour_lecture_has_the_benchmarked_size() {
        let doc = lecture(120, 1_200, 300, 1);
        let words: usize = doc.transcript.iter().map(|s| s.text.split_whitespace().count()).sum();
        assert!((19_000..=21_000).contains(&words), "{words} words");
        assert_eq!(doc.chat.len(), 300);
        assert_eq!(doc.transcript.last().unwrap().start_ms, 1_199 * 6_000);
        assert_eq!(lecture(120, 1_200, 300, 1), doc, "deterministic");
        assert_ne!(lecture(120, 1_200, 300, 2).transcript, doc.transcript, "another seed, other words");
        assert!(doc.transcript[0].text.starts_with(char::is_uppercase));
    }
}
