//! The lecture summary: its JSON shape, and the choice between an OpenAI-compatible chat model and the
//! built-in extractive summariser.

pub mod extractive;

use serde::{Deserialize, Serialize};

/// What a lecture was about. Every item points (`startMs`, milliseconds since the room started) at the
/// place in the transcript it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub key_topics: Vec<Topic>,
    pub action_items: Vec<ActionItem>,
    pub qa: Vec<QuestionAnswer>,
    /// `llm` or `extractive`, so the JSON is labelled wherever it travels.
    pub kind: String,
    /// The lecture's language code.
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub topic: String,
    pub start_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionItem {
    pub text: String,
    pub start_ms: i64,
}

/// A question asked in the lecture and the answer given (empty when none followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionAnswer {
    pub question: String,
    pub answer: String,
    pub start_ms: i64,
}
