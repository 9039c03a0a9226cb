//! Owns webhook delivery: encoding and signing events exactly as LiveKit's URL notifier does, and the background queue for automatic ones.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use livekit_api::access_token::AccessToken;
use livekit_protocol as proto;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::lock;

/// The content type LiveKit posts webhooks with; it is deliberately not `application/json`
/// so frameworks do not parse the body before its signature is checked.
pub const WEBHOOK_CONTENT_TYPE: &str = "application/webhook+json";

/// LiveKit's notifier signs each webhook with a token valid for five minutes.
const WEBHOOK_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

/// Builders for the events LiveKit's telemetry service emits, each with a fresh `EV_` id and
/// `created_at`, as `NotifyEvent` stamps them just before queueing.
pub mod events {
    use livekit_protocol as proto;

    use crate::ids;

    /// An event of any name with the id and timestamp already set; fill the rest yourself.
    pub fn new_event(name: &str) -> proto::WebhookEvent {
        proto::WebhookEvent {
            event: name.to_owned(),
            id: ids::guid("EV_"),
            created_at: ids::now_unix_secs(),
            ..Default::default()
        }
    }

    pub fn room_started(room: &proto::Room) -> proto::WebhookEvent {
        proto::WebhookEvent { room: Some(room.clone()), ..new_event("room_started") }
    }

    pub fn room_finished(room: &proto::Room) -> proto::WebhookEvent {
        proto::WebhookEvent { room: Some(room.clone()), ..new_event("room_finished") }
    }

    pub fn participant_joined(room: &proto::Room, participant: &proto::ParticipantInfo) -> proto::WebhookEvent {
        about_participant("participant_joined", room, participant)
    }

    pub fn participant_left(room: &proto::Room, participant: &proto::ParticipantInfo) -> proto::WebhookEvent {
        about_participant("participant_left", room, participant)
    }

    pub fn track_published(
        room: &proto::Room,
        participant: &proto::ParticipantInfo,
        track: &proto::TrackInfo,
    ) -> proto::WebhookEvent {
        about_track("track_published", room, participant, track)
    }

    pub fn track_unpublished(
        room: &proto::Room,
        participant: &proto::ParticipantInfo,
        track: &proto::TrackInfo,
    ) -> proto::WebhookEvent {
        about_track("track_unpublished", room, participant, track)
    }

    /// A participant event carries the room and the participant.
    fn about_participant(name: &str, room: &proto::Room, participant: &proto::ParticipantInfo) -> proto::WebhookEvent {
        proto::WebhookEvent { room: Some(room.clone()), participant: Some(participant.clone()), ..new_event(name) }
    }

    /// A track event carries the track as well.
    fn about_track(
        name: &str,
        room: &proto::Room,
        participant: &proto::ParticipantInfo,
        track: &proto::TrackInfo,
    ) -> proto::WebhookEvent {
        proto::WebhookEvent { track: Some(track.clone()), ..about_participant(name, room, participant) }
    }
}

/// The body LiveKit posts: protobuf JSON of the event (camelCase names, default fields left
/// out, int64 as strings), which is what `livekit_api::webhooks::WebhookReceiver` parses.
pub fn encode_event(event: &proto::WebhookEvent) -> anyhow::Result<String> {
    serde_json::to_string(event).context("encoding webhook event")
}

/// The `Authorization` header value for `body`: a bare JWT (no `Bearer ` prefix, as LiveKit
/// sends it) whose `sha256` claim is the base64 SHA-256 of the exact body bytes.
pub fn sign_body(api_key: &str, api_secret: &str, body: &str) -> anyhow::Result<String> {
    let sha = BASE64.encode(Sha256::digest(body.as_bytes()));
    AccessToken::with_api_key(api_key, api_secret)
        .with_ttl(WEBHOOK_TOKEN_TTL)
        .with_sha256(&sha)
        .to_jwt()
        .context("signing webhook body")
}

/// Ways to spoil a delivery, for tests that a receiver rejects forged webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookTamper {
    /// A genuine delivery.
    #[default]
    None,
    /// Signed over the genuine body, but a different (still valid JSON) body is posted.
    TamperedBody,
    /// Signed with a secret other than the configured one.
    WrongSecret,
    /// Signed with the right secret under a different API key (`iss`).
    WrongApiKey,
    /// No `Authorization` header at all.
    MissingAuthorization,
}

/// What happened to one webhook POST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub url: String,
    /// The event name, e.g. `participant_joined`.
    pub event: String,
    /// The event's `EV_` id.
    pub id: String,
    /// The exact body posted.
    pub body: String,
    /// The exact `Authorization` header posted, if any.
    pub authorization: Option<String>,
    pub tamper: WebhookTamper,
    /// The receiver's HTTP status, when it answered at all.
    pub status: Option<u16>,
    /// The transport error, when it did not.
    pub error: Option<String>,
}

impl WebhookDelivery {
    /// Whether the receiver answered with a 2xx status.
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Posts signed webhooks on behalf of one API key/secret pair.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    api_key: String,
    api_secret: String,
}

