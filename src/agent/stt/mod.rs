//! Speech to text: the one trait every provider implements, the audio and transcript types between the audio
//! pipeline and the providers, and the choice of provider from the configuration.

pub mod deepgram;
pub mod openai;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::config::{AgentConfig, SttProvider};

/// Every provider receives 16 kHz mono signed 16-bit audio (what Whisper works at and Deepgram accepts).
pub const SAMPLE_RATE: u32 = 16_000;

/// One speaker's audio as the pipeline hands it to a provider: speech only, cut into utterances by the
/// voice-activity detector (silence is never sent, so a 20-minute pause costs nothing).
#[derive(Debug, Clone, PartialEq)]
pub enum AudioEvent {
    /// Speech samples; `at_ms` is the Unix time (ms) of the first sample.
    Speech { samples: Vec<i16>, at_ms: i64 },
    /// The current utterance is over: a pause, or the utterance reached its length cap.
    UtteranceEnd,
}

/// A piece of transcript from a provider. Interim results (Deepgram) are followed by a final one with the
/// same `segment_id`. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcribed {
    pub segment_id: String,
    pub text: String,
    pub is_final: bool,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// How a provider has been doing, for the assistant's status reports: its last failure, until a success.
/// Providers retry failures inside `transcribe`, so without this nobody outside the log would know.
#[derive(Debug, Default)]
pub struct Health {
    failure: Mutex<Option<String>>,
}

impl Health {
    pub fn succeeded(&self) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn failed(&self, err: &anyhow::Error) {
        let text: String = format!("speech to text fails: {err:#}").chars().take(300).collect();
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
    }

    /// What fails right now, if anything.
    pub fn problem(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A speech-to-text service.
#[async_trait::async_trait]
pub trait SpeechToText: Send + Sync + 'static {
    /// The provider name stored with every segment: `whisper` (any OpenAI-compatible server) or `deepgram`.
    fn provider(&self) -> &'static str;

    /// How the provider has been doing; `None` for one that does not say.
    fn health(&self) -> Option<&Health> {
        None
    }

    /// Transcribes one speaker until `audio` closes, sending results to `out` as they arrive. Returns once
    /// the last utterance is transcribed (or given up on). Provider failures are retried inside; this only
    /// fails when `out` is gone.
    async fn transcribe(
        &self,
        language: &str,
        audio: mpsc::Receiver<AudioEvent>,
        out: mpsc::Sender<Transcribed>,
    ) -> anyhow::Result<()>;
}

/// The provider the configuration asks for.
pub fn from_config(config: &AgentConfig) -> anyhow::Result<Arc<dyn SpeechToText>> {
    Ok(match config.stt_provider {
        SttProvider::Whisper => Arc::new(openai::OpenAiStt::new(
            config.stt_url.clone(),
            config.stt_model.clone(),
            config.stt_api_key.clone(),
        )?),
        SttProvider::Deepgram => Arc::new(deepgram::DeepgramStt::new(
            config.deepgram_url.clone(),
            config.deepgram_model.clone(),
            config.deepgram_api_key.clone(),
        )),
    })
}

/// A new segment id: unique per room without coordination between agents.
pub(crate) fn new_segment_id() -> String {
    format!("seg_{}", crate::ids::random_chars(b"abcdefghijklmnopqrstuvwxyz0123456789", 16))
}

/// Milliseconds of audio in `samples` at [`SAMPLE_RATE`].
pub(crate) fn duration_ms(samples: usize) -> i64 {
    (samples as i64) * 1000 / i64::from(SAMPLE_RATE)
}
