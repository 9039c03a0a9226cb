//! Owns [`DeepgramDouble`]: a stand-in for Deepgram's streaming speech-to-text API (`wss://api.deepgram.com/v1/listen`),
//! faithful to its documented wire format.
//!
//! What it checks and answers as Deepgram does: `Authorization: Token KEY` (else HTTP 401 with
//! `{"err_code","err_msg","request_id"}`), `encoding`/`sample_rate`/`channels` query parameters (else 400),
//! binary frames of linear16 audio, the text messages `KeepAlive`, `Finalize` and `CloseStream`, interim
//! `Results` (`is_final: false`) while audio arrives, final `Results` every few seconds of audio and on
//! `Finalize` (`from_finalize: true`), a `Metadata` message and a normal close after `CloseStream`, and a
//! close with code 1011 / reason `NET-0001` when neither audio nor KeepAlive arrived within the timeout.
//!
//! It cannot understand speech, so it "recognises" a made-up code instead: audio is read in 20 ms frames, and a
//! run of frames whose samples all equal `k > 0` is the word `vocabulary[k - 1]` (or `w<k>`); zero samples are
//! silence. Tests build audio from words with [`DeepgramDouble::speak`], so transcripts are deterministic and
//! re-sent audio yields the same words again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, http};

use crate::lock;

/// Samples per "recognition" frame: 20 ms at 16 kHz.
pub const FRAME: usize = 320;
const RATE: f64 = 16_000.0;

/// How a [`DeepgramDouble`] behaves.
#[derive(Debug, Clone)]
pub struct DeepgramDoubleConfig {
    pub api_key: String,
    /// Close a stream that got neither audio nor KeepAlive for this long (Deepgram: 10 s).
    pub idle_timeout: Duration,
    /// Send an interim result after every this much new audio.
    pub interim_every: Duration,
    /// Finalise on its own after this much unfinalised audio (Deepgram finalises in chunks of a few seconds).
    pub final_every: Duration,
    /// Word `k` is `vocabulary[k - 1]`; beyond it, `w<k>`.
    pub vocabulary: Vec<String>,
}

impl DeepgramDoubleConfig {
    pub fn new(api_key: &str) -> Self {
        Self {
            api_key: api_key.to_owned(),
            idle_timeout: Duration::from_secs(10),
            interim_every: Duration::from_millis(500),
            final_every: Duration::from_secs(3),
            vocabulary: Vec::new(),
        }
    }
}

/// What one connection did, for assertions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeepgramConnection {
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
    /// Bytes of audio received.
    pub audio_bytes: usize,
    pub keepalives: usize,
    pub finalizes: usize,
    pub close_stream: bool,
    /// How the double ended it: `client`, `timeout NET-0001`, `dropped`.
    pub ended: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    connections: Vec<DeepgramConnection>,
    /// Handshakes still to refuse, with this status.
    refuse: Vec<u16>,
}

/// A running Deepgram double on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct DeepgramDouble {
    addr: SocketAddr,
    config: Arc<DeepgramDoubleConfig>,
    state: Arc<Mutex<State>>,
    drop_tx: broadcast::Sender<()>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for DeepgramDouble {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl DeepgramDouble {
    pub async fn start(config: DeepgramDoubleConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config = Arc::new(config);
        let state = Arc::new(Mutex::new(State::default()));
        let (drop_tx, _) = broadcast::channel(4);
        let task = {
            let (config, state, drop_tx) = (config.clone(), state.clone(), drop_tx.clone());
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (config, state, dropper) = (config.clone(), state.clone(), drop_tx.subscribe());
                    tokio::spawn(async move {
                        if let Err(err) = serve(tcp, config, state, dropper).await {
                            tracing::debug!(error = %err, "Deepgram double connection ended");
                        }
                    });
                }
            })
        };
        Ok(Self { addr, config, state, drop_tx, task: Arc::new(task) })
    }

    /// `ws://127.0.0.1:PORT`: what the agent's `deepgram_url` takes.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn connections(&self) -> Vec<DeepgramConnection> {
        lock(&self.state).connections.clone()
    }

    /// Cuts every open stream without a close frame, as a network failure would.
    pub fn drop_connections(&self) {
        let _ = self.drop_tx.send(());
    }

    /// Refuses the next handshakes, one per status given (e.g. 503), before accepting again.
    pub fn refuse_next(&self, statuses: &[u16]) {
        lock(&self.state).refuse.extend_from_slice(statuses);
    }

    /// 16 kHz audio saying `words` (1-based vocabulary indices) for `word_ms` each, separated by
    /// `gap_ms` of silence.
    pub fn speak(words: &[i16], word_ms: usize, gap_ms: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for &w in words {
            out.extend(std::iter::repeat_n(w, word_ms * 16));
            out.extend(std::iter::repeat_n(0, gap_ms * 16));
        }
        out
    }

    pub fn config(&self) -> &DeepgramDoubleConfig {
        &self.config
    }
}

