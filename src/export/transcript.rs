//! The transcript formats (plain text, WebVTT, SRT) and the paragraphs every renderer reads a transcript in.

use super::clock::{clock, one_line, srt_time, vtt_time};
use super::doc::{LectureDoc, TranscriptSegment};

/// Consecutive segments of one speaker closer than this stay in one paragraph.
const PARAGRAPH_GAP_MS: i64 = 3_000;
/// A long monologue is split at the first segment boundary after this many characters, so that a reader
/// finds a time every minute or so instead of one paragraph per hour.
const PARAGRAPH_CHARS: usize = 1_200;
/// Shown for a segment whose speaker has no name.
const UNKNOWN_SPEAKER: &str = "Unknown speaker";

/// A stretch of the transcript read as one paragraph: one speaker, no long pause.
#[derive(Debug, Clone, PartialEq)]
pub struct Paragraph<'a> {
    pub speaker: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The paragraph before is the same speaker's (after a pause or a split monologue).
    pub same_speaker: bool,
    pub text: String,
}

/// The transcript's paragraphs, in order; segments without text are skipped.
pub fn paragraphs(segments: &[TranscriptSegment]) -> Vec<Paragraph<'_>> {
    let mut out: Vec<Paragraph<'_>> = Vec::new();
    for segment in segments {
        let text = one_line(&segment.text);
        if text.is_empty() {
            continue;
        }
        let speaker = match segment.speaker_name.trim() {
            "" => UNKNOWN_SPEAKER,
            name => name,
        };
        match out.last_mut() {
            Some(last)
                if last.speaker == speaker
                    && segment.start_ms - last.end_ms < PARAGRAPH_GAP_MS
                    && last.text.chars().count() < PARAGRAPH_CHARS =>
            {
                last.text.push(' ');
                last.text.push_str(&text);
                last.end_ms = last.end_ms.max(segment.end_ms);
            }
            last => {
                let same_speaker = last.is_some_and(|p| p.speaker == speaker);
                out.push(Paragraph { speaker, start_ms: segment.start_ms, end_ms: segment.end_ms, same_speaker, text });
            }
        }
    }
    out
}

/// The index of the paragraph a cited time falls in (the last one starting at or before it).
pub fn paragraph_at(paragraphs: &[Paragraph<'_>], ms: i64) -> Option<usize> {
    if paragraphs.is_empty() {
        return None;
    }
    // A time before the first paragraph cites the first one.
    Some(paragraphs.partition_point(|p| p.start_ms <= ms).saturating_sub(1))
}

/// The transcript as plain text, one line per paragraph opened by its time and speaker:
///
/// ```text
/// [00:00:12] Ann Smith: Plants convert sunlight into chemical energy. They store it as sugar.
/// [00:00:31] Bob: What about at night?
/// ```
pub fn plain_text(segments: &[TranscriptSegment]) -> String {
    let mut out = String::new();
    for p in paragraphs(segments) {
        out.push_str(&format!("[{}] {}: {}\n", clock(p.start_ms), one_line(p.speaker), p.text));
    }
    out
}

/// `transcript.txt`: a heading (title, room, date, duration, host), then [`plain_text`].
pub fn text_file(doc: &LectureDoc) -> String {
    let mut out = heading_lines(doc).join("\n");
    out.push_str("\n\n");
    if doc.transcript.iter().all(|s| s.text.trim().is_empty()) {
        out.push_str(doc.words().get("export.no_transcript"));
        out.push('\n');
    } else {
        out.push_str(&plain_text(&doc.transcript));
    }
    out
}

/// The lines that open the text formats: `Title`, `Room, lecture 3`, `date · duration · Host: name` (in the
/// lecture's language).
pub fn heading_lines(doc: &LectureDoc) -> [String; 3] {
    let (l, words) = (&doc.lecture, doc.words());
    let mut facts = Vec::new();
    if let Some(at) = &l.started_at {
        facts.push(super::clock::date_time(at));
        facts.push(super::clock::duration(l.duration_ms, words));
    }
    facts.push(words.fill("export.host_is", &[("name", &one_line(&l.host_name))]));
    let room =
        words.fill("export.room_lecture_plain", &[("room", &one_line(&l.room_name)), ("n", &l.number.to_string())]);
    [one_line(&l.title), room, facts.join(" · ")]
}

/// WebVTT: one cue per segment, numbered, the speaker as a voice span (`<v Ann>`), text escaped.
pub fn vtt(segments: &[TranscriptSegment]) -> String {
    let mut out = String::from("WEBVTT\n");
    for (n, (segment, start, end)) in cues(segments).enumerate() {
        out.push_str(&format!(
            "\n{}\n{} --> {}\n<v {}>{}\n",
            n + 1,
            vtt_time(start),
            vtt_time(end),
            vtt_escape(&speaker_of(segment)),
            vtt_escape(&one_line(&segment.text)),
        ));
    }
    out
}

/// SRT: numbered cues with `HH:MM:SS,mmm` times, the speaker as a `Name: ` prefix. SRT has no escapes:
/// the text stays as spoken, on one line (a blank line would end the cue).
pub fn srt(segments: &[TranscriptSegment]) -> String {
    let mut out = String::new();
    for (n, (segment, start, end)) in cues(segments).enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}: {}\n\n",
            n + 1,
            srt_time(start),
            srt_time(end),
            speaker_of(segment),
            one_line(&segment.text)
        ));
    }
    out
}

/// The segments that become caption cues, with their times made valid: never negative, and ending after
/// they start (a zero-length segment still shows for a moment).
fn cues(segments: &[TranscriptSegment]) -> impl Iterator<Item = (&TranscriptSegment, i64, i64)> {
    segments.iter().filter(|s| !s.text.trim().is_empty()).map(|s| {
        let start = s.start_ms.max(0);
        (s, start, s.end_ms.max(start + 1))
    })
}

