//! The lecture summary: its JSON shape, and the choice between an OpenAI-compatible chat model and the
//! built-in extractive summariser.

pub mod extractive;
pub mod llm;

use serde::{Deserialize, Serialize};

use crate::agent::transcript::Segment;
use crate::config::AgentConfig;

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

/// What else a model may know of the lecture besides its speech (the agent API gives no more: no chat, no
/// files).
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub title: String,
    /// The speakers' display names, in the order they first spoke.
    pub speakers: Vec<String>,
}

/// A summary attempt's result, as the artifact records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub summary: Option<Summary>,
    /// `llm` or `extractive` when there is a summary.
    pub kind: Option<&'static str>,
    pub provider: String,
    pub model: String,
    /// Why there is no summary.
    pub error: Option<String>,
}

/// How summaries are written: by a chat model when one is configured, else by the built-in extractive
/// summariser.
#[derive(Debug, Clone)]
pub enum Summariser {
    Extractive,
    Llm(llm::LlmSummariser),
}

impl Summariser {
    pub fn from_config(config: &AgentConfig) -> anyhow::Result<Self> {
        Ok(match &config.llm_url {
            Some(url) => Self::Llm(llm::LlmSummariser::new(url, config.llm_model.clone(), config.llm_api_key.clone())?),
            None => Self::Extractive,
        })
    }

    /// Summarises the lecture. A failure is an outcome with a readable reason, never a lost transcript.
    pub async fn summarise(&self, segments: &[Segment], extras: &Extras, language: &str) -> Outcome {
        match self {
            Self::Extractive => Outcome {
                summary: Some(extractive::summarise(segments, language)),
                kind: Some(extractive::KIND),
                provider: "confctl".to_owned(),
                model: extractive::MODEL.to_owned(),
                error: None,
            },
            Self::Llm(llm) => {
                let (provider, model) = (llm.provider().to_owned(), llm.model().to_owned());
                if segments.is_empty() {
                    // Nothing was said: no model call, and nothing for it to invent from.
                    return Outcome {
                        summary: Some(extractive::summarise(segments, language)),
                        kind: Some(extractive::KIND),
                        provider: "confctl".to_owned(),
                        model: extractive::MODEL.to_owned(),
                        error: None,
                    };
                }
                match llm.summarise(segments, extras, language).await {
                    Ok(summary) => {
                        Outcome { summary: Some(summary), kind: Some(llm::KIND), provider, model, error: None }
                    }
                    Err(err) => Outcome {
                        summary: None,
                        kind: None,
                        provider,
                        model,
                        error: Some(format!("the summary could not be written: {err}")),
                    },
                }
            }
        }
    }
}