impl WebhookSender {
    pub fn new(api_key: &str, api_secret: &str) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building webhook HTTP client")?;
        Ok(Self { client, api_key: api_key.to_owned(), api_secret: api_secret.to_owned() })
    }

    /// Posts `event` to `url` as LiveKit would. A receiver's non-2xx answer is not an error
    /// here: it is reported in the delivery so negative tests can assert on it.
    pub async fn send(&self, url: &str, event: &proto::WebhookEvent) -> anyhow::Result<WebhookDelivery> {
        self.send_with(url, event, WebhookTamper::None).await
    }

    pub async fn send_with(
        &self,
        url: &str,
        event: &proto::WebhookEvent,
        tamper: WebhookTamper,
    ) -> anyhow::Result<WebhookDelivery> {
        let genuine = encode_event(event)?;
        let authorization = match tamper {
            WebhookTamper::None | WebhookTamper::TamperedBody => {
                Some(sign_body(&self.api_key, &self.api_secret, &genuine)?)
            }
            WebhookTamper::WrongSecret => {
                Some(sign_body(&self.api_key, &format!("{}-wrong", self.api_secret), &genuine)?)
            }
            WebhookTamper::WrongApiKey => {
                Some(sign_body(&format!("{}-wrong", self.api_key), &self.api_secret, &genuine)?)
            }
            WebhookTamper::MissingAuthorization => None,
        };
        let body = if tamper == WebhookTamper::TamperedBody {
            let mut forged = event.clone();
            forged.id = format!("{}_TAMPERED", event.id);
            encode_event(&forged)?
        } else {
            genuine
        };

        let mut request =
            self.client.post(url).header(reqwest::header::CONTENT_TYPE, WEBHOOK_CONTENT_TYPE).body(body.clone());
        if let Some(auth) = &authorization {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let (status, error) = match request.send().await {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        Ok(WebhookDelivery {
            url: url.to_owned(),
            event: event.event.clone(),
            id: event.id.clone(),
            body,
            authorization,
            tamper,
            status,
            error,
        })
    }
}

enum Job {
    Event(Box<proto::WebhookEvent>),
    Flush(oneshot::Sender<()>),
}

/// Delivers state-change webhooks one at a time, in order, like LiveKit's per-URL queue, so a
/// receiver sees `participant_left` before `room_finished`.
#[derive(Debug)]
pub(crate) struct Notifier {
    url: Arc<Mutex<Option<String>>>,
    deliveries: Arc<Mutex<Vec<WebhookDelivery>>>,
    tx: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Event(e) => f.debug_tuple("Event").field(&e.event).finish(),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Notifier {
    pub(crate) fn start(sender: WebhookSender, url: Option<String>) -> (Self, tokio::task::JoinHandle<()>) {
        let url = Arc::new(Mutex::new(url));
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let worker_url = Arc::clone(&url);
        let worker_deliveries = Arc::clone(&deliveries);
        let task = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Event(event) => {
                        let target = lock(&worker_url).clone();
                        let Some(target) = target else { continue };
                        match sender.send(&target, &event).await {
                            Ok(delivery) => {
                                if !delivery.accepted() {
                                    tracing::warn!(
                                        event = %delivery.event,
                                        status = ?delivery.status,
                                        error = ?delivery.error,
                                        "webhook not accepted"
                                    );
                                }
                                lock(&worker_deliveries).push(delivery);
                            }
                            Err(err) => tracing::warn!(%err, "webhook could not be built"),
                        }
                    }
                    Job::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        (Self { url, deliveries, tx }, task)
    }

    /// Queues only while a URL is configured, so events from before a receiver existed are
    /// not replayed at it later.
    pub(crate) fn notify(&self, events: Vec<proto::WebhookEvent>) {
        if lock(&self.url).is_none() {
            return;
        }
        for event in events {
            let _ = self.tx.send(Job::Event(Box::new(event)));
        }
    }

    pub(crate) fn record(&self, delivery: WebhookDelivery) {
        lock(&self.deliveries).push(delivery);
    }

    pub(crate) fn set_url(&self, url: Option<String>) {
        *lock(&self.url) = url;
    }

    pub(crate) fn url(&self) -> Option<String> {
        lock(&self.url).clone()
    }

    pub(crate) fn deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.deliveries).clone()
    }

    pub(crate) fn clear(&self) {
        lock(&self.deliveries).clear();
    }

    /// Resolves once every event queued before the call has been delivered (or failed).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::TokenVerifier;
    use livekit_api::webhooks::WebhookReceiver;

    #[test]
    fn signed_body_is_accepted_by_the_sdk_receiver() {
        let room = proto::Room { name: "lecture".into(), sid: "RM_x".into(), ..Default::default() };
        let event = events::room_started(&room);
        let body = encode_event(&event).unwrap();
        let auth = sign_body("key", "secret", &body).unwrap();
        let receiver = WebhookReceiver::new(TokenVerifier::with_api_key("key", "secret"));
        let parsed = receiver.receive(&body, &auth).unwrap();
        assert_eq!(parsed, event);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["event"], "room_started");
        assert!(json["id"].as_str().unwrap().starts_with("EV_"));
        assert!(json["createdAt"].is_string());
    }
}
