//! The lecture transcript built from final caption segments: one ordering, rendered as plain text and WebVTT.

/// One final caption segment, as confctl stores it and hands it back in the summary context.
pub use crate::store::SegmentRecord as Segment;

/// The segments in transcript order (by start, then end, then id), without empty or repeated segments.
/// Segments can arrive out of order (several speakers at once, retries after a reconnect), and a retried
/// post may have stored the same id twice in a store that does not deduplicate, so both are mended here.
pub fn ordered(segments: &[Segment]) -> Vec<Segment> {
    let mut out: Vec<Segment> = segments.iter().filter(|s| !s.text.trim().is_empty()).cloned().collect();
    out.sort_by(|a, b| (a.start_ms, a.end_ms, &a.segment_id).cmp(&(b.start_ms, b.end_ms, &b.segment_id)));
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(s.segment_id.clone()));
    out
}

/// Consecutive segments of one speaker closer than this become one paragraph of the text transcript.
const PARAGRAPH_GAP_MS: i64 = 3_000;

/// The plain-text transcript: one paragraph per stretch of one speaker, each opened by its start time.
///
/// ```text
/// [00:00:12] Ann Smith: Plants convert sunlight into chemical energy. They store it as sugar.
/// [00:00:31] Bob: What about at night?
/// ```
pub fn to_text(segments: &[Segment]) -> String {
    let segments = ordered(segments);
    let mut out = String::new();
    let mut previous: Option<&Segment> = None;
    for segment in &segments {
        let text = one_line(&segment.text);
        let continues = previous.is_some_and(|p| {
            p.speaker_identity == segment.speaker_identity && segment.start_ms - p.end_ms < PARAGRAPH_GAP_MS
        });
        if continues {
            out.push(' ');
            out.push_str(&text);
        } else {
            if previous.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("[{}] {}: {}", clock(segment.start_ms), one_line(segment.speaker()), text));
        }
        previous = Some(segment);
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The WebVTT transcript: one cue per segment, the speaker as a voice span (`<v Ann>`), text escaped.
pub fn to_vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n");
    for (n, segment) in ordered(segments).iter().enumerate() {
        let start = segment.start_ms.max(0);
        // A cue must end after it starts; a zero-length segment still shows for a moment.
        let end = segment.end_ms.max(start + 1);
        out.push_str(&format!(
            "\n{}\n{} --> {}\n<v {}>{}\n",
            n + 1,
            vtt_time(start),
            vtt_time(end),
            vtt_escape(&one_line(segment.speaker())),
            vtt_escape(&one_line(&segment.text)),
        ));
    }
    out
}

/// `HH:MM:SS` for a time in milliseconds.
pub fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn vtt_time(ms: i64) -> String {
    format!("{}.{:03}", clock(ms), ms % 1000)
}

/// Cue text may not contain `&`, `<` or a raw `-->`; escaping `>` takes care of the arrow too.
fn vtt_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Newlines would end a cue (or a transcript line) early.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: &str, who: &str, start_ms: i64, end_ms: i64, text: &str) -> Segment {
        Segment {
            segment_id: id.into(),
            speaker_identity: format!("id_{who}"),
            speaker_name: who.into(),
            text: text.into(),
            start_ms,
            end_ms,
            language: "en".into(),
            provider: "whisper".into(),
        }
    }

    #[test]
    fn text_orders_merges_one_speakers_paragraph_and_skips_empty_and_repeated_segments() {
        let segments = vec![
            seg("c", "Bob", 31_000, 33_000, "What about at night?"),
            seg("a", "Ann", 12_000, 14_500, "Plants convert sunlight into chemical energy."),
            seg("b", "Ann", 15_000, 18_000, "They store it\nas sugar."),
            seg("a", "Ann", 12_000, 14_500, "Plants convert sunlight into chemical energy."),
            seg("d", "Bob", 34_000, 35_000, "   "),
            seg("e", "Ann", 3_600_000, 3_601_000, "Goodbye."),
        ];
        assert_eq!(
            to_text(&segments),
            "[00:00:12] Ann: Plants convert sunlight into chemical energy. They store it as sugar.\n\
             [00:00:31] Bob: What about at night?\n\
             [01:00:00] Ann: Goodbye.\n"
        );
        assert_eq!(to_text(&[]), "");
    }

    #[test]
    fn vtt_has_one_cue_per_segment_with_voice_spans_and_escaped_text() {
        let mut nameless = seg("b", "", 2_000, 2_000, "x < y & y > z --> done");
        nameless.speaker_identity = "g_123".into();
        let vtt = to_vtt(&[nameless, seg("a", "Ann <TA>", 500, 1_250, "Hello.")]);
        assert_eq!(
            vtt,
            "WEBVTT\n\
             \n1\n00:00:00.500 --> 00:00:01.250\n<v Ann &lt;TA&gt;>Hello.\n\
             \n2\n00:00:02.000 --> 00:00:02.001\n<v g_123>x &lt; y &amp; y &gt; z --&gt; done\n"
        );
        assert_eq!(to_vtt(&[]), "WEBVTT\n");
    }

    #[test]
    fn segments_read_the_context_json_confctl_returns() {
        let json = serde_json::json!({"segmentId":"s1","speakerIdentity":"h_1","speakerName":"Ann","text":"Hi",
            "startMs":1,"endMs":2,"language":"en","provider":"whisper"});
        let s: Segment = serde_json::from_value(json).unwrap();
        assert_eq!(s.speaker(), "Ann");
        assert_eq!((s.start_ms, s.end_ms), (1, 2));
    }
}
