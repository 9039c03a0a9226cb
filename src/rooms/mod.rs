//! Rooms: a course's meeting place — creation and settings by hosts, invite codes and PINs, archiving — and
//! the lifecycle of its lectures (one session each: OPEN → LIVE → ENDED, driven by LiveKit webhooks, the
//! host's "end", and periodic reconciliation with LiveKit; each end opens the room's next lecture).

mod invite;
pub mod lifecycle;
pub mod overview;

use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq;

use crate::accounts::AuthUser;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::store::{RoomRecord, RoomStatus};
use crate::{ids, livekit, ratelimit};

pub use invite::normalize_invite_code;

/// A room as its host (or an admin) sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub invite_code: String,
    pub status: RoomStatus,
    pub host_id: String,
    pub lobby_enabled: bool,
    pub has_pin: bool,
    pub webinar_mode: bool,
    pub locked: bool,
    pub max_participants: Option<i64>,
    pub guest_screen_share: bool,
    pub ai_assistant: bool,
    pub guest_uploads: bool,
    /// Captions and summary language (`None`: the instance's default language, from the AI settings).
    pub language: Option<String>,
    /// The panic button is on: guests may not publish until "unmute all".
    pub guests_muted: bool,
    /// Guests admitted to a lecture may read its page afterwards.
    pub lectures_for_participants: bool,
    pub livekit_room_name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub archived_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The current lecture: under way when the room is LIVE, else the one the next session opens.
    pub lecture_id: String,
    pub lecture_number: i64,
    /// When the current lecture went live.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&RoomRecord> for RoomView {
    fn from(r: &RoomRecord) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            invite_code: r.invite_code.clone(),
            status: r.status,
            host_id: r.host_id.clone(),
            lobby_enabled: r.lobby_enabled,
            has_pin: r.pin_hash.is_some(),
            webinar_mode: r.webinar_mode,
            locked: r.locked,
            max_participants: r.max_participants,
            guest_screen_share: r.guest_screen_share,
            ai_assistant: r.ai_assistant,
            guest_uploads: r.guest_uploads,
            language: r.language.clone(),
            guests_muted: r.guests_muted,
            lectures_for_participants: r.lectures_for_participants,
            livekit_room_name: livekit::room_name(&r.lecture_id),
            created_at: crate::time::to_datetime(r.created_at),
            archived_at: r.archived_at.map(crate::time::to_datetime),
            lecture_id: r.lecture_id.clone(),
            lecture_number: r.lecture_number,
            started_at: r.started_at.map(crate::time::to_datetime),
        }
    }
}

/// What anyone holding an invite code may see: enough to show the join page, nothing private.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicRoomView {
    pub id: String,
    pub name: String,
    pub host_name: String,
    pub requires_pin: bool,
    pub lobby_enabled: bool,
    pub webinar_mode: bool,
    pub ai_assistant: bool,
    /// Guests admitted to a lecture may read its page afterwards (so the pages can offer the link).
    pub lectures_for_participants: bool,
    pub status: RoomStatus,
}

/// Create body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRoom {
    pub name: String,
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub lobby_enabled: Option<bool>,
    #[serde(default)]
    pub webinar_mode: Option<bool>,
    #[serde(default)]
    pub locked: Option<bool>,
    #[serde(default)]
    pub max_participants: Option<i64>,
    #[serde(default)]
    pub guest_screen_share: Option<bool>,
    #[serde(default)]
    pub ai_assistant: Option<bool>,
    #[serde(default)]
    pub guest_uploads: Option<bool>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub lectures_for_participants: Option<bool>,
}

/// Patch body: absent fields stay; `pin: null` removes the PIN and `maxParticipants: null` the cap.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub pin: Option<Option<String>>,
    #[serde(default)]
    pub lobby_enabled: Option<bool>,
    #[serde(default)]
    pub webinar_mode: Option<bool>,
    #[serde(default)]
    pub locked: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub max_participants: Option<Option<i64>>,
    #[serde(default)]
    pub guest_screen_share: Option<bool>,
    #[serde(default)]
    pub ai_assistant: Option<bool>,
    #[serde(default)]
    pub guest_uploads: Option<bool>,
    /// `null` returns to the instance's default language.
    #[serde(default, deserialize_with = "present")]
    pub language: Option<Option<String>>,
    #[serde(default)]
    pub lectures_for_participants: Option<bool>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from an absent one (`None`, via `default`).
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The largest room confctl accepts; LiveKit itself scales further, a lecture hall does not.
pub const MAX_PARTICIPANTS_LIMIT: i64 = 10_000;

