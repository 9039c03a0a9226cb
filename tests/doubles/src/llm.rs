//! Owns [`LlmDouble`]: a stand-in for an OpenAI-compatible chat-completions endpoint (`POST /v1/chat/completions`,
//! as OpenAI, Ollama, vLLM and llama.cpp's server answer it), for the assistant's summaries.
//!
//! It answers each request with the next scripted [`LlmReply`] (the last one repeats): a chat completion whose
//! message content is given text or written from the request, an HTTP error with OpenAI's error body, or a body
//! that is not JSON at all. The content is whatever the test scripts, so it can cite transcript lines that do not
//! exist. Before answering it refuses what OpenAI refuses, with OpenAI's status and error body: a missing or
//! wrong bearer key when one is configured (401 `invalid_api_key`), a body that is not JSON, no `model`, no or
//! malformed `messages`, a `temperature` outside 0..=2, an unknown `response_format`, JSON mode without the word
//! "json" in any message, and messages longer than the model's context. It records every request body for
//! assertions.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::lock;

/// gpt-4o-mini's context, in tokens: what the double allows unless a test sets less.
const DEFAULT_CONTEXT_TOKENS: usize = 128_000;

/// One scripted answer.
#[derive(Clone)]
pub enum LlmReply {
    /// 200 with a completion whose message content is this text.
    Content(String),
    /// 200 with a completion whose message content this function writes from the request body: for answers
    /// that depend on what was asked, such as the lines of the transcript part a request shows.
    Answer(Arc<dyn Fn(&Value) -> String + Send + Sync>),
    /// This status with OpenAI's error body carrying this message.
    Error(u16, String),
    /// 200 with a body that is not JSON.
    Garbage,
}

impl LlmReply {
    pub fn answer(write: impl Fn(&Value) -> String + Send + Sync + 'static) -> Self {
        Self::Answer(Arc::new(write))
    }
}

impl fmt::Debug for LlmReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Content(text) => f.debug_tuple("Content").field(text).finish(),
            Self::Answer(_) => f.write_str("Answer(..)"),
            Self::Error(status, message) => f.debug_tuple("Error").field(status).field(message).finish(),
            Self::Garbage => f.write_str("Garbage"),
        }
    }
}

#[derive(Debug)]
struct Script {
    script: Vec<LlmReply>,
    requests: Vec<Value>,
    api_key: Option<String>,
    /// Reject requests that carry `response_format` with 400, as some servers do.
    no_response_format: bool,
    context_tokens: usize,
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
        let state = Arc::new(Mutex::new(Script {
            script,
            requests: Vec::new(),
            api_key: None,
            no_response_format: false,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
        }));
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

    /// The model's context in tokens (128,000 unless set): longer messages get OpenAI's 400
    /// `context_length_exceeded`. Tokens are estimated as [`estimated_tokens`] does.
    pub fn limit_context(&self, tokens: usize) {
        lock(&self.state).context_tokens = tokens;
    }

    /// `http://127.0.0.1:PORT/v1`: what `[agent] llm_url` takes.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body so far, refused ones included.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state).requests.clone()
    }

    /// The text of the user message of request `i`.
    pub fn user_message(&self, i: usize) -> String {
        self.requests().get(i).map(user_message).unwrap_or_default()
    }
}

/// The text of a request body's user message.
pub fn user_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str().map(str::to_owned)))
        .unwrap_or_default()
}

/// A request's messages in tokens, by OpenAI's rule of thumb of four bytes of text a token (a few more for
/// each message's framing). Real tokenisers differ by language; a bound on this is a bound on bytes.
pub fn estimated_tokens(body: &Value) -> usize {
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    messages.iter().map(|m| m["content"].as_str().map_or(0, str::len).div_ceil(4) + 4).sum()
}

