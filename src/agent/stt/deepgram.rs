//! Speech to text through Deepgram's streaming API: a WebSocket to `/v1/listen` per speaker carrying
//! 16 kHz linear16 audio, answered with interim and final results. The socket is opened at the first speech,
//! kept alive through pauses, `Finalize`d at the end of every utterance (so the final text comes at once),
//! closed after a long silence, and reopened after a failure with the audio not yet transcribed sent again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{AudioEvent, Health, SAMPLE_RATE, SpeechToText, Transcribed, new_segment_id};
use crate::secret::Secret;

/// Deepgram closes a stream that got neither audio nor a KeepAlive for 10 s; a tick finding the socket quiet
/// for half of this sends one, so the gap never exceeds 1.5 times it.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(4);
/// After this much silence the socket is closed; the next utterance opens a new one.
const IDLE_CLOSE: Duration = Duration::from_secs(60);
/// Audio kept for re-sending after a reconnect (everything sent since the last final result, up to this).
const MAX_UNACKED_MS: u64 = 30_000;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long to wait for the last results after `CloseStream`.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Deepgram's streaming transcription.
#[derive(Debug, Clone)]
pub struct DeepgramStt {
    base: url::Url,
    model: String,
    api_key: Option<Secret>,
    reconnect_base: Duration,
    keepalive_every: Duration,
    health: Arc<Health>,
}

impl DeepgramStt {
    /// `base` is `wss://api.deepgram.com` (or a self-hosted Deepgram, or a test double).
    pub fn new(base: url::Url, model: String, api_key: Option<Secret>) -> Self {
        Self {
            base,
            model,
            api_key,
            reconnect_base: Duration::from_millis(500),
            keepalive_every: KEEPALIVE_EVERY,
            health: Arc::default(),
        }
    }

    /// Shortens the first pause before reconnecting (tests).
    #[must_use]
    pub fn with_reconnect_base(mut self, base: Duration) -> Self {
        self.reconnect_base = base;
        self
    }

    /// Sends KeepAlive more often (tests, against a double with a short timeout).
    #[must_use]
    pub fn with_keepalive_every(mut self, every: Duration) -> Self {
        self.keepalive_every = every;
        self
    }

    /// The `/v1/listen` URL with the stream's parameters.
    pub fn listen_url(&self, language: &str) -> url::Url {
        let mut url = self.base.clone();
        let path = format!("{}/v1/listen", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut()
            .append_pair("model", &self.model)
            .append_pair("language", language)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &SAMPLE_RATE.to_string())
            .append_pair("channels", "1")
            .append_pair("interim_results", "true")
            .append_pair("punctuate", "true")
            .append_pair("smart_format", "true")
            .append_pair("endpointing", "300");
        url
    }

    async fn connect(&self, language: &str) -> anyhow::Result<Socket> {
        let url = self.listen_url(language);
        let mut request = url.as_str().into_client_request()?;
        if let Some(key) = &self.api_key {
            request.headers_mut().insert(
                "authorization",
                format!("Token {}", key.expose())
                    .parse()
                    .map_err(|_| anyhow::anyhow!("the Deepgram API key is not valid header text"))?,
            );
        }
        let connecting = tokio_tungstenite::connect_async(request);
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Err(_) => anyhow::bail!("Deepgram did not accept the connection within 10 s"),
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let reason = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("err_msg").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| super::openai::excerpt(&body));
                anyhow::bail!("Deepgram refused the stream: {} {reason}", response.status())
            }
            Ok(Err(err)) => anyhow::bail!("cannot reach Deepgram at {}: {err}", self.base),
        }
    }
}

/// Audio sent on the current socket and not yet covered by a final result.
#[derive(Debug)]
struct Chunk {
    /// Offset of the first sample in the socket's audio stream.
    offset: u64,
    samples: Vec<i16>,
    at_ms: i64,
}

/// One speaker's stream state, kept across reconnects.
#[derive(Default)]
struct Stream {
    unacked: VecDeque<Chunk>,
    /// Samples sent on the current socket.
    sent: u64,
    /// The segment interim results are currently updating.
    segment_id: Option<String>,
    last_audio: Option<Instant>,
    last_sent: Option<Instant>,
    /// Speech arrived since the last utterance end.
    in_utterance: bool,
}

impl Stream {
    /// Appends audio; the caller sends it when connected.
    fn push(&mut self, samples: Vec<i16>, at_ms: i64) {
        self.unacked.push_back(Chunk { offset: self.sent, samples, at_ms });
        self.sent += self.unacked.back().map_or(0, |c| c.samples.len() as u64);
        let max = MAX_UNACKED_MS * u64::from(SAMPLE_RATE) / 1000;
        let mut held: u64 = self.unacked.iter().map(|c| c.samples.len() as u64).sum();
        while held > max {
            let Some(dropped) = self.unacked.pop_front() else { break };
            held -= dropped.samples.len() as u64;
            tracing::warn!("Deepgram unreachable for too long: dropping untranscribed audio");
        }
    }

