//! The lecture summary's shape, shared by the summarisers that write it, the host who edits it and the
//! renderers that print it: an abstract, key topics, action items and Q&A highlights, each item citing the
//! stretch of transcript it came from (`startMs`..`endMs`, milliseconds since the lecture went live).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::SegmentRecord;

/// What a lecture was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    #[serde(default)]
    pub key_topics: Vec<Topic>,
    #[serde(default)]
    pub action_items: Vec<ActionItem>,
    #[serde(default)]
    pub qa: Vec<QuestionAnswer>,
    /// `llm` or `extractive`, so the JSON is labelled wherever it travels.
    #[serde(default)]
    pub kind: String,
    /// The lecture's language code.
    #[serde(default)]
    pub language: String,
}

/// Where in the transcript an item came from. Summaries written before citations had ranges carry only a
/// start; `end_ms` then reads as the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    pub start_ms: i64,
    #[serde(default = "Citation::unset")]
    pub end_ms: i64,
}

impl Citation {
    fn unset() -> i64 {
        -1
    }

    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Self { start_ms, end_ms: end_ms.max(start_ms) }
    }

    /// The range with a missing end read as the start.
    pub fn normalised(self) -> Self {
        Self::new(self.start_ms, self.end_ms)
    }

    /// The range of these segments, from the first's start to the last's end.
    pub fn of(segments: &[&SegmentRecord]) -> Option<Self> {
        let start = segments.iter().map(|s| s.start_ms).min()?;
        let end = segments.iter().map(|s| s.end_ms).max()?;
        Some(Self::new(start, end))
    }

    /// Whether the range overlaps this segment (touching its start or end counts).
    pub fn touches(self, segment: &SegmentRecord) -> bool {
        let c = self.normalised();
        c.start_ms >= 0 && segment.start_ms <= c.end_ms && c.start_ms <= segment.end_ms
    }

    /// Whether the range touches at least one segment: a citation must point at something that was said.
    pub fn is_in(self, segments: &[SegmentRecord]) -> bool {
        segments.iter().any(|s| self.touches(s))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub topic: String,
    #[serde(flatten)]
    pub cite: Citation,
    /// Written or changed by the host rather than the summariser.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionItem {
    pub text: String,
    #[serde(flatten)]
    pub cite: Citation,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
}

/// A question asked in the lecture and the answer given (empty when none followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionAnswer {
    pub question: String,
    #[serde(default)]
    pub answer: String,
    #[serde(flatten)]
    pub cite: Citation,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
}

/// Longest text of one summary field a host may write.
const MAX_TEXT: usize = 2_000;
/// Most items of one kind.
const MAX_ITEMS: usize = 100;

fn check_text(field: String, text: &str, required: bool) -> Result<()> {
    let n = text.trim().chars().count();
    if required && n == 0 {
        return Err(Error::invalid("invalid_summary", format!("{field} must not be empty")));
    }
    if n > MAX_TEXT || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "invalid_summary",
            format!("{field} must have at most {MAX_TEXT} characters and no control characters"),
        ));
    }
    Ok(())
}

fn check_cite(field: String, cite: Citation, segments: &[SegmentRecord]) -> Result<()> {
    if !cite.is_in(segments) {
        return Err(Error::invalid(
            "invalid_citation",
            format!("{field}: the cited time range is not in the transcript"),
        ));
    }
    Ok(())
}

impl Summary {
    /// Every citation normalised (a missing end reads as the start).
    pub fn normalised(mut self) -> Self {
        self.key_topics.iter_mut().for_each(|t| t.cite = t.cite.normalised());
        self.action_items.iter_mut().for_each(|a| a.cite = a.cite.normalised());
        self.qa.iter_mut().for_each(|q| q.cite = q.cite.normalised());
        self
    }

    /// Drops every item whose citation points at nothing in the transcript: what a summariser cannot back
    /// with the lecture's own words is not shown. Returns how many were dropped.
    pub fn retain_cited(&mut self, segments: &[SegmentRecord]) -> usize {
        let before = self.key_topics.len() + self.action_items.len() + self.qa.len();
        self.key_topics.retain(|t| t.cite.is_in(segments));
        self.action_items.retain(|a| a.cite.is_in(segments));
        self.qa.retain(|q| q.cite.is_in(segments));
        before - (self.key_topics.len() + self.action_items.len() + self.qa.len())
    }

