//! Speech to text through any OpenAI-compatible transcription server (`POST /audio/transcriptions`,
//! multipart): OpenAI itself, faster-whisper-server, speaches, whisper.cpp's server. Each utterance the
//! voice-activity detector cut is sent as one WAV file and comes back as one final segment.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc};

use super::{AudioEvent, Health, SAMPLE_RATE, SpeechToText, Transcribed, duration_ms, new_segment_id};
use crate::secret::Secret;

/// Shorter utterances are clicks and coughs: Whisper turns them into invented words.
const MIN_UTTERANCE_MS: i64 = 300;
/// Utterances waiting for the server, per speaker. A server slower than real time would otherwise let the
/// queue (and the caption delay) grow without bound; the oldest are dropped first.
const MAX_QUEUED: usize = 16;
const ATTEMPTS: u32 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The end of the speaker's previous text, given to the model as context for names and spelling.
const PROMPT_CHARS: usize = 200;

/// An OpenAI-compatible transcription endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiStt {
    endpoint: String,
    model: String,
    api_key: Option<Secret>,
    http: reqwest::Client,
    retry_base: Duration,
    health: Arc<Health>,
}

impl OpenAiStt {
    /// `base_url` is the API base including its version, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8000/v1`.
    pub fn new(base_url: url::Url, model: String, api_key: Option<Secret>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        let endpoint = format!("{}/audio/transcriptions", base_url.as_str().trim_end_matches('/'));
        Ok(Self { endpoint, model, api_key, http, retry_base: Duration::from_millis(500), health: Arc::default() })
    }

    /// Shortens the pause between retries (tests).
    #[must_use]
    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    /// Transcribes one utterance (16 kHz mono samples), retrying transient failures.
    pub async fn transcribe_utterance(&self, samples: &[i16], language: &str, prompt: &str) -> anyhow::Result<String> {
        let wav = wav_bytes(samples, SAMPLE_RATE);
        let mut last_error = anyhow::anyhow!("no attempt made");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.retry_base * 2u32.pow(attempt - 1)).await;
            }
            match self.request(&wav, language, prompt).await {
                Ok(text) => return Ok(text),
                Err(Failure::Permanent(err)) => return Err(err),
                Err(Failure::Transient(err)) => last_error = err,
            }
        }
        Err(last_error.context(format!("speech-to-text failed {ATTEMPTS} times")))
    }

    async fn request(&self, wav: &[u8], language: &str, prompt: &str) -> Result<String, Failure> {
        let file = reqwest::multipart::Part::bytes(wav.to_vec())
            .file_name("utterance.wav")
            .mime_str("audio/wav")
            .map_err(|e| Failure::Permanent(e.into()))?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", "json")
            .text("temperature", "0");
        if !language.is_empty() {
            // Whisper wants the primary language subtag (`pt`, not `pt-BR`).
            form = form.text("language", language.split('-').next().unwrap_or(language).to_owned());
        }
        if !prompt.is_empty() {
            form = form.text("prompt", prompt.to_owned());
        }
        let mut request = self.http.post(&self.endpoint).multipart(form);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response =
            request.send().await.map_err(|e| Failure::Transient(anyhow::anyhow!("{}: {e}", self.endpoint)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| Failure::Transient(e.into()))?;
        if !status.is_success() {
            let err = anyhow::anyhow!("{} answered {status}: {}", self.endpoint, excerpt(&body));
            // Overload and quota (429) and server trouble pass; a bad request or key does not.
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                Failure::Transient(err)
            } else {
                Failure::Permanent(err)
            });
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            text: String,
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| {
            Failure::Transient(anyhow::anyhow!(
                "{} answered with unexpected JSON ({e}): {}",
                self.endpoint,
                excerpt(&body)
            ))
        })?;
        Ok(answer.text.trim().to_owned())
    }
}

enum Failure {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

#[async_trait::async_trait]
impl SpeechToText for OpenAiStt {
    fn provider(&self) -> &'static str {
        "whisper"
    }

    fn health(&self) -> Option<&Health> {
        Some(&self.health)
    }