fn error_response(status: u16, code: &str, message: &str) -> ErrorResponse {
    let body = json!({"err_code": code, "err_msg": message, "request_id": "00000000-double"}).to_string();
    let mut response = http::Response::new(Some(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    response
}

// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn serve(
    tcp: tokio::net::TcpStream,
    config: Arc<DeepgramDoubleConfig>,
    state: Arc<Mutex<State>>,
    mut dropper: broadcast::Receiver<()>,
) -> anyhow::Result<()> {
    let mut conn = DeepgramConnection::default();
    let checked_state = state.clone();
    let api_key = config.api_key.clone();
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        if request.uri().path() != "/v1/listen" {
            return Err(error_response(404, "NOT_FOUND", "unknown path"));
        }
        let query: HashMap<String, String> =
            url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
        let authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        conn.query = query.clone();
        conn.authorization = authorization.clone();
        let refused = {
            let mut s = lock(&checked_state);
            if s.refuse.is_empty() { None } else { Some(s.refuse.remove(0)) }
        };
        if let Some(status) = refused {
            return Err(error_response(status, "SERVICE_UNAVAILABLE", "refused by the test"));
        }
        if authorization.as_deref() != Some(&format!("Token {api_key}")) {
            return Err(error_response(401, "INVALID_AUTH", "Invalid credentials."));
        }
        if query.get("encoding").map(String::as_str) != Some("linear16")
            || query.get("sample_rate").map(String::as_str) != Some("16000")
            || query.get("channels").is_some_and(|c| c != "1")
        {
            return Err(error_response(
                400,
                "Bad Request",
                "the double takes encoding=linear16, sample_rate=16000, channels=1",
            ));
        }
        Ok(response)
    };
    let accepted = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    let index = {
        let mut s = lock(&state);
        s.connections.push(conn.clone());
        s.connections.len() - 1
    };
    let mut ws = accepted?;
    let record = |f: &dyn Fn(&mut DeepgramConnection)| {
        if let Some(c) = lock(&state).connections.get_mut(index) {
            f(c);
        }
    };
    let interim_samples = (config.interim_every.as_secs_f64() * RATE) as usize;
    let final_samples = (config.final_every.as_secs_f64() * RATE) as usize;
    let mut audio: Vec<i16> = Vec::new();
    let mut pending = Vec::<u8>::new();
    // Audio before this sample is finalised.
    let mut finalized = 0usize;
    let mut last_interim = 0usize;
    loop {
        let message = tokio::select! {
            m = tokio::time::timeout(config.idle_timeout, ws.next()) => m,
            _ = dropper.recv() => {
                record(&|c| c.ended = Some("dropped".into()));
                // No close frame: the TCP connection just goes away.
                return Ok(());
            }
        };
        let message = match message {
            Err(_) => {
                record(&|c| c.ended = Some("timeout NET-0001".into()));
                let frame = CloseFrame { code: CloseCode::Error, reason: "NET-0001".into() };
                let _ = ws.close(Some(frame)).await;
                return Ok(());
            }
            Ok(None) | Ok(Some(Err(_))) => {
                record(&|c| c.ended = Some("client".into()));
                return Ok(());
            }
            Ok(Some(Ok(m))) => m,
        };
        match message {
            Message::Binary(bytes) => {
                record(&|c| c.audio_bytes += bytes.len());
                pending.extend_from_slice(&bytes);
                let whole = pending.len() / 2 * 2;
                audio.extend(
                    pending
                        .drain(..whole)
                        .collect::<Vec<u8>>()
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
                if audio.len() - finalized >= final_samples {
                    let end = audio.len() / FRAME * FRAME;
                    send_results(&mut ws, &config, &audio, finalized, end, true, false).await?;
                    finalized = end;
                    last_interim = end;
                } else if audio.len() - last_interim >= interim_samples {
                    last_interim = audio.len();
                    send_results(&mut ws, &config, &audio, finalized, audio.len(), false, false).await?;
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                match kind.as_str() {
                    "KeepAlive" => record(&|c| c.keepalives += 1),
                    "Finalize" => {
                        record(&|c| c.finalizes += 1);
                        send_results(&mut ws, &config, &audio, finalized, audio.len(), true, true).await?;
                        finalized = audio.len();
                        last_interim = finalized;
                    }
                    "CloseStream" => {
                        record(&|c| c.close_stream = true);
                        if audio.len() > finalized {
                            send_results(&mut ws, &config, &audio, finalized, audio.len(), true, false).await?;
                        }
                        let metadata = json!({"type": "Metadata", "transaction_key": "deprecated",
                            "request_id": "00000000-double", "sha256": "", "created": "2026-01-01T00:00:00.000Z",
                            "duration": audio.len() as f64 / RATE, "channels": 1, "models": ["double"],
                            "model_info": {"double": {"name": "double", "version": "1", "arch": "double"}}});
                        ws.send(Message::text(metadata.to_string())).await?;
                        let _ = ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })).await;
                        record(&|c| c.ended = Some("client".into()));
                        return Ok(());
                    }
                    _ => {
                        let frame = CloseFrame { code: CloseCode::Policy, reason: "DATA-0000".into() };
                        let _ = ws.close(Some(frame)).await;
                        return Ok(());
                    }
                }
            }
            Message::Close(_) => {
                record(&|c| c.ended = Some("client".into()));
                return Ok(());
            }
            _ => {}
        }
    }
}