fn speaker_of(segment: &TranscriptSegment) -> String {
    match one_line(&segment.speaker_name) {
        name if name.is_empty() => UNKNOWN_SPEAKER.to_owned(),
        name => name,
    }
}

/// Cue text may not contain `&`, `<` or a raw `-->`; escaping `>` takes care of the arrow too.
fn vtt_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    fn seg(id: &str, who: &str, start_ms: i64, end_ms: i64, text: &str) -> TranscriptSegment {
        TranscriptSegment { id: id.into(), speaker_name: who.into(), start_ms, end_ms, text: text.into() }
    }

    #[test]
    fn paragraphs_follow_speaker_turns_pauses_and_length() {
        let long = "word ".repeat(250);
        let segments = vec![
            seg("a", "Ann", 12_000, 14_500, "Plants convert sunlight."),
            seg("b", "Ann", 15_000, 18_000, "They store it\nas sugar."),
            seg("c", "Bob", 19_000, 20_000, "Why?"),
            seg("d", "Bob", 21_000, 21_500, "   "),
            seg("e", "Bob", 30_000, 31_000, "Later."),
            seg("f", "", 32_000, 40_000, &long),
            seg("g", "", 40_500, 41_000, "more"),
        ];
        let p = paragraphs(&segments);
        let summary: Vec<_> = p.iter().map(|p| (p.speaker, p.start_ms, p.end_ms, p.same_speaker)).collect();
        assert_eq!(
            summary,
            [
                ("Ann", 12_000, 18_000, false),
                ("Bob", 19_000, 20_000, false),
                ("Bob", 30_000, 31_000, true),
                ("Unknown speaker", 32_000, 40_000, false),
                ("Unknown speaker", 40_500, 41_000, true),
            ]
        );
        assert_eq!(p[0].text, "Plants convert sunlight. They store it as sugar.");
        assert_eq!(paragraph_at(&p, 0), Some(0));
        assert_eq!(paragraph_at(&p, 19_500), Some(1));
        assert_eq!(paragraph_at(&p, 29_999), Some(1));
        assert_eq!(paragraph_at(&p, 99_000), Some(4));
        assert_eq!(paragraph_at(&[], 5), None);
    }

    #[test]
    fn plain_text_has_one_line_per_paragraph_with_its_time() {
        let segments = vec![
            seg("a", "Ann Smith", 12_000, 14_500, "Plants convert sunlight into chemical energy."),
            seg("b", "Ann Smith", 15_000, 18_000, "They store it as sugar."),
            seg("c", "Bob", 31_000, 33_000, "What about at night?"),
            seg("d", "Ann Smith", 3_600_000, 3_601_000, "Goodbye."),
        ];
        assert_eq!(
            plain_text(&segments),
            "[00:00:12] Ann Smith: Plants convert sunlight into chemical energy. They store it as sugar.\n\
             [00:00:31] Bob: What about at night?\n\
             [01:00:00] Ann Smith: Goodbye.\n"
        );
        assert_eq!(plain_text(&[]), "");
    }

    #[test]
    fn text_file_opens_with_the_lecture() {
        let doc = sample();
        let text = text_file(&doc);
        assert!(
            text.starts_with(
                "Фотосинтез: как растения запасают свет\nБиология 101, лекция 3\n\
                 2026-03-05 10:00 UTC · 1 ч 12 мин · Ведущий: Анна Смирнова\n\n[00:00:12] Анна Смирнова: "
            ),
            "{text}"
        );
        let mut empty = doc.clone();
        empty.transcript.clear();
        assert!(text_file(&empty).ends_with("\n\nРасшифровки нет.\n"));
        // The heading's words follow the lecture's language.
        empty.lecture.language = "en".into();
        let english = text_file(&empty);
        assert!(english.contains("Биология 101, lecture 3\n2026-03-05 10:00 UTC · 1 h 12 min · Host: Анна Смирнова\n"));
        assert!(english.ends_with("\n\nNo transcript was recorded.\n"));
    }

    #[test]
    fn vtt_numbers_cues_with_voice_spans_and_escaped_text() {
        let vtt = vtt(&[
            seg("a", "Ann <TA>", 500, 1_250, "Hello."),
            seg("b", "", 2_000, 2_000, "x < y & y > z --> done"),
            seg("c", "Bob", 3_000, 4_000, " "),
            seg("d", "Bob", 3_723_456, 3_725_000, "line one\nline two"),
        ]);
        assert_eq!(
            vtt,
            "WEBVTT\n\
             \n1\n00:00:00.500 --> 00:00:01.250\n<v Ann &lt;TA&gt;>Hello.\n\
             \n2\n00:00:02.000 --> 00:00:02.001\n<v Unknown speaker>x &lt; y &amp; y &gt; z --&gt; done\n\
             \n3\n01:02:03.456 --> 01:02:05.000\n<v Bob>line one line two\n"
        );
    }

    #[test]
    fn srt_numbers_cues_with_comma_times_and_speaker_prefixes() {
        let srt = srt(&[
            seg("a", "Анна", 500, 1_250, "Привет."),
            seg("b", "Bob", 3_723_456, 3_725_000, "*bold*\n\nstill one cue"),
        ]);
        assert_eq!(
            srt,
            "1\n00:00:00,500 --> 00:00:01,250\nАнна: Привет.\n\n\
             2\n01:02:03,456 --> 01:02:05,000\nBob: *bold* still one cue\n\n"
        );
        assert_eq!(super::srt(&[]), "");
    }
}