fn validate_room_name(name: &str) -> Result<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 120 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_room_name",
            "the room name must have 1 to 120 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}

fn validate_max(max: Option<i64>) -> Result<Option<i64>> {
    match max {
        Some(n) if !(1..=MAX_PARTICIPANTS_LIMIT).contains(&n) => Err(Error::invalid(
            "invalid_max_participants",
            format!("maxParticipants must be between 1 and {MAX_PARTICIPANTS_LIMIT}, or null for no limit"),
        )),
        other => Ok(other),
    }
}

fn validate_language(code: &str) -> Result<String> {
    let code = code.trim();
    if !crate::config::is_language_code(code) {
        return Err(Error::invalid("invalid_language", "language must be a code such as en or ru"));
    }
    Ok(code.to_owned())
}

/// The language a room's captions and summary use: its own, or the instance's default (the AI settings).
pub fn language_of(room: &RoomRecord, default_language: &str) -> String {
    room.language.clone().unwrap_or_else(|| default_language.to_owned())
}

/// bcrypt cost for room PINs. A 4-digit PIN falls to any cost offline, so the cost buys little against a
/// stolen database; what protects a PIN is the attempt limit. A low cost keeps 1,000 students joining at
/// the start of a lecture within the latency budget (one hash per join attempt).
const PIN_BCRYPT_COST: u32 = 6;

fn validate_pin(pin: &str) -> Result<()> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("invalid_pin", "the PIN must be 4 to 12 digits"));
    }
    Ok(())
}

async fn hash_pin(pin: String) -> Result<String> {
    tokio::task::spawn_blocking(move || bcrypt::hash(pin, PIN_BCRYPT_COST))
        .await
        .map_err(|e| Error::internal(format!("PIN hashing task failed: {e}")))?
        .map_err(|e| Error::internal(format!("PIN hashing failed: {e}")))
}

/// Checks a PIN against its bcrypt hash off the async runtime.
pub async fn verify_pin(pin: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || bcrypt::verify(pin, &hash).unwrap_or(false))
        .await
        .map_err(|e| Error::internal(format!("PIN check task failed: {e}")))
}

/// Creates a room for the signed-in host. Without `aiAssistant` the room follows the AI settings' default.
pub async fn create(app: &App, auth: &AuthUser, input: NewRoom, actor: &Actor) -> Result<RoomRecord> {
    let name = validate_room_name(&input.name)?;
    let ai_assistant = match input.ai_assistant {
        Some(on) => on,
        None => crate::admin::ai_settings::current(app).await?.assistant_default,
    };
    let max_participants = validate_max(input.max_participants)?;
    let pin_hash = match input.pin {
        Some(pin) => {
            validate_pin(&pin)?;
            Some(hash_pin(pin).await?)
        }
        None => None,
    };
    let mut record = RoomRecord {
        id: ids::new_id(),
        name,
        invite_code: String::new(),
        host_id: auth.user.id.clone(),
        status: RoomStatus::Ready,
        lobby_enabled: input.lobby_enabled.unwrap_or(true),
        pin_hash,
        webinar_mode: input.webinar_mode.unwrap_or(false),
        locked: input.locked.unwrap_or(false),
        max_participants,
        guest_screen_share: input.guest_screen_share.unwrap_or(false),
        ai_assistant,
        guests_muted: false,
        guest_uploads: input.guest_uploads.unwrap_or(false),
        language: input.language.as_deref().map(validate_language).transpose()?,
        lectures_for_participants: input.lectures_for_participants.unwrap_or(false),
        created_at: app.clock().now_ms(),
        archived_at: None,
        lecture_id: ids::new_id(),
        lecture_number: 1,
        started_at: None,
        last_ended_at: None,
        // What the store reads back is authoritative (opening the first lecture already raises it).
        version: 0,
    };
    // Codes carry ~45 random bits, so a clash is rare; retry a few times rather than fail the host.
    let mut last = None;
    for _ in 0..5 {
        record.invite_code = invite::new_invite_code();
        match app.store().insert_room(&record).await {
            Ok(()) => {
                audit::record(
                    app,
                    actor,
                    "room.create",
                    Some(("room", &record.id)),
                    Some(&record.id),
                    serde_json::json!({ "name": record.name }),
                )
                .await;
                return Ok(record);
            }
            Err(err @ Error::Conflict { code: "invite_code_taken", .. }) => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| Error::internal("could not allocate an invite code")))
}

