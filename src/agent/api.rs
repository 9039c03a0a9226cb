//! The client of confctl's agent API (`/api/agent/*`, docs/agent-api.md): the live list of lectures to join,
//! join tokens, captions, status reports, the summary context and the lecture artifact. The assistant's only
//! way to confctl. The wire types are the server's own (`crate::artifacts`), so the two ends cannot drift apart.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;

use crate::secret::Secret;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// confctl sends a heartbeat every 15 s; a stream silent for this long is dead.
const STREAM_SILENCE: Duration = Duration::from_secs(45);

/// A live lecture the assistant should be in.
pub use crate::artifacts::AssistantLecture as Lecture;
/// A way into a lecture.
pub use crate::artifacts::AssistantToken as JoinToken;
/// One caption as confctl takes it.
pub use crate::artifacts::Caption;
/// What the summariser may use: the lecture, the stored final segments, the speakers' names and the summary
/// settings in effect.
pub use crate::artifacts::SummaryContext as Context;
/// How the assistant is doing in a lecture, as confctl takes it.
pub use crate::artifacts::health::Report;
/// The lecture artifact as the assistant uploads it.
pub use crate::artifacts::{ArtifactStatus, ArtifactUpload as Artifact};

/// What the lecture stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LectureEvent {
    /// The complete list of lectures to be in (first event, and after confctl fell behind).
    Lectures(Vec<Lecture>),
    Live(Lecture),
    Ended {
        lecture_id: String,
    },
}

/// Why a call failed, as far as the caller must tell the cases apart.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The lecture is over (410).
    #[error("the lecture has ended")]
    Gone,
    /// Not a lecture for the assistant (404: unknown, or the assistant was switched off).
    #[error("confctl does not want the assistant in this lecture: {0}")]
    NotFound(String),
    /// The agent token is wrong or revoked (401).
    #[error("confctl refused the agent token: {0}")]
    Unauthorized(String),
    /// A request confctl rejected (other 4xx): retrying will not help.
    #[error("confctl rejected the request: {0}")]
    Rejected(String),
    /// confctl unreachable or failing (network, 5xx, 429): worth retrying.
    #[error("confctl is unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A client for one confctl server.
#[derive(Debug, Clone)]
pub struct AgentApi {
    base: String,
    token: Secret,
    http: reqwest::Client,
}

impl AgentApi {
    pub fn new(server_url: &url::Url, token: Secret) -> anyhow::Result<Self> {
        Self::build(server_url, token, reqwest::Client::builder())
    }

    /// Reaches `server_url`'s host `name` at `addr` instead of looking it up: the in-process assistant
    /// talks HTTPS to its own server over loopback, checking the certificate for the public name.
    pub fn with_resolve(
        server_url: &url::Url,
        token: Secret,
        name: &str,
        addr: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        Self::build(server_url, token, reqwest::Client::builder().resolve(name, addr))
    }