    /// Checks a host's edit: no empty topic, action or question, bounded lengths, and every citation in the
    /// transcript. The error names the field (`keyTopics[2].topic`).
    pub fn validate_edit(&self, segments: &[SegmentRecord]) -> Result<()> {
        check_text("abstract".into(), &self.abstract_text, false)?;
        for (name, n) in
            [("keyTopics", self.key_topics.len()), ("actionItems", self.action_items.len()), ("qa", self.qa.len())]
        {
            if n > MAX_ITEMS {
                return Err(Error::invalid("invalid_summary", format!("{name} may have at most {MAX_ITEMS} items")));
            }
        }
        for (i, t) in self.key_topics.iter().enumerate() {
            check_text(format!("keyTopics[{i}].topic"), &t.topic, true)?;
            check_cite(format!("keyTopics[{i}]"), t.cite, segments)?;
        }
        for (i, a) in self.action_items.iter().enumerate() {
            check_text(format!("actionItems[{i}].text"), &a.text, true)?;
            check_cite(format!("actionItems[{i}]"), a.cite, segments)?;
        }
        for (i, q) in self.qa.iter().enumerate() {
            check_text(format!("qa[{i}].question"), &q.question, true)?;
            check_text(format!("qa[{i}].answer"), &q.answer, false)?;
            check_cite(format!("qa[{i}]"), q.cite, segments)?;
        }
        Ok(())
    }

    /// Marks what the host changed, compared with the summary before the edit: an item that is new or whose
    /// text or citation differs is `edited`; an untouched one keeps its mark.
    pub fn mark_edits(&mut self, before: Option<&Summary>) {
        let was = |f: &dyn Fn(&Summary) -> bool| before.is_some_and(f);
        for t in &mut self.key_topics {
            let same = was(&|b| b.key_topics.iter().any(|o| o.topic == t.topic && o.cite == t.cite && !o.edited));
            t.edited = !same;
        }
        for a in &mut self.action_items {
            let same = was(&|b| b.action_items.iter().any(|o| o.text == a.text && o.cite == a.cite && !o.edited));
            a.edited = !same;
        }
        for q in &mut self.qa {
            let same = was(&|b| {
                b.qa.iter().any(|o| o.question == q.question && o.answer == q.answer && o.cite == q.cite && !o.edited)
            });
            q.edited = !same;
        }
    }

    /// Whether a host changed anything in it.
    pub fn has_edits(&self) -> bool {
        self.key_topics.iter().any(|t| t.edited)
            || self.action_items.iter().any(|a| a.edited)
            || self.qa.iter().any(|q| q.edited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: i64, end_ms: i64) -> SegmentRecord {
        SegmentRecord {
            segment_id: format!("s{start_ms}"),
            speaker_identity: "h_1".into(),
            speaker_name: "Ann".into(),
            text: "words".into(),
            start_ms,
            end_ms,
            language: "en".into(),
            provider: "test".into(),
        }
    }

    #[test]
    fn citations_must_touch_a_segment() {
        let segments = [seg(1_000, 4_000), seg(10_000, 12_000)];
        assert!(Citation::new(2_000, 3_000).is_in(&segments));
        assert!(Citation::new(4_000, 9_000).is_in(&segments), "touching the end counts");
        assert!(!Citation::new(5_000, 9_000).is_in(&segments), "the gap between segments is no citation");
        assert!(!Citation::new(-5, 0).is_in(&segments));
        assert!(!Citation::new(13_000, 14_000).is_in(&segments));
    }

    #[test]
    fn old_summaries_without_an_end_read_as_points() {
        let s: Summary = serde_json::from_str(
            r#"{"abstract":"a","keyTopics":[{"topic":"t","startMs":1500}],"actionItems":[],"qa":[],"kind":"llm","language":"en"}"#,
        )
        .unwrap();
        let s = s.normalised();
        assert_eq!(s.key_topics[0].cite, Citation { start_ms: 1500, end_ms: 1500 });
        assert!(s.key_topics[0].cite.is_in(&[seg(1_000, 4_000)]));
    }

    #[test]
    fn edits_name_the_field_and_are_marked() {
        let segments = [seg(0, 5_000)];
        let before = Summary {
            abstract_text: "a".into(),
            key_topics: vec![Topic { topic: "light".into(), cite: Citation::new(0, 100), edited: false }],
            action_items: vec![],
            qa: vec![],
            kind: "extractive".into(),
            language: "en".into(),
        };
        let mut edit = before.clone();
        edit.key_topics.push(Topic { topic: " ".into(), cite: Citation::new(0, 10), edited: false });
        let err = edit.validate_edit(&segments).unwrap_err();
        assert!(err.to_string().contains("keyTopics[1].topic"), "{err}");
        edit.key_topics[1].topic = "water".into();
        edit.key_topics[1].cite = Citation::new(9_000, 9_500);
        assert!(edit.validate_edit(&segments).unwrap_err().to_string().contains("keyTopics[1]"));
        edit.key_topics[1].cite = Citation::new(1_000, 2_000);
        edit.validate_edit(&segments).unwrap();
        edit.mark_edits(Some(&before));
        assert!(!edit.key_topics[0].edited && edit.key_topics[1].edited && edit.has_edits());
    }
}
