//! Owns [`LlmDouble`]: a stand-in for an OpenAI-compatible chat-completions endpoint (`POST /v1/chat/completions`,
//! as OpenAI, Ollama, vLLM and llama.cpp's server answer it), for the assistant's summaries.
//!
//! It answers each request with the next scripted [`LlmReply`] (the last one repeats): a chat completion whose
//! message content is given text, an HTTP error with OpenAI's error body, or a body that is not JSON at all. It
//! checks the bearer key when one is configured (401 `invalid_api_key` otherwise, as OpenAI does) and records
//! every request body for assertions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::lock;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum LlmReply {
    /// 200 with a completion whose message content is this text.
    Content(String),
    /// This status with OpenAI's error body carrying this message.
    Error(u16, String),
    /// 200 with a body that is not JSON.
    Garbage,
}

#[derive(Debug, Default)]
struct Script {
    script: Vec<LlmReply>,
    requests: Vec<Value>,
    api_key: Option<String>,
    /// Reject requests that carry `response_format` with 400, as some servers do.
    no_response_format: bool,
}

/// A running chat-completions double on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct LlmDouble {
    addr: SocketAddr,
    state: Arc<Mutex<Script>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for LlmDouble {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl LlmDouble {
    pub async fn start(script: Vec<LlmReply>) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(Script { script, ..Default::default() }));
        let app = axum::Router::new().route("/v1/chat/completions", post(complete)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task: Arc::new(task) })
    }

    /// Requires `Authorization: Bearer KEY`.
    pub fn require_key(&self, key: &str) {
        lock(&self.state).api_key = Some(key.to_owned());
    }

    /// Refuses `response_format` (400), like servers without JSON mode.
    pub fn refuse_response_format(&self) {
        lock(&self.state).no_response_format = true;
    }

    /// `http://127.0.0.1:PORT/v1`: what `[agent] llm_url` takes.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body so far.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state).requests.clone()
    }

    /// A completion's message content: the text of the user message of request `i`.
    pub fn user_message(&self, i: usize) -> String {
        self.requests()
            .get(i)
            .and_then(|r| r["messages"].as_array().cloned())
            .and_then(|m| m.iter().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str().map(str::to_owned)))
            .unwrap_or_default()
    }
}

async fn complete(State(state): State<Arc<Mutex<Script>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let reply = {
        let mut s = lock(&state);
        s.requests.push(body.clone());
        if let Some(key) = &s.api_key {
            let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if sent != format!("Bearer {key}") {
                return error(401, "Incorrect API key provided.", "invalid_api_key");
            }
        }
        if s.no_response_format && body.get("response_format").is_some() {
            return error(400, "Unrecognized request argument supplied: response_format", "invalid_request_error");
        }
        if s.script.len() > 1 { s.script.remove(0) } else { s.script.first().cloned().unwrap_or(LlmReply::Garbage) }
    };
    match reply {
        LlmReply::Content(text) => Json(json!({
            "id": "chatcmpl-double",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }))
        .into_response(),
        LlmReply::Error(status, message) => error(status, &message, "server_error"),
        LlmReply::Garbage => (StatusCode::OK, "<html>upstream timed out</html>").into_response(),
    }
}

fn error(status: u16, message: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": code, "param": null, "code": code}});
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}
