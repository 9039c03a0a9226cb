//! Owns the Twirp `livekit.RoomService` endpoint: routing, content types, decoding, error shapes and each method's behaviour.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use livekit_api::access_token::VideoGrants;
use livekit_protocol as proto;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{self, Caller};
use crate::recording::{self, RecordedCall, SentData};
use crate::state::Missing;
use crate::{Shared, lock};

pub(crate) const ROOM_SERVICE: &str = "livekit.RoomService";

/// The RoomService methods the double implements; anything else under the service is a
/// `bad_route`, which is also what a real server says about a method it does not know.
pub const ROOM_SERVICE_METHODS: [&str; 10] = [
    "CreateRoom",
    "ListRooms",
    "DeleteRoom",
    "ListParticipants",
    "GetParticipant",
    "RemoveParticipant",
    "UpdateParticipant",
    "SendData",
    "MutePublishedTrack",
    "UpdateRoomMetadata",
];

/// A Twirp error as the Go server writes it: `{"code": ..., "msg": ...}` with the HTTP status
/// Twirp assigns to the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TwirpError {
    status: StatusCode,
    code: &'static str,
    msg: String,
}

impl TwirpError {
    fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Self {
        Self { status, code, msg: msg.into() }
    }

    pub(crate) fn unauthenticated(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", msg)
    }

    fn bad_route(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "bad_route", msg)
    }

    fn malformed(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", msg)
    }

    fn invalid_argument(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", msg)
    }

    fn failed_precondition(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "failed_precondition", msg)
    }

    fn internal(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
    }

    fn missing(what: Missing) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what.message())
    }
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "msg": self.msg }).to_string();
        (self.status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// Twirp's own rule: the media type before any `;` parameters, case-insensitive.
    fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        let raw = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let media = raw.split(';').next().unwrap_or_default().trim();
        match media.to_ascii_lowercase().as_str() {
            "application/protobuf" => Ok(Self::Protobuf),
            "application/json" => Ok(Self::Json),
            _ => Err(raw.to_owned()),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/protobuf",
            Self::Json => "application/json",
        }
    }

    fn decode<T: prost::Message + Default + DeserializeOwned>(self, body: &[u8]) -> Result<T, TwirpError> {
        match self {
            Self::Protobuf => {
                T::decode(body).map_err(|_| TwirpError::malformed("the protobuf request could not be decoded"))
            }
            Self::Json => {
                serde_json::from_slice(body).map_err(|_| TwirpError::malformed("the json request could not be decoded"))
            }
        }
    }

    /// JSON answers use livekit-protocol's pbjson impls: camelCase, defaults omitted. The Go
    /// Twirp server answers snake_case with every field; protobuf JSON parsers (pbjson and Go's
    /// protojson alike) accept both spellings, but a hand-written JSON client might not.
    fn respond<T: prost::Message + Serialize>(self, message: &T) -> Result<Response, TwirpError> {
        let body = match self {
            Self::Protobuf => message.encode_to_vec(),
            Self::Json => {
                serde_json::to_vec(message).map_err(|e| TwirpError::internal(format!("encoding response: {e}")))?
            }
        };
        Ok((StatusCode::OK, [(CONTENT_TYPE, HeaderValue::from_static(self.content_type()))], body).into_response())
    }
}

/// A decoded RoomService request.
#[derive(Debug)]
enum Call {
    CreateRoom(Box<proto::CreateRoomRequest>),
    ListRooms(proto::ListRoomsRequest),
    DeleteRoom(proto::DeleteRoomRequest),
    ListParticipants(proto::ListParticipantsRequest),
    GetParticipant(proto::RoomParticipantIdentity),
    RemoveParticipant(proto::RoomParticipantIdentity),
    UpdateParticipant(proto::UpdateParticipantRequest),
    SendData(proto::SendDataRequest),
    MutePublishedTrack(proto::MuteRoomTrackRequest),
    UpdateRoomMetadata(proto::UpdateRoomMetadataRequest),
}

impl Call {
    /// `None` when `rpc` is not a method the double serves.
    fn decode(rpc: &str, enc: Encoding, body: &[u8]) -> Option<Result<Self, TwirpError>> {
        Some(match rpc {
            "CreateRoom" => enc.decode(body).map(|r| Self::CreateRoom(Box::new(r))),
            "ListRooms" => enc.decode(body).map(Self::ListRooms),
            "DeleteRoom" => enc.decode(body).map(Self::DeleteRoom),
            "ListParticipants" => enc.decode(body).map(Self::ListParticipants),
            "GetParticipant" => enc.decode(body).map(Self::GetParticipant),
            "RemoveParticipant" => enc.decode(body).map(Self::RemoveParticipant),
            "UpdateParticipant" => enc.decode(body).map(Self::UpdateParticipant),
            "SendData" => enc.decode(body).map(Self::SendData),
            "MutePublishedTrack" => enc.decode(body).map(Self::MutePublishedTrack),
            "UpdateRoomMetadata" => enc.decode(body).map(Self::UpdateRoomMetadata),
            _ => return None,
        })
    }