/// The room, if the user hosts it or is an admin. Anyone else gets "not found": a host cannot learn that
/// another host's room id exists.
pub async fn get_for_host(app: &App, auth: &AuthUser, room_id: &str) -> Result<RoomRecord> {
    let room = app.store().room_by_id(room_id).await?;
    if room.host_id == auth.user.id || auth.user.is_admin() {
        Ok(room)
    } else {
        Err(Error::not_found("room_not_found", "no such room"))
    }
}

/// Rooms of the user; with `all`, every room (admins only).
pub async fn list(app: &App, auth: &AuthUser, all: bool) -> Result<Vec<RoomRecord>> {
    if all {
        if !auth.user.is_admin() {
            return Err(Error::forbidden("admin_only", "only administrators may list every room"));
        }
        app.store().list_rooms(None).await
    } else {
        app.store().list_rooms(Some(&auth.user.id)).await
    }
}

/// Applies a patch to a room's settings.
pub async fn update(app: &App, mut room: RoomRecord, patch: RoomPatch, actor: &Actor) -> Result<RoomRecord> {
    if room.status == RoomStatus::Archived {
        return Err(archived());
    }
    let assistant_was_on = room.ai_assistant;
    let mut changed = Vec::new();
    if let Some(name) = patch.name {
        room.name = validate_room_name(&name)?;
        changed.push("name");
    }
    if let Some(max) = patch.max_participants {
        room.max_participants = validate_max(max)?;
        changed.push("maxParticipants");
    }
    if let Some(language) = patch.language {
        room.language = language.as_deref().map(validate_language).transpose()?;
        changed.push("language");
    }
    if let Some(pin) = patch.pin {
        room.pin_hash = match pin {
            Some(pin) => {
                validate_pin(&pin)?;
                Some(hash_pin(pin).await?)
            }
            None => None,
        };
        changed.push("pin");
    }
    for (value, field, name) in [
        (patch.lobby_enabled, &mut room.lobby_enabled, "lobbyEnabled"),
        (patch.webinar_mode, &mut room.webinar_mode, "webinarMode"),
        (patch.locked, &mut room.locked, "locked"),
        (patch.guest_screen_share, &mut room.guest_screen_share, "guestScreenShare"),
        (patch.ai_assistant, &mut room.ai_assistant, "aiAssistant"),
        (patch.guest_uploads, &mut room.guest_uploads, "guestUploads"),
        (patch.lectures_for_participants, &mut room.lectures_for_participants, "lecturesForParticipants"),
    ] {
        if let Some(v) = value {
            *field = v;
            changed.push(name);
        }
    }
    crate::events::atomically(app, async {
        app.store().update_room_settings(&room).await?;
        if room.status == RoomStatus::Live && assistant_was_on != room.ai_assistant {
            use crate::events::AgentEvent;
            app.hub().to_agents(if room.ai_assistant {
                AgentEvent::LectureLive { room_id: room.id.clone() }
            } else {
                AgentEvent::LectureEnded { lecture_id: room.lecture_id.clone() }
            });
        }
        audit::record(
            app,
            actor,
            "room.update",
            Some(("room", &room.id)),
            Some(&room.id),
            serde_json::json!({ "changed": changed }),
        )
        .await;
        Ok(())
    })
    .await?;
    Ok(room)
}