    async fn transcribe(
        &self,
        language: &str,
        mut audio: mpsc::Receiver<AudioEvent>,
        out: mpsc::Sender<Transcribed>,
    ) -> anyhow::Result<()> {
        // Audio keeps arriving while the server works, so collecting and sending are separate tasks joined
        // by a small queue; the audio side never waits for HTTP.
        let queue = Arc::new(Queue::default());
        let sender = {
            let (stt, queue, language) = (self.clone(), queue.clone(), language.to_owned());
            tokio::spawn(async move { stt.send_utterances(&queue, &language, out).await })
        };
        let mut current: Vec<i16> = Vec::new();
        let mut started_at = 0;
        while let Some(event) = audio.recv().await {
            match event {
                AudioEvent::Speech { samples, at_ms } => {
                    if current.is_empty() {
                        started_at = at_ms;
                    }
                    current.extend_from_slice(&samples);
                }
                AudioEvent::UtteranceEnd => queue.push(std::mem::take(&mut current), started_at).await,
            }
        }
        queue.push(current, started_at).await;
        queue.close().await;
        sender.await?
    }
}

impl OpenAiStt {
    async fn send_utterances(
        &self,
        queue: &Queue,
        language: &str,
        out: mpsc::Sender<Transcribed>,
    ) -> anyhow::Result<()> {
        let mut prompt = String::new();
        while let Some((samples, start_ms)) = queue.pop().await {
            let end_ms = start_ms + duration_ms(samples.len());
            let result = self.transcribe_utterance(&samples, language, &prompt).await;
            match &result {
                Ok(_) => self.health.succeeded(),
                Err(err) => self.health.failed(err),
            }
            match result {
                Ok(text) if !text.is_empty() => {
                    prompt = tail_chars(&format!("{prompt} {text}"), PROMPT_CHARS);
                    let segment = Transcribed { segment_id: new_segment_id(), text, is_final: true, start_ms, end_ms };
                    out.send(segment).await.map_err(|_| anyhow::anyhow!("the caption sink is gone"))?;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "an utterance could not be transcribed"),
            }
        }
        Ok(())
    }
}

/// Utterances (samples, start) waiting for the server, and whether more may come.
type Waiting = (VecDeque<(Vec<i16>, i64)>, bool);

/// Utterances waiting for the server.
#[derive(Default)]
struct Queue {
    items: Mutex<Waiting>,
    ready: Notify,
}

impl Queue {
    async fn push(&self, samples: Vec<i16>, at_ms: i64) {
        if duration_ms(samples.len()) < MIN_UTTERANCE_MS {
            return;
        }
        let mut items = self.items.lock().await;
        if items.0.len() >= MAX_QUEUED {
            items.0.pop_front();
            tracing::warn!("the speech-to-text server is slower than the speakers: an utterance was dropped");
        }
        items.0.push_back((samples, at_ms));
        self.ready.notify_one();
    }

    async fn close(&self) {
        self.items.lock().await.1 = true;
        self.ready.notify_one();
    }

    async fn pop(&self) -> Option<(Vec<i16>, i64)> {
        loop {
            {
                let mut items = self.items.lock().await;
                if let Some(item) = items.0.pop_front() {
                    return Some(item);
                }
                if items.1 {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }
}

/// A 16-bit PCM mono WAV file.
pub fn wav_bytes(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The first 300 characters of a response body, for error messages.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else {
        one_line
    }
}

fn tail_chars(text: &str, n: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(n)).collect::<String>().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_describes_16_bit_mono_pcm() {
        let wav = wav_bytes(&[0, 1, -1], 16_000);
        assert_eq!(wav.len(), 44 + 6);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(wav[4..8].try_into().unwrap()), 36 + 6);
        assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 16_000);
        assert_eq!(&wav[44..], &[0, 0, 1, 0, 0xff, 0xff]);
    }

    #[test]
    fn prompt_context_keeps_the_end_of_the_text() {
        assert_eq!(tail_chars("abc def", 3), "def");
        assert_eq!(tail_chars("ab", 5), "ab");
    }
}