    fn room(&self) -> Option<&str> {
        Some(match self {
            Self::CreateRoom(r) => &r.name,
            Self::ListRooms(_) => return None,
            Self::DeleteRoom(r) => &r.room,
            Self::ListParticipants(r) => &r.room,
            Self::GetParticipant(r) | Self::RemoveParticipant(r) => &r.room,
            Self::UpdateParticipant(r) => &r.room,
            Self::SendData(r) => &r.room,
            Self::MutePublishedTrack(r) => &r.room,
            Self::UpdateRoomMetadata(r) => &r.room,
        })
    }

    fn identity(&self) -> Option<&str> {
        match self {
            Self::GetParticipant(r) | Self::RemoveParticipant(r) => Some(&r.identity),
            Self::UpdateParticipant(r) => Some(&r.identity),
            Self::MutePublishedTrack(r) => Some(&r.identity),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::CreateRoom(r) => recording::create_room_json(r),
            Self::ListRooms(r) => recording::list_rooms_json(r),
            Self::DeleteRoom(r) => recording::room_only_json(r),
            Self::ListParticipants(r) => recording::room_only_json(r),
            Self::GetParticipant(r) | Self::RemoveParticipant(r) => recording::participant_identity_json(r),
            Self::UpdateParticipant(r) => recording::update_participant_json(r),
            Self::SendData(r) => recording::send_data_json(r),
            Self::MutePublishedTrack(r) => recording::mute_track_json(r),
            Self::UpdateRoomMetadata(r) => recording::update_room_metadata_json(r),
        }
    }

    /// The grant each method demands, as in livekit-server's roomservice.go.
    fn authorize(&self, grants: Option<&VideoGrants>) -> Result<(), TwirpError> {
        match self {
            Self::CreateRoom(_) | Self::DeleteRoom(_) => auth::ensure_create(grants),
            Self::ListRooms(_) => auth::ensure_list(grants),
            _ => auth::ensure_admin(grants, self.room().unwrap_or_default()),
        }
    }
}

/// `POST /twirp/{service}/{method}`, with the real server's order of checks: token
/// middleware, then Twirp's method/route/content-type checks, decoding, the grant check, and
/// finally the method itself.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((service, rpc)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = auth::authenticate(&headers, uri.query(), &shared.api_key, &shared.api_secret);
    let enc = Encoding::from_headers(&headers);
    let decoded = match enc {
        Ok(enc) if service == ROOM_SERVICE => Call::decode(&rpc, enc, &body),
        _ => None,
    };

    let result = respond(&shared, &caller, &service, &rpc, &method, &uri, enc, decoded.as_ref());
    let response = result.unwrap_or_else(IntoResponse::into_response);

    let call = decoded.and_then(Result::ok);
    lock(&shared.recorder).record(RecordedCall {
        method: rpc,
        room: call.as_ref().and_then(Call::room).map(str::to_owned),
        identity: call.as_ref().and_then(Call::identity).map(str::to_owned),
        request_json: call.as_ref().map_or(Value::Null, Call::to_json),
        grants: caller.grants().cloned().unwrap_or_default(),
        status: response.status().as_u16(),
    });
    response
}

#[allow(clippy::too_many_arguments)]
fn respond(
    shared: &Shared,
    caller: &Caller,
    service: &str,
    rpc: &str,
    method: &Method,
    uri: &Uri,
    enc: Result<Encoding, String>,
    decoded: Option<&Result<Call, TwirpError>>,
) -> Result<Response, ErrorResponse> {
    if let Caller::Rejected(msg) = caller {
        // livekit-server's HandleError: status and the bare message, no Twirp JSON. The SDK
        // then fails to parse the body and reports a request error instead of a Twirp code.
        return Err(ErrorResponse::Plain(StatusCode::UNAUTHORIZED, msg.clone()));
    }
    if method != Method::POST {
        return Err(
            TwirpError::bad_route(format!("unsupported method {:?} (only POST is allowed)", method.as_str())).into()
        );
    }
    if service != ROOM_SERVICE || !ROOM_SERVICE_METHODS.contains(&rpc) {
        return Err(TwirpError::bad_route(format!("no handler for path {:?}", uri.path())).into());
    }
    let enc = enc.map_err(|ct| TwirpError::bad_route(format!("unexpected Content-Type: {ct:?}")))?;
    let call = match decoded {
        Some(Ok(call)) => call,
        Some(Err(err)) => return Err(err.clone().into()),
        None => return Err(TwirpError::internal("request was not decoded").into()),
    };
    call.authorize(caller.grants())?;
    if lock(&shared.failing).contains(rpc) {
        return Err(TwirpError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "service unavailable").into());
    }
    Ok(execute(shared, call, enc)?)
}