    /// A new socket: unacked audio is renumbered from 0 and will be sent again.
    fn restart(&mut self) {
        let mut offset = 0;
        for chunk in &mut self.unacked {
            chunk.offset = offset;
            offset += chunk.samples.len() as u64;
        }
        self.sent = offset;
    }

    /// The Unix time of a point of the socket's stream (seconds, as Deepgram reports it). Silence is never
    /// sent, so the stream's clock jumps where the speaker paused: every chunk carries its own time.
    fn time_at(&self, seconds: f64, fallback: &Option<(u64, i64)>) -> i64 {
        let sample = (seconds.max(0.0) * f64::from(SAMPLE_RATE)).round() as u64;
        let chunk = self.unacked.iter().rev().find(|c| c.offset <= sample).map(|c| (c.offset, c.at_ms));
        match chunk.or(*fallback) {
            Some((offset, at_ms)) => at_ms + ((sample.saturating_sub(offset)) * 1000 / u64::from(SAMPLE_RATE)) as i64,
            None => crate::time::now_ms(),
        }
    }

    /// Forgets audio a final result covered; returns the last forgotten chunk's position for later lookups.
    fn ack(&mut self, seconds: f64) -> Option<(u64, i64)> {
        let sample = (seconds.max(0.0) * f64::from(SAMPLE_RATE)).round() as u64;
        let mut last = None;
        while let Some(chunk) = self.unacked.front() {
            if chunk.offset + chunk.samples.len() as u64 > sample {
                break;
            }
            last = self.unacked.pop_front().map(|c| (c.offset, c.at_ms));
        }
        last
    }
}

/// One `Results` message (the fields confctl uses).
#[derive(Debug, Deserialize)]
struct Results {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize)]
struct Alternative {
    transcript: String,
}