async fn complete(State(state): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes) -> Response {
    let (reply, body) = {
        let mut s = lock(&state);
        let body = serde_json::from_slice::<Value>(&body);
        if let Ok(body) = &body {
            s.requests.push(body.clone());
        }
        // As OpenAI does: the key first, then the body.
        if let Some(key) = &s.api_key {
            let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if sent != format!("Bearer {key}") {
                return error(401, "Incorrect API key provided.", "invalid_api_key");
            }
        }
        let Ok(body) = body else {
            return invalid(
                "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
                None,
                None,
            );
        };
        if let Err(r) = check(&body, s.context_tokens) {
            return invalid(&r.message, r.param.as_deref(), r.code);
        }
        if s.no_response_format && body.get("response_format").is_some() {
            return invalid("Unrecognized request argument supplied: response_format", None, None);
        }
        let next = if s.script.len() > 1 { Some(s.script.remove(0)) } else { s.script.first().cloned() };
        (next.unwrap_or(LlmReply::Garbage), body)
    };
    let content = match reply {
        LlmReply::Content(text) => text,
        LlmReply::Answer(write) => write(&body),
        LlmReply::Error(status, message) => return error(status, &message, "server_error"),
        LlmReply::Garbage => return (StatusCode::OK, "<html>upstream timed out</html>").into_response(),
    };
    Json(json!({
        "id": "chatcmpl-double",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": estimated_tokens(&body), "completion_tokens": 1, "total_tokens": estimated_tokens(&body) + 1},
    }))
    .into_response()
}

/// What OpenAI refuses before a model runs, with its messages, `param` and `code`.
fn check(body: &Value, context_tokens: usize) -> Result<(), Refusal> {
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Err(refuse("you must provide a model parameter", None, None));
    }
    let messages = match body.get("messages") {
        None => {
            return Err(refuse(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                Some("missing_required_parameter"),
            ));
        }
        Some(Value::Array(m)) if m.is_empty() => {
            return Err(refuse(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages"),
                Some("empty_array"),
            ));
        }
        Some(Value::Array(m)) => m,
        Some(_) => {
            return Err(refuse(
                "Invalid type for 'messages': expected an array of objects.",
                Some("messages"),
                Some("invalid_type"),
            ));
        }
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["system", "developer", "user", "assistant", "tool", "function"].contains(&role) {
            return Err(refuse(
                &format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', \
                     and 'developer'."
                ),
                Some(&format!("messages[{i}].role")),
                Some("invalid_value"),
            ));
        }
        if role != "assistant" && !(m["content"].is_string() || m["content"].is_array()) {
            let param = format!("messages[{i}].content");
            return Err(refuse(
                &format!("Missing required parameter: '{param}'."),
                Some(&param),
                Some("missing_required_parameter"),
            ));
        }
    }
    if let Some(t) = body.get("temperature") {
        let code = match t.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => None,
            Some(t) if t < 0.0 => Some("decimal_below_min_value"),
            Some(_) => Some("decimal_above_max_value"),
            None => Some("invalid_type"),
        };
        if code.is_some() {
            return Err(refuse(
                &format!("Invalid 'temperature': expected a number from 0 to 2, but got {t} instead."),
                Some("temperature"),
                code,
            ));
        }
    }
    if let Some(format) = body.get("response_format") {
        let kind = format["type"].as_str().unwrap_or_default();
        if !["text", "json_object", "json_schema"].contains(&kind) {
            return Err(refuse(
                &format!("Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'."),
                Some("response_format.type"),
                Some("invalid_value"),
            ));
        }
        let says_json =
            messages.iter().any(|m| m["content"].as_str().is_some_and(|c| c.to_lowercase().contains("json")));
        if kind == "json_object" && !says_json {
            return Err(refuse(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                Some("messages"),
                None,
            ));
        }
    }
    let tokens = estimated_tokens(body);
    if tokens > context_tokens {
        return Err(refuse(
            &format!(
                "This model's maximum context length is {context_tokens} tokens. However, your messages resulted in \
                 {tokens} tokens. Please reduce the length of the messages."
            ),
            Some("messages"),
            Some("context_length_exceeded"),
        ));
    }
    Ok(())
}

