//! Everything confctl says to LiveKit: access tokens for browsers, RoomService calls (Twirp, through
//! `livekit-api`), webhook verification, and (in `subscriber`) the assistant's media connection. No other
//! module talks to LiveKit.

pub mod subscriber;

use std::time::Duration;

use livekit_api::access_token::{AccessToken, TokenVerifier, VideoGrants};
use livekit_api::services::room::{
    CreateRoomOptions, RemoveParticipantOptions, RoomClient, SendDataOptions, UpdateParticipantOptions,
};
use livekit_api::services::{ServerError, ServiceError};
use livekit_api::webhooks::WebhookReceiver;
use livekit_protocol as proto;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// How long a browser token stays valid for joining. LiveKit checks expiry only at join, so this bounds how
/// long a leaked token can be used to get in, not how long a lecture lasts.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);

/// How long LiveKit keeps a room nobody has joined yet open (seconds).
const EMPTY_ROOM_TIMEOUT_SECS: u32 = 30 * 60;
/// How long LiveKit keeps a room open after the last participant left (seconds).
const DEPARTURE_TIMEOUT_SECS: u32 = 10 * 60;

/// Every LiveKit room confctl manages carries this prefix, so reconciliation leaves other rooms alone.
pub const ROOM_PREFIX: &str = "confctl-";

/// The LiveKit room of a lecture: one per session, so a token or a late webhook of one lecture never
/// reaches the next.
pub fn room_name(lecture_id: &str) -> String {
    format!("{ROOM_PREFIX}{lecture_id}")
}

/// The lecture id inside a LiveKit room name, if it is one of ours.
pub fn lecture_id_of(livekit_room: &str) -> Option<&str> {
    livekit_room.strip_prefix(ROOM_PREFIX)
}

/// What a browser may do in the room it joins.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub livekit_room: &'a str,
    pub identity: &'a str,
    pub name: &'a str,
    pub role: ParticipantRole,
    /// Guests: false in webinar mode.
    pub can_publish: bool,
    /// Guests: whether screen sharing is allowed.
    pub screen_share: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantRole {
    Guest,
    Host,
    /// The AI assistant: hidden, listens only.
    Assistant,
}

impl ParticipantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guest => "guest",
            Self::Host => "host",
            Self::Assistant => "assistant",
        }
    }
}

/// The permission object for a participant whose publishing right changes. Everything else is stated
/// explicitly because UpdateParticipant replaces the whole message: a field left out becomes false.
pub fn permission(role: ParticipantRole, can_publish: bool, screen_share: bool) -> proto::ParticipantPermission {
    use proto::TrackSource;
    let sources = match (role, screen_share) {
        (ParticipantRole::Host | ParticipantRole::Assistant, _) => vec![],
        (ParticipantRole::Guest, false) => vec![TrackSource::Camera as i32, TrackSource::Microphone as i32],
        (ParticipantRole::Guest, true) => vec![
            TrackSource::Camera as i32,
            TrackSource::Microphone as i32,
            TrackSource::ScreenShare as i32,
            TrackSource::ScreenShareAudio as i32,
        ],
    };
    proto::ParticipantPermission {
        can_subscribe: true,
        can_publish,
        can_publish_data: true,
        can_publish_sources: sources,
        hidden: false,
        can_update_metadata: false,
        ..Default::default()
    }
}

/// Who a connected participant is, from the metadata confctl put in their token (guests cannot change it:
/// `canUpdateOwnMetadata` is false) and the identity prefixes confctl hands out.
pub fn role_of(info: &proto::ParticipantInfo) -> Option<&'static str> {
    let from_metadata = serde_json::from_str::<serde_json::Value>(&info.metadata)
        .ok()
        .and_then(|m| m.get("role").and_then(|r| r.as_str()).map(str::to_owned));
    match (from_metadata.as_deref(), info.identity.as_str()) {
        (_, id) if id == ASSISTANT_IDENTITY => Some("assistant"),
        (Some("host"), id) if id.starts_with("h_") => Some("host"),
        (Some("guest") | None, id) if id.starts_with("g_") => Some("guest"),
        (Some("assistant"), _) => Some("assistant"),
        _ => None,
    }
}

/// The AI assistant's identity in every room.
pub const ASSISTANT_IDENTITY: &str = "confctl-assistant";

/// The LiveKit server as confctl sees it.
#[derive(Debug)]
pub struct LiveKit {
    api_key: String,
    api_secret: Secret,
    browser_url: String,
    server_ws_url: String,
    rooms: RoomClient,
    webhooks: WebhookReceiver,
}