/// The words in `audio[from..to]`, each as (word, start s, end s).
fn recognise(config: &DeepgramDoubleConfig, audio: &[i16], from: usize, to: usize) -> Vec<(String, f64, f64)> {
    let mut words: Vec<(String, f64, f64)> = Vec::new();
    let mut current: Option<(i16, usize)> = None;
    let mut frame_start = from;
    while frame_start + FRAME <= to {
        let frame = &audio[frame_start..frame_start + FRAME];
        let code = if frame.iter().all(|&s| s == frame[0]) && frame[0] > 0 { frame[0] } else { 0 };
        match current {
            Some((k, _)) if k == code => {}
            _ => {
                if let Some((k, start)) = current.take() {
                    words.push((name(config, k), start as f64 / RATE, frame_start as f64 / RATE));
                }
                if code > 0 {
                    current = Some((code, frame_start));
                }
            }
        }
        frame_start += FRAME;
    }
    if let Some((k, start)) = current {
        words.push((name(config, k), start as f64 / RATE, frame_start as f64 / RATE));
    }
    words
}

fn name(config: &DeepgramDoubleConfig, k: i16) -> String {
    usize::try_from(k - 1).ok().and_then(|i| config.vocabulary.get(i).cloned()).unwrap_or_else(|| format!("w{k}"))
}

async fn send_results<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    config: &DeepgramDoubleConfig,
    audio: &[i16],
    from: usize,
    to: usize,
    is_final: bool,
    from_finalize: bool,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let words = recognise(config, audio, from, to);
    let transcript = words.iter().map(|w| w.0.as_str()).collect::<Vec<_>>().join(" ");
    let results = json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": (to - from) as f64 / RATE,
        "start": from as f64 / RATE,
        "is_final": is_final,
        "speech_final": is_final && from_finalize,
        "channel": {"alternatives": [{
            "transcript": transcript,
            "confidence": if words.is_empty() { 0.0 } else { 0.99 },
            "words": words.iter().map(|(w, s, e)| json!({"word": w, "start": s, "end": e, "confidence": 0.99, "punctuated_word": w})).collect::<Vec<_>>(),
        }]},
        "metadata": {"request_id": "00000000-double", "model_info": {"name": "double", "version": "1", "arch": "double"}, "model_uuid": "double"},
        "from_finalize": from_finalize,
    });
    ws.send(Message::text(results.to_string())).await?;
    Ok(())
}