/// A request OpenAI answers with 400 `invalid_request_error`: its message, `param` and `code`.
struct Refusal {
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

fn refuse(message: &str, param: Option<&str>, code: Option<&'static str>) -> Refusal {
    Refusal { message: message.to_owned(), param: param.map(str::to_owned), code }
}

fn invalid(message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn error(status: u16, message: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": code, "param": null, "code": code}});
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

/// The double's own checks: it refuses what OpenAI refuses, with OpenAI's status, `param` and `code`, records
/// what it was sent, and answers from the request when a test scripts it so.
#[cfg(test)]
mod tests {
    use super::*;

    async fn post(double: &LlmDouble, key: Option<&str>, body: String) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/chat/completions", double.url()))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap())
    }

    fn ask(user: &str) -> Value {
        json!({"model": "gpt-4o-mini", "temperature": 0.2,
            "messages": [{"role": "system", "content": "Reply with one JSON object."}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"}})
    }

    /// The error's (`param`, `code`) of a 400 `invalid_request_error`.
    async fn refused(double: &LlmDouble, body: Value) -> (Value, Value) {
        let (status, answer) = post(double, None, body.to_string()).await;
        assert_eq!((status, answer["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{answer}");
        (answer["error"]["param"].clone(), answer["error"]["code"].clone())
    }

    #[tokio::test]
    async fn requests_openai_refuses_are_refused_as_openai_does() {
        crate::install_crypto_provider();
        let double = LlmDouble::start(vec![LlmReply::Content("{}".into())]).await.unwrap();
        let (status, _) = post(&double, None, "{not json".into()).await;
        assert_eq!(status, 400);

        let mut body = ask("hi");
        body.as_object_mut().unwrap().remove("model");
        assert_eq!(refused(&double, body).await, (Value::Null, Value::Null));
        let mut body = ask("hi");
        body["messages"] = json!([]);
        assert_eq!(refused(&double, body).await, (json!("messages"), json!("empty_array")));
        let mut body = ask("hi");
        body["messages"][1]["role"] = json!("human");
        assert_eq!(refused(&double, body).await, (json!("messages[1].role"), json!("invalid_value")));
        let mut body = ask("hi");
        body["temperature"] = json!(3);
        assert_eq!(refused(&double, body).await, (json!("temperature"), json!("decimal_above_max_value")));
        let mut body = ask("hi");
        body["response_format"]["type"] = json!("yaml");
        assert_eq!(refused(&double, body).await, (json!("response_format.type"), json!("invalid_value")));
        let mut body = ask("hi");
        body["messages"][0]["content"] = json!("Reply with one object.");
        assert_eq!(refused(&double, body).await, (json!("messages"), Value::Null), "JSON mode needs the word json");

        double.limit_context(100);
        let body = ask(&"слово ".repeat(100));
        assert_eq!(refused(&double, body).await, (json!("messages"), json!("context_length_exceeded")));
        assert_eq!(double.requests().len(), 7, "every JSON body is recorded, refused or not");

        double.require_key("sk-right");
        let (status, answer) = post(&double, Some("sk-wrong"), ask("hi").to_string()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("invalid_api_key")));
        let (status, answer) = post(&double, Some("sk-right"), ask("hi").to_string()).await;
        assert_eq!((status, answer["choices"][0]["message"]["content"].as_str()), (200, Some("{}")), "{answer}");
    }

    #[tokio::test]
    async fn an_answer_can_be_written_from_the_request() {
        crate::install_crypto_provider();
        let reply = LlmReply::answer(|body| format!("you said {}", user_message(body)));
        let double = LlmDouble::start(vec![reply]).await.unwrap();
        let (status, answer) = post(&double, None, ask("[s1 00:00:01] Ada: hello").to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(answer["choices"][0]["message"]["content"], "you said [s1 00:00:01] Ada: hello");
        assert_eq!(answer["model"], "gpt-4o-mini");
    }
}