#[async_trait::async_trait]
impl SpeechToText for DeepgramStt {
    fn provider(&self) -> &'static str {
        "deepgram"
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
        let mut stream = Stream::default();
        let mut socket: Option<Socket> = None;
        let mut backoff = self.reconnect_base;
        // When set, a reconnect is due (there is audio waiting to be transcribed).
        let mut reconnect_at: Option<Instant> = None;
        let mut acked_before: Option<(u64, i64)> = None;
        let mut keepalive = tokio::time::interval(self.keepalive_every);
        let mut audio_open = true;
        loop {
            if socket.is_none() && reconnect_at.is_some_and(|at| at <= Instant::now()) {
                match self.connect(language).await {
                    Ok(mut s) => {
                        self.health.succeeded();
                        backoff = self.reconnect_base;
                        reconnect_at = None;
                        stream.restart();
                        acked_before = None;
                        if send_unacked(&mut s, &stream).await.is_ok() {
                            stream.last_sent = Some(Instant::now());
                            socket = Some(s);
                        } else {
                            reconnect_at = Some(Instant::now() + backoff);
                        }
                    }
                    Err(err) => {
                        self.health.failed(&err);
                        tracing::warn!(error = %format!("{err:#}"), retry_in = ?backoff, "Deepgram stream failed");
                        reconnect_at = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            if !audio_open {
                return self.finish(language, socket, &mut stream, &mut acked_before, &out).await;
            }
            let reconnect_due = reconnect_at;
            tokio::select! {
                event = audio.recv(), if audio_open => match event {
                    Some(AudioEvent::Speech { samples, at_ms }) => {
                        let bytes = pcm_bytes(&samples);
                        stream.push(samples, at_ms);
                        stream.last_audio = Some(Instant::now());
                        stream.in_utterance = true;
                        match socket.as_mut() {
                            Some(s) => {
                                if s.send(Message::binary(bytes)).await.is_ok() {
                                    stream.last_sent = Some(Instant::now());
                                } else {
                                    socket = None;
                                    reconnect_at = Some(Instant::now());
                                }
                            }
                            None if reconnect_at.is_none() => reconnect_at = Some(Instant::now()),
                            None => {}
                        }
                    }
                    Some(AudioEvent::UtteranceEnd) => {
                        stream.in_utterance = false;
                        if let Some(s) = socket.as_mut() {
                            if s.send(Message::text(r#"{"type":"Finalize"}"#)).await.is_err() {
                                socket = None;
                                reconnect_at = Some(Instant::now());
                            }
                        }
                    }
                    None => audio_open = false,
                },
                message = next_message(&mut socket) => match message {
                    Some(Ok(message)) => {
                        if let Message::Close(frame) = &message {
                            let reason = frame.as_ref().map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                            tracing::info!(%reason, "Deepgram closed the stream");
                            socket = None;
                            if !stream.unacked.is_empty() {
                                reconnect_at = Some(Instant::now() + backoff);
                            }
                        } else {
                            self.handle(message, &mut stream, &mut acked_before, &out).await?;
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "the Deepgram stream broke");
                        socket = None;
                        reconnect_at = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    None => {
                        socket = None;
                        if !stream.unacked.is_empty() {
                            reconnect_at = Some(Instant::now() + backoff);
                        }
                    }
                },
                _ = sleep_until(reconnect_due), if socket.is_none() => {}
                _ = keepalive.tick(), if socket.is_some() => {
                    let idle = stream.last_audio.is_none_or(|t| t.elapsed() >= IDLE_CLOSE);
                    if let Some(s) = socket.as_mut() {
                        if idle && stream.unacked.is_empty() && stream.segment_id.is_none() {
                            let _ = s.send(Message::text(r#"{"type":"CloseStream"}"#)).await;
                            let _ = s.close(None).await;
                            socket = None;
                        } else if stream.last_sent.is_none_or(|t| t.elapsed() >= self.keepalive_every / 2) {
                            if s.send(Message::text(r#"{"type":"KeepAlive"}"#)).await.is_ok() {
                                stream.last_sent = Some(Instant::now());
                            } else {
                                socket = None;
                                reconnect_at = Some(Instant::now());
                            }
                        }
                    }
                }
            }
        }
    }
}

impl DeepgramStt {
    /// The speaker is gone: sends what is still untranscribed (reconnecting a few times if need be), asks
    /// Deepgram to flush with `CloseStream`, and reads the last results.
    async fn finish(
        &self,
        language: &str,
        mut socket: Option<Socket>,
        stream: &mut Stream,
        acked_before: &mut Option<(u64, i64)>,
        out: &mpsc::Sender<Transcribed>,
    ) -> anyhow::Result<()> {
        let mut backoff = self.reconnect_base;
        for _ in 0..3 {
            if socket.is_some() || stream.unacked.is_empty() {
                break;
            }
            match self.connect(language).await {
                Ok(mut s) => {
                    stream.restart();
                    *acked_before = None;
                    if send_unacked(&mut s, stream).await.is_ok() {
                        socket = Some(s);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "Deepgram stream failed at the end of a speaker's audio");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        let Some(mut s) = socket else { return Ok(()) };
        let _ = s.send(Message::text(r#"{"type":"CloseStream"}"#)).await;
        let deadline = Instant::now() + CLOSE_WAIT;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, s.next()).await {
            if matches!(message, Message::Close(_)) {
                break;
            }
            self.handle(message, stream, acked_before, out).await?;
        }
        let _ = s.close(None).await;
        Ok(())
    }

    /// Turns one server message into captions.
    async fn handle(
        &self,
        message: Message,
        stream: &mut Stream,
        acked_before: &mut Option<(u64, i64)>,
        out: &mpsc::Sender<Transcribed>,
    ) -> anyhow::Result<()> {
        let Message::Text(text) = message else { return Ok(()) };
        let results: Results = match serde_json::from_str(text.as_str()) {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(error = %err, "ignoring an unexpected Deepgram message");
                return Ok(());
            }
        };
        match results.kind.as_str() {
            "Results" => {}
            "Error" => {
                tracing::warn!(
                    description = results.description.as_deref().unwrap_or(""),
                    "Deepgram reported an error"
                );
                return Ok(());
            }
            _ => return Ok(()),
        }
        let transcript = results
            .channel
            .as_ref()
            .and_then(|c| c.alternatives.first())
            .map(|a| a.transcript.trim().to_owned())
            .unwrap_or_default();
        let start_ms = stream.time_at(results.start, acked_before);
        let end_ms = stream.time_at(results.start + results.duration, acked_before).max(start_ms);
        let segment = if results.is_final {
            if let Some(acked) = stream.ack(results.start + results.duration) {
                *acked_before = Some(acked);
            }
            match (stream.segment_id.take(), transcript.is_empty()) {
                (Some(id), _) => Some((id, true)),
                (None, false) => Some((new_segment_id(), true)),
                // Nothing said, nothing shown: no caption at all.
                (None, true) => None,
            }
        } else if transcript.is_empty() {
            None
        } else {
            Some((stream.segment_id.get_or_insert_with(new_segment_id).clone(), false))
        };
        if let Some((segment_id, is_final)) = segment {
            // A final with empty text still goes out: it clears the interim caption it replaces.
            let caption = Transcribed { segment_id, text: transcript, is_final, start_ms, end_ms };
            out.send(caption).await.map_err(|_| anyhow::anyhow!("the caption sink is gone"))?;
        }
        Ok(())
    }
}

async fn next_message(socket: &mut Option<Socket>) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match socket.as_mut() {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends the audio a lost socket had not transcribed yet; when its utterance had already ended, asks for
/// the final result right away again.
async fn send_unacked(socket: &mut Socket, stream: &Stream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    for chunk in &stream.unacked {
        socket.send(Message::binary(pcm_bytes(&chunk.samples))).await?;
    }
    if !stream.in_utterance && !stream.unacked.is_empty() {
        socket.send(Message::text(r#"{"type":"Finalize"}"#)).await?;
    }
    Ok(())
}

/// linear16: little-endian signed 16-bit samples.
fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests;