#[derive(Debug)]
enum ErrorResponse {
    Twirp(TwirpError),
    Plain(StatusCode, String),
}

impl From<TwirpError> for ErrorResponse {
    fn from(err: TwirpError) -> Self {
        Self::Twirp(err)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        match self {
            Self::Twirp(err) => err.into_response(),
            Self::Plain(status, msg) => {
                (status, [(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], msg).into_response()
            }
        }
    }
}

fn execute(shared: &Shared, call: &Call, enc: Encoding) -> Result<Response, TwirpError> {
    match call {
        Call::CreateRoom(req) => {
            let changed = lock(&shared.store).create_room(req);
            shared.emit(changed.events);
            enc.respond(&changed.value)
        }
        Call::ListRooms(req) => {
            let rooms = lock(&shared.store).list_rooms(&req.names);
            enc.respond(&proto::ListRoomsResponse { rooms })
        }
        Call::DeleteRoom(req) => {
            let changed = lock(&shared.store).delete_room(&req.room).ok_or(TwirpError::missing(Missing::Room))?;
            shared.emit(changed.events);
            enc.respond(&proto::DeleteRoomResponse {})
        }
        Call::ListParticipants(req) => {
            // The store answers an empty list for an unknown room rather than not_found.
            let participants = lock(&shared.store).participants(&req.room);
            enc.respond(&proto::ListParticipantsResponse { participants })
        }
        Call::GetParticipant(req) => {
            let participant = lock(&shared.store).participant(&req.room, &req.identity).map_err(TwirpError::missing)?;
            enc.respond(&participant)
        }
        Call::RemoveParticipant(req) => {
            let changed =
                lock(&shared.store).remove_participant(&req.room, &req.identity).map_err(TwirpError::missing)?;
            shared.emit(changed.events);
            enc.respond(&proto::RemoveParticipantResponse {})
        }
        Call::UpdateParticipant(req) => {
            let changed = lock(&shared.store).update_participant(req).map_err(TwirpError::missing)?;
            shared.emit(changed.events);
            enc.respond(&changed.value)
        }
        Call::SendData(req) => {
            if !req.nonce.is_empty() && req.nonce.len() != 16 {
                return Err(TwirpError::invalid_argument(format!(
                    "nonce should be 16-bytes or not present, got: {} bytes",
                    req.nonce.len()
                )));
            }
            if !lock(&shared.store).room_exists(&req.room) {
                return Err(TwirpError::missing(Missing::Room));
            }
            lock(&shared.recorder).record_data(
                &req.room,
                SentData {
                    topic: req.topic.clone(),
                    data: req.data.clone(),
                    destination_identities: req.destination_identities.clone(),
                    kind: proto::data_packet::Kind::try_from(req.kind).unwrap_or_default(),
                },
            );
            enc.respond(&proto::SendDataResponse {})
        }
        Call::MutePublishedTrack(req) => {
            let mut store = lock(&shared.store);
            if !store.room_exists(&req.room) {
                return Err(TwirpError::missing(Missing::Room));
            }
            if !store.participant_exists(&req.room, &req.identity) {
                return Err(TwirpError::missing(Missing::Participant));
            }
            if !req.muted && !shared.enable_remote_unmute {
                return Err(TwirpError::failed_precondition("remote unmute not enabled"));
            }
            // An unknown track sid yields a response without `track`, as on the real server
            // (where the Rust SDK's `mute_published_track` then panics on `unwrap`).
            let track = store.mute_track(req).map_err(TwirpError::missing)?;
            drop(store);
            enc.respond(&proto::MuteRoomTrackResponse { track })
        }
        Call::UpdateRoomMetadata(req) => {
            let room =
                lock(&shared.store).update_room_metadata(&req.room, &req.metadata).map_err(TwirpError::missing)?;
            enc.respond(&room)
        }
    }
}
