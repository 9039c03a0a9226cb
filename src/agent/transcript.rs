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

/// The segments as the lecture renderers take them: in transcript order, named for people. The renderers
/// (`export::transcript`) write the text and WebVTT, so the assistant's files and the downloads read alike.
fn for_export(segments: &[Segment]) -> Vec<crate::export::TranscriptSegment> {
    ordered(segments)
        .into_iter()
        .map(|s| crate::export::TranscriptSegment {
            speaker_name: s.speaker().to_owned(),
            id: s.segment_id,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            text: s.text,
        })
        .collect()
}

/// The plain-text transcript, one paragraph per line ([`crate::export::transcript::plain_text`]).
pub fn to_text(segments: &[Segment]) -> String {
    crate::export::transcript::plain_text(&for_export(segments))
}

/// The WebVTT transcript ([`crate::export::transcript::vtt`]).
pub fn to_vtt(segments: &[Segment]) -> String {
    crate::export::transcript::vtt(&for_export(segments))
}

/// A final English segment as the agent's tests write them: the transcript's and the summarisers' tests
/// build their lectures from it.
#[cfg(test)]
pub(crate) fn test_segment(id: &str, who: &str, start_ms: i64, end_ms: i64, text: &str) -> Segment {
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

#[cfg(test)]
mod tests {
    use super::test_segment as seg;
    use super::*;

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
