//! Writing the lecture summary (its shape is `crate::artifacts::summary`): the choice between an
//! OpenAI-compatible chat model and the built-in extractive summariser.

pub mod extractive;
pub mod llm;

use crate::admin::ai_settings::{SummariserKind, SummarySettings};
use crate::agent::transcript::Segment;
use crate::config::AgentConfig;

pub use crate::artifacts::summary::{ActionItem, Citation, QuestionAnswer, Summary, Topic};

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

    /// The summariser the AI settings ask for: the extractive one, or this one with another chat model. The
    /// LLM asked for by an assistant without `[agent] llm_url` is the extractive one (said in the log): a
    /// labelled summary rather than none.
    pub fn for_settings(&self, settings: &SummarySettings) -> Self {
        match (settings.summariser, self) {
            (Some(SummariserKind::Extractive), _) => Self::Extractive,
            (Some(SummariserKind::Llm), Self::Extractive) => {
                tracing::warn!("the AI settings choose the LLM summariser, but [agent] llm_url is not set here");
                Self::Extractive
            }
            (None, Self::Extractive) => Self::Extractive,
            (_, Self::Llm(llm)) => match &settings.llm_model {
                Some(model) => Self::Llm(llm.clone().with_model(model.clone())),
                None => Self::Llm(llm.clone()),
            },
        }
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