impl LiveKit {
    pub fn new(config: &Config) -> Self {
        let lk = &config.livekit;
        let mut api_url = lk.url.clone();
        let http_scheme = match api_url.scheme() {
            "ws" => Some("http"),
            "wss" => Some("https"),
            _ => None,
        };
        if let Some(scheme) = http_scheme {
            let _ = api_url.set_scheme(scheme);
        }
        let api_url = api_url.as_str().trim_end_matches('/').to_owned();
        let server_ws_url = api_url.replacen("http://", "ws://", 1).replacen("https://", "wss://", 1);
        let rooms = RoomClient::with_api_key(&api_url, &lk.api_key, lk.api_secret.expose())
            .with_request_timeout(Duration::from_secs(5));
        let webhooks = WebhookReceiver::new(TokenVerifier::with_api_key(&lk.api_key, lk.api_secret.expose()));
        Self {
            api_key: lk.api_key.clone(),
            api_secret: lk.api_secret.clone(),
            browser_url: config.livekit_browser_url(),
            server_ws_url,
            rooms,
            webhooks,
        }
    }

    /// The URL browsers connect to.
    pub fn browser_url(&self) -> &str {
        &self.browser_url
    }

    /// The URL confctl itself reaches LiveKit at, as a WebSocket URL (for the assistant, which runs beside
    /// confctl rather than in a browser).
    pub fn server_ws_url(&self) -> &str {
        &self.server_ws_url
    }

    /// Mints a room-scoped join token.
    pub fn token(&self, grant: &Grant<'_>) -> Result<String> {
        let sources = match (grant.role, grant.screen_share) {
            (ParticipantRole::Host | ParticipantRole::Assistant, _) => vec![],
            (ParticipantRole::Guest, false) => vec!["camera".into(), "microphone".into()],
            (ParticipantRole::Guest, true) => {
                vec!["camera".into(), "microphone".into(), "screen_share".into(), "screen_share_audio".into()]
            }
        };
        let assistant = grant.role == ParticipantRole::Assistant;
        let grants = VideoGrants {
            room_join: true,
            room: grant.livekit_room.to_owned(),
            can_subscribe: Some(true),
            can_publish: Some(grant.can_publish && !assistant),
            // The assistant publishes captions through confctl's SendData, never itself.
            can_publish_data: Some(!assistant),
            can_publish_sources: sources,
            can_update_own_metadata: Some(false),
            hidden: assistant,
            ..VideoGrants::default()
        };
        let metadata = serde_json::json!({ "role": grant.role.as_str() }).to_string();
        AccessToken::with_api_key(&self.api_key, self.api_secret.expose())
            .with_identity(grant.identity)
            .with_name(grant.name)
            .with_metadata(&metadata)
            .with_ttl(TOKEN_TTL)
            .with_grants(grants)
            .to_jwt()
            .map_err(|e| Error::internal(format!("cannot sign a LiveKit token: {e}")))
    }

    /// Opens the room at LiveKit ahead of the host (idempotent: an open room is left as it is), with
    /// timeouts long enough that a host stepping out before the lecture, or a lecture hall whose Wi-Fi drops
    /// for a few minutes, does not end the lecture: LiveKit's defaults close an empty room within seconds,
    /// and its `room_finished` ends the lecture for good.
    pub async fn ensure_room(&self, livekit_room: &str, max_participants: Option<i64>) -> Result<()> {
        let options = CreateRoomOptions {
            empty_timeout: EMPTY_ROOM_TIMEOUT_SECS,
            departure_timeout: DEPARTURE_TIMEOUT_SECS,
            max_participants: max_participants.and_then(|m| u32::try_from(m).ok()).unwrap_or(0),
            ..Default::default()
        };
        self.rooms.create_room(livekit_room, options).await.map(|_| ()).map_err(|e| unavailable("CreateRoom", e))
    }