/// Issues a new invite code; the old one stops working at once.
pub async fn regenerate_invite_code(app: &App, mut room: RoomRecord, actor: &Actor) -> Result<RoomRecord> {
    for _ in 0..5 {
        let code = invite::new_invite_code();
        match app.store().set_invite_code(&room.id, &code).await {
            Ok(()) => {
                room.invite_code = code;
                audit::record(
                    app,
                    actor,
                    "room.invite_code_regenerated",
                    Some(("room", &room.id)),
                    Some(&room.id),
                    serde_json::json!({}),
                )
                .await;
                return Ok(room);
            }
            Err(Error::Conflict { code: "invite_code_taken", .. }) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(Error::internal("could not allocate an invite code"))
}

/// The answer to anything that would change an archived room or let someone into it.
pub fn archived() -> Error {
    Error::gone("room_archived", "this room is archived; its host can unarchive it to hold lectures again")
}

/// Archives a room: a lecture under way ends first (closed at LiveKit, waiting guests turned away), then
/// no one can join until the host unarchives it. Its lectures stay readable.
pub async fn archive(app: &App, room: RoomRecord, actor: &Actor) -> Result<RoomRecord> {
    if room.status == RoomStatus::Archived {
        return Ok(room);
    }
    lifecycle::end(app, &room, actor).await?;
    app.store().set_room_archived(&room.id, Some(app.clock().now_ms())).await?;
    audit::record(app, actor, "room.archive", Some(("room", &room.id)), Some(&room.id), serde_json::json!({})).await;
    app.store().room_by_id(&room.id).await
}

/// Makes an archived room ready for lectures again, with the same invite link.
pub async fn unarchive(app: &App, room: RoomRecord, actor: &Actor) -> Result<RoomRecord> {
    if app.store().set_room_archived(&room.id, None).await? {
        audit::record(app, actor, "room.unarchive", Some(("room", &room.id)), Some(&room.id), serde_json::json!({}))
            .await;
    }
    app.store().room_by_id(&room.id).await
}

/// Deletes a room and its history; a lecture under way is closed at LiveKit first.
pub async fn delete(app: &App, room: RoomRecord, actor: &Actor) -> Result<()> {
    if room.status == RoomStatus::Live {
        lifecycle::end(app, &room, actor).await?;
    }
    // Objects first: if storage fails, the room (and the way to retry) is still there.
    for key in app.store().room_object_keys(&room.id).await? {
        app.storage().delete(&key).await?;
    }
    app.store().delete_room(&room.id).await?;
    audit::record(app, actor, "room.delete", Some(("room", &room.id)), None, serde_json::json!({ "name": room.name }))
        .await;
    Ok(())
}

/// The public face of a room, by invite code (rate limited per IP against code guessing).
/// The answer to an invite code that is not (or no longer) a room's.
pub fn invite_not_found() -> Error {
    Error::not_found("invite_not_found", "this invite link is not valid; ask the lecturer for a new one")
}

/// Whether `given` (as typed: any case, dashes optional) is the room's current invite code.
pub fn invite_code_matches(room: &RoomRecord, given: &str) -> bool {
    normalize_invite_code(given).is_some_and(|code| bool::from(code.as_bytes().ct_eq(room.invite_code.as_bytes())))
}

pub async fn by_invite_code(app: &App, code: &str, ip: Option<&str>) -> Result<PublicRoomView> {
    ratelimit::check(
        app.limiter(),
        &format!("invite:ip:{}", ip.unwrap_or_default()),
        app.live().rate_limits.invite_lookups_per_ip_per_minute,
        std::time::Duration::from_secs(60),
    )
    .await?;
    let code = normalize_invite_code(code).ok_or_else(invite_not_found)?;
    let room = app.store().room_by_invite_code(&code).await?.ok_or_else(invite_not_found)?;
    let host = app.store().user_by_id(&room.host_id).await?;
    Ok(PublicRoomView {
        id: room.id,
        name: room.name,
        host_name: host.display_name,
        requires_pin: room.pin_hash.is_some(),
        lobby_enabled: room.lobby_enabled,
        webinar_mode: room.webinar_mode,
        ai_assistant: room.ai_assistant,
        lectures_for_participants: room.lectures_for_participants,
        status: room.status,
    })
}
