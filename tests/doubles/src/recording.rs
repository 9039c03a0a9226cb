//! Owns what the double remembers about the traffic it saw: every Twirp call and every `SendData` payload.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use livekit_api::access_token::VideoGrants;
use livekit_protocol as proto;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// One request that reached the double's Twirp endpoint, accepted or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCall {
    /// The Twirp method name as it appeared in the path, e.g. `UpdateParticipant`.
    pub method: String,
    /// The `room` (or, for `CreateRoom`, the `name`) the request targeted, if it carried one.
    pub room: Option<String>,
    /// The participant identity the request targeted, if it carried one.
    pub identity: Option<String>,
    /// The decoded request as protobuf JSON (camelCase), with fields at their default spelt
    /// out (`false`, `0`, `""`, `[]`) rather than dropped; an absent optional message or field
    /// (`permission`, `topic`) is `null`. `Value::Null` when the body could not be decoded.
    pub request_json: Value,
    /// The video grants of the bearer token; default (all false) when there was no valid token.
    pub grants: VideoGrants,
    /// The HTTP status the double answered with.
    pub status: u16,
}

impl RecordedCall {
    /// Decodes `request_json` back into the typed request, e.g. `proto::UpdateParticipantRequest`.
    pub fn request<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_value(self.request_json.clone())
    }

    /// Whether the double accepted the call.
    pub fn succeeded(&self) -> bool {
        self.status == 200
    }
}

/// One `SendData` payload, as the room's participants would have received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentData {
    pub topic: Option<String>,
    #[serde(serialize_with = "as_base64")]
    pub data: Vec<u8>,
    pub destination_identities: Vec<String>,
    pub kind: proto::data_packet::Kind,
}

impl SentData {
    /// The payload as UTF-8, for the common case of JSON or text messages.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

fn as_base64<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&BASE64.encode(data))
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    calls: Vec<RecordedCall>,
    /// Kept apart from the room state so payloads survive `DeleteRoom`, which tests often
    /// call right after the behaviour they want to inspect.
    sent: Vec<(String, SentData)>,
}

impl Recorder {
    pub(crate) fn record(&mut self, call: RecordedCall) {
        self.calls.push(call);
    }

    pub(crate) fn record_data(&mut self, room: &str, data: SentData) {
        self.sent.push((room.to_owned(), data));
    }

    pub(crate) fn calls(&self) -> Vec<RecordedCall> {
        self.calls.clone()
    }

    pub(crate) fn sent_data(&self, room: &str) -> Vec<SentData> {
        self.sent.iter().filter(|(r, _)| r == room).map(|(_, d)| d.clone()).collect()
    }

    pub(crate) fn clear(&mut self) {
        self.calls.clear();
        self.sent.clear();
    }
}

/// pbjson, like Go's protojson, drops fields at their default value. A recorded request must
/// show `canPublish: false` explicitly, because "the caller sent false" is exactly what tests
/// of permission updates assert on, so the known fields are filled back in.
pub(crate) fn full_json<T: Serialize>(message: &T, defaults: &[(&str, Value)]) -> Value {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        fill(map, defaults);
    }
    value
}

fn fill(map: &mut Map<String, Value>, defaults: &[(&str, Value)]) {
    for (key, default) in defaults {
        map.entry((*key).to_owned()).or_insert_with(|| default.clone());
    }
}

/// Every field of `ParticipantPermission`, so a permission object is never partial in a record.
pub(crate) fn permission_json(permission: &proto::ParticipantPermission) -> Value {
    full_json(
        permission,
        &[
            ("canSubscribe", json!(false)),
            ("canPublish", json!(false)),
            ("canPublishData", json!(false)),
            ("canPublishSources", json!([])),
            ("hidden", json!(false)),
            ("recorder", json!(false)),
            ("canUpdateMetadata", json!(false)),
            ("agent", json!(false)),
            ("canSubscribeMetrics", json!(false)),
            ("canManageAgentSession", json!(false)),
        ],
    )
}

pub(crate) fn create_room_json(req: &proto::CreateRoomRequest) -> Value {
    full_json(
        req,
        &[
            ("name", json!("")),
            ("roomPreset", json!("")),
            ("emptyTimeout", json!(0)),
            ("departureTimeout", json!(0)),
            ("maxParticipants", json!(0)),
            ("nodeId", json!("")),
            ("metadata", json!("")),
            ("tags", json!({})),
            ("egress", Value::Null),
            ("minPlayoutDelay", json!(0)),
            ("maxPlayoutDelay", json!(0)),
            ("syncStreams", json!(false)),
            ("replayEnabled", json!(false)),
            ("agents", json!([])),
        ],
    )
}

pub(crate) fn list_rooms_json(req: &proto::ListRoomsRequest) -> Value {
    full_json(req, &[("names", json!([]))])
}

pub(crate) fn room_only_json<T: Serialize>(req: &T) -> Value {
    full_json(req, &[("room", json!(""))])
}

pub(crate) fn participant_identity_json(req: &proto::RoomParticipantIdentity) -> Value {
    // int64 is a string in protobuf JSON; the default is spelt the same way for consistency.
    full_json(req, &[("room", json!("")), ("identity", json!("")), ("revokeTokenTs", json!("0"))])
}

pub(crate) fn update_participant_json(req: &proto::UpdateParticipantRequest) -> Value {
    let mut value = full_json(
        req,
        &[
            ("room", json!("")),
            ("identity", json!("")),
            ("metadata", json!("")),
            ("name", json!("")),
            ("attributes", json!({})),
        ],
    );
    if let Value::Object(map) = &mut value {
        let permission = req.permission.as_ref().map_or(Value::Null, permission_json);
        map.insert("permission".to_owned(), permission);
    }
    value
}

pub(crate) fn send_data_json(req: &proto::SendDataRequest) -> Value {
    full_json(
        req,
        &[
            ("room", json!("")),
            ("data", json!("")),
            ("kind", json!("RELIABLE")),
            ("destinationSids", json!([])),
            ("destinationIdentities", json!([])),
            ("topic", Value::Null),
            ("nonce", json!("")),
        ],
    )
}

pub(crate) fn mute_track_json(req: &proto::MuteRoomTrackRequest) -> Value {
    full_json(req, &[("room", json!("")), ("identity", json!("")), ("trackSid", json!("")), ("muted", json!(false))])
}

pub(crate) fn update_room_metadata_json(req: &proto::UpdateRoomMetadataRequest) -> Value {
    full_json(req, &[("room", json!("")), ("metadata", json!(""))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_json_spells_out_false_fields() {
        let permission = proto::ParticipantPermission { can_subscribe: true, ..Default::default() };
        let value = permission_json(&permission);
        assert_eq!(value["canSubscribe"], json!(true));
        assert_eq!(value["canPublish"], json!(false));
        assert_eq!(value["canPublishSources"], json!([]));
    }

    #[test]
    fn update_participant_json_round_trips_through_pbjson() {
        let req = proto::UpdateParticipantRequest {
            room: "r".into(),
            identity: "i".into(),
            permission: Some(proto::ParticipantPermission {
                can_publish_sources: vec![proto::TrackSource::Microphone as i32],
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = update_participant_json(&req);
        assert_eq!(value["permission"]["canPublishSources"], json!(["MICROPHONE"]));
        let back: proto::UpdateParticipantRequest = serde_json::from_value(value).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn absent_permission_is_null() {
        let value = update_participant_json(&proto::UpdateParticipantRequest::default());
        assert!(value["permission"].is_null());
        let back: proto::UpdateParticipantRequest = serde_json::from_value(value).unwrap();
        assert_eq!(back.permission, None);
    }
}