    /// Closes a room for everyone. A room LiveKit does not know is already gone: that is success.
    pub async fn delete_room(&self, livekit_room: &str) -> Result<()> {
        match self.rooms.delete_room(livekit_room).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(unavailable("DeleteRoom", err)),
        }
    }

    /// Names of the rooms LiveKit has open.
    pub async fn list_rooms(&self) -> Result<Vec<proto::Room>> {
        self.rooms.list_rooms(Vec::new()).await.map_err(|e| unavailable("ListRooms", e))
    }

    /// Who is connected to a room right now.
    pub async fn list_participants(&self, livekit_room: &str) -> Result<Vec<proto::ParticipantInfo>> {
        match self.rooms.list_participants(livekit_room).await {
            Ok(list) => Ok(list),
            Err(err) if is_not_found(&err) => Ok(Vec::new()),
            Err(err) => Err(unavailable("ListParticipants", err)),
        }
    }

    /// Disconnects a participant and asks LiveKit to revoke every token issued to them until now. Not every
    /// server honours the revocation (livekit-server 1.9.11 does not): a saved token can reconnect, which the
    /// `participant_joined` webhook answers with another removal. `Ok(false)` when LiveKit does not know them
    /// (already gone).
    pub async fn remove_participant(&self, livekit_room: &str, identity: &str) -> Result<bool> {
        let options = RemoveParticipantOptions { revoke_token_ts: crate::time::now_ms() };
        match self.rooms.remove_participant_with_options(livekit_room, identity, options).await {
            Ok(()) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(unavailable("RemoveParticipant", err)),
        }
    }

    /// Replaces a participant's permissions. LiveKit replaces the whole message, so `permission` must carry
    /// every right the participant keeps. `Ok(None)` when the participant is not connected.
    pub async fn update_permission(
        &self,
        livekit_room: &str,
        identity: &str,
        permission: proto::ParticipantPermission,
    ) -> Result<Option<proto::ParticipantInfo>> {
        let options = UpdateParticipantOptions { permission: Some(permission), ..Default::default() };
        match self.rooms.update_participant(livekit_room, identity, options).await {
            Ok(info) => Ok(Some(info)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(unavailable("UpdateParticipant", err)),
        }
    }

    /// Sends a reliable data message with a topic to everyone in the room (chat, hand raises, files).
    pub async fn send_data(&self, livekit_room: &str, topic: &str, payload: &serde_json::Value) -> Result<()> {
        let options = SendDataOptions {
            kind: proto::data_packet::Kind::Reliable,
            topic: Some(topic.to_owned()),
            ..Default::default()
        };
        match self.rooms.send_data(livekit_room, payload.to_string().into_bytes(), options).await {
            Ok(()) => Ok(()),
            // Nobody is connected: nothing to deliver, and the message is in the history anyway.
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(unavailable("SendData", err)),
        }
    }

    /// Verifies a webhook (JWT in `Authorization`, with or without `Bearer `; SHA-256 of the raw body) and
    /// decodes it.
    pub fn verify_webhook(&self, body: &str, authorization: &str) -> Result<proto::WebhookEvent> {
        let token = authorization.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        self.webhooks
            .receive(body, token)
            .map_err(|e| Error::unauthenticated("invalid_webhook", format!("webhook rejected: {e}")))
    }
}

fn is_not_found(err: &ServiceError) -> bool {
    matches!(err, ServiceError::Twirp(ServerError::Twirp(code)) if code.code == "not_found")
}

/// Logs the call and LiveKit's error (which names its URL and host:port) and answers with a plain sentence.
fn unavailable(call: &str, err: ServiceError) -> Error {
    tracing::warn!(call, error = %err, "LiveKit call failed");
    Error::unavailable("livekit_unavailable", "the media server is not answering; try again shortly")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_token_is_room_scoped_with_explicit_rights() {
        let config = Config::defaults().unwrap();
        let lk = LiveKit::new(&config);
        let jwt = lk
            .token(&Grant {
                livekit_room: "confctl-r1",
                identity: "g_abc",
                name: "Ann",
                role: ParticipantRole::Guest,
                can_publish: false,
                screen_share: false,
            })
            .unwrap();
        let claims = TokenVerifier::with_api_key("devkey", "secret").verify(&jwt).unwrap();
        assert_eq!(claims.sub, "g_abc");
        assert_eq!(claims.name, "Ann");
        assert_eq!(claims.metadata, r#"{"role":"guest"}"#);
        let v = claims.video;
        assert!(v.room_join && v.room == "confctl-r1" && !v.room_admin && !v.room_create);
        assert_eq!((v.can_subscribe, v.can_publish, v.can_publish_data), (Some(true), Some(false), Some(true)));
        assert_eq!(v.can_publish_sources, ["camera", "microphone"]);
        assert_eq!(v.can_update_own_metadata, Some(false));
        assert!(claims.exp - claims.nbf <= 600 + 1);
    }

    #[test]
    fn room_names_round_trip() {
        assert_eq!(lecture_id_of(&room_name("abc")), Some("abc"));
        assert_eq!(lecture_id_of("other-room"), None);
    }
}
