//! The monitor's only link to the server: one snapshot per (re)connect, one SSE stream, a room's detail when
//! the admin opens it, and the actions. Never the database, never a polling loop.

use futures::StreamExt;
use serde_json::Value;

use super::wire::{AdminEvent, Detail, Snapshot, Stats};

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server said no to the credentials (401) or the caller (403): retrying cannot help.
    Refused { code: String, message: String },
    /// The server answered with another error.
    Api { status: u16, code: String, message: String },
    /// No answer: connection refused, reset, timed out.
    Network(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { code, message } => write!(f, "{message} ({code})"),
            Self::Api { status, code, message } => write!(f, "{message} ({status} {code})"),
            Self::Network(text) => write!(f, "{text}"),
        }
    }
}

/// The server and the credentials.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn network(err: &reqwest::Error) -> ClientError {
    let text = if err.is_connect() {
        "cannot connect".to_owned()
    } else if err.is_timeout() {
        "timed out".to_owned()
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text = s.to_string();
            source = s.source();
        }
        text
    };
    ClientError::Network(text)
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(response);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("error").to_owned();
    let message = body["error"]["message"].as_str().unwrap_or("the server refused the request").to_owned();
    if status == 401 || (status == 403 && code != "read_only_token") {
        Err(ClientError::Refused { code, message })
    } else {
        Err(ClientError::Api { status, code, message })
    }
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("confctl-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), token: token.to_owned() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// `GET /api/admin/rooms?state=…` as parsed JSON.
    pub async fn snapshot_json(&self, state: &str) -> Result<Value, ClientError> {
        let response = self
            .get(&format!("/api/admin/rooms?state={state}"))
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await
            .map_err(|e| network(&e))?;
        check(response).await?.json().await.map_err(|e| network(&e))
    }

    /// Live and recently ended rooms together: the monitor's home screen.
    pub async fn snapshot(&self) -> Result<Snapshot, ClientError> {
        let live = self.snapshot_json("live").await?;
        let recent = self.snapshot_json("recent").await?;
        let mut snap: Snapshot =
            serde_json::from_value(live).map_err(|e| ClientError::Network(format!("unexpected answer: {e}")))?;
        if let Ok(more) = serde_json::from_value::<Snapshot>(recent) {
            snap.rooms.extend(more.rooms);
        }
        Ok(snap)
    }

    pub async fn detail(&self, room_id: &str) -> Result<Detail, ClientError> {
        let response = self
            .get(&format!("/api/admin/rooms/{room_id}"))
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await
            .map_err(|e| network(&e))?;
        check(response).await?.json().await.map_err(|e| ClientError::Network(format!("unexpected answer: {e}")))
    }

    /// `POST /api/admin/rooms/{path}` with a JSON body.
    pub async fn act(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let response = self
            .http
            .post(format!("{}/api/admin/rooms/{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| network(&e))?;
        check(response).await?.json().await.map_err(|e| network(&e))
    }

    /// Opens the event stream after `last_id`; events (and `reset`s) go to `each` until the stream ends.
    pub async fn stream(
        &self,
        last_id: Option<u64>,
        mut each: impl FnMut(StreamItem) -> bool,
    ) -> Result<(), ClientError> {
        // `instance=true`: the header's figures (requests/s) come on the stream too, so nothing is polled.
        let mut request = self.get("/api/admin/events?instance=true").header("accept", "text/event-stream");
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = check(request.send().await.map_err(|e| network(&e))?).await?;
        if !each(StreamItem::Open) {
            return Ok(());
        }
        let mut body = response.bytes_stream();
        let mut parser = SseParser::default();
        // Heartbeats come every 15 s: a silent minute means the connection is gone.
        let idle = std::time::Duration::from_secs(45);
        loop {
            let chunk = match tokio::time::timeout(idle, body.next()).await {
                Err(_) => return Err(ClientError::Network("no heartbeat from the server".into())),
                Ok(None) => return Err(ClientError::Network("the server closed the stream".into())),
                Ok(Some(Err(e))) => return Err(network(&e)),
                Ok(Some(Ok(bytes))) => bytes,
            };
            for item in parser.push(&chunk) {
                if !each(item) {
                    return Ok(());
                }
            }
        }
    }
}

/// What the event stream delivers.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// The server accepted the stream.
    Open,
    Event(Box<AdminEvent>),
    /// The header's figures, now.
    Stats(Stats),
    /// Reload the snapshot.
    Reset,
}

/// Splits an SSE byte stream into events.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<StreamItem> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes).replace("\r\n", "\n"));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    v.trim().clone_into(&mut name);
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if data.is_empty() {
                continue;
            }
            if name == "reset" {
                out.push(StreamItem::Reset);
            } else if name == "instance" {
                if let Ok(stats) = serde_json::from_str::<Stats>(&data) {
                    out.push(StreamItem::Stats(stats));
                }
            } else if let Ok(event) = serde_json::from_str::<AdminEvent>(&data) {
                out.push(StreamItem::Event(Box::new(event)));
            }
        }
        out
    }
}