    fn build(server_url: &url::Url, token: Secret, builder: reqwest::ClientBuilder) -> anyhow::Result<Self> {
        crate::tls_provider();
        let http = builder.connect_timeout(Duration::from_secs(10)).build()?;
        Ok(Self { base: format!("{}/api/agent", server_url.as_str().trim_end_matches('/')), token, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, ApiError> {
        let response = request
            .bearer_auth(self.token.expose())
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let message = || {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{status}: {}", super::stt::openai::excerpt(&body)))
        };
        match status.as_u16() {
            200..=299 => Ok(body),
            401 => Err(ApiError::Unauthorized(message())),
            404 => Err(ApiError::NotFound(message())),
            410 => Err(ApiError::Gone),
            408 | 429 | 500..=599 => Err(ApiError::Unavailable(message())),
            _ => Err(ApiError::Rejected(message())),
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, ApiError> {
        serde_json::from_str(body).map_err(|e| ApiError::Rejected(format!("unexpected answer from confctl: {e}")))
    }

    /// `POST /lectures/{id}/token`.
    pub async fn join_token(&self, lecture_id: &str) -> Result<JoinToken, ApiError> {
        let body = self.send(self.http.post(self.url(&format!("/lectures/{lecture_id}/token")))).await?;
        Self::parse(&body)
    }

    /// `POST /lectures/{id}/captions`.
    pub async fn post_caption(&self, lecture_id: &str, caption: &Caption) -> Result<(), ApiError> {
        self.send(self.http.post(self.url(&format!("/lectures/{lecture_id}/captions"))).json(caption)).await.map(drop)
    }

    /// `POST /lectures/{id}/status`.
    pub async fn report(&self, lecture_id: &str, report: &Report) -> Result<(), ApiError> {
        self.send(self.http.post(self.url(&format!("/lectures/{lecture_id}/status"))).json(report)).await.map(drop)
    }

    /// `GET /lectures/{id}/context`.
    pub async fn context(&self, lecture_id: &str) -> Result<Context, ApiError> {
        let body = self.send(self.http.get(self.url(&format!("/lectures/{lecture_id}/context")))).await?;
        Self::parse(&body)
    }

    /// `PUT /lectures/{id}/artifact`.
    pub async fn put_artifact(&self, lecture_id: &str, artifact: &Artifact) -> Result<(), ApiError> {
        self.send(self.http.put(self.url(&format!("/lectures/{lecture_id}/artifact"))).json(artifact)).await.map(drop)
    }

    /// `GET /lectures/stream`: sends each event to `events` until the stream ends or goes silent.
    pub async fn lecture_events(&self, events: &tokio::sync::mpsc::Sender<LectureEvent>) -> Result<(), ApiError> {
        let response = self
            .http
            .get(self.url("/lectures/stream"))
            .bearer_auth(self.token.expose())
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(match status.as_u16() {
                401 => ApiError::Unauthorized(super::stt::openai::excerpt(&body)),
                400..=499 => ApiError::Rejected(format!("{status}: {}", super::stt::openai::excerpt(&body))),
                _ => ApiError::Unavailable(format!("{status}")),
            });
        }
        let mut body = response.bytes_stream();
        let mut parser = SseParser::default();
        loop {
            let chunk = match tokio::time::timeout(STREAM_SILENCE, body.next()).await {
                Err(_) => return Err(ApiError::Unavailable("the lecture stream went silent".into())),
                Ok(None) => return Err(ApiError::Unavailable("confctl closed the lecture stream".into())),
                Ok(Some(Err(e))) => return Err(ApiError::Unavailable(e.to_string())),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for (name, data) in parser.push(&chunk) {
                match parse_event(&name, &data) {
                    Some(event) => {
                        if events.send(event).await.is_err() {
                            return Ok(());
                        }
                    }
                    None => tracing::debug!(event = %name, "ignoring an unknown lecture-stream event"),
                }
            }
        }
    }
}

fn parse_event(name: &str, data: &str) -> Option<LectureEvent> {
    #[derive(Deserialize)]
    struct Lectures {
        lectures: Vec<Lecture>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Ended {
        lecture_id: String,
    }
    match name {
        "lectures" => serde_json::from_str::<Lectures>(data).ok().map(|r| LectureEvent::Lectures(r.lectures)),
        "lecture_live" => serde_json::from_str::<Lecture>(data).ok().map(LectureEvent::Live),
        "lecture_ended" => {
            serde_json::from_str::<Ended>(data).ok().map(|e| LectureEvent::Ended { lecture_id: e.lecture_id })
        }
        _ => None,
    }
}

/// Server-Sent Events framing: `event:`/`data:` lines, a blank line ends an event, `:` lines are comments.
#[derive(Debug, Default)]
struct SseParser {
    buffer: String,
    name: String,
    data: String,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<(String, String)> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let name = if self.name.is_empty() { "message".to_owned() } else { std::mem::take(&mut self.name) };
                    events.push((name, std::mem::take(&mut self.data)));
                }
                self.name.clear();
            } else if let Some(value) = line.strip_prefix("event:") {
                self.name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_parsed_across_chunks_and_comments_are_skipped() {
        let mut p = SseParser::default();
        assert!(p.push(b": heartbeat\n\nevent: lectures\ndata: {\"lectures\":[{\"lectureId\":\"l1\",").is_empty());
        let events = p.push(
            b"\"roomId\":\"r1\",\"name\":\"Bio\",\"livekitRoomName\":\"confctl-l1\",\"language\":\"ru\"}]}\n\n\
              event: lecture_ended\r\ndata: {\"lectureId\":\"l1\"}\r\n\r\n",
        );
        assert_eq!(events.len(), 2);
        let parsed: Vec<LectureEvent> = events.iter().filter_map(|(n, d)| parse_event(n, d)).collect();
        assert_eq!(parsed[1], LectureEvent::Ended { lecture_id: "l1".into() });
        let LectureEvent::Lectures(lectures) = &parsed[0] else { panic!("{parsed:?}") };
        assert_eq!(lectures[0].language, "ru");
        assert_eq!(lectures[0].started_at, None);
        let lecture: Lecture = serde_json::from_str(
            r#"{"lectureId":"l","roomId":"r","name":"n","livekitRoomName":"x","language":"en","startedAt":"2026-01-01T00:00:01Z"}"#,
        )
        .unwrap();
        assert_eq!(lecture.started_at.map(|t| t.timestamp_millis()), Some(1_767_225_601_000));
    }

    #[test]
    fn captions_serialise_as_confctl_takes_them() {
        let caption = Caption {
            segment_id: "s".into(),
            speaker_identity: "g_1".into(),
            speaker_name: "Ann".into(),
            text: "Hi".into(),
            is_final: true,
            start_ms: 1,
            end_ms: 2,
            language: "en".into(),
            provider: Some("whisper".into()),
        };
        assert_eq!(
            serde_json::to_value(&caption).unwrap(),
            serde_json::json!({"segmentId":"s","speakerIdentity":"g_1","speakerName":"Ann","text":"Hi","final":true,
                "startMs":1,"endMs":2,"language":"en","provider":"whisper"})
        );
    }
}
