//! Getting into a room: guests join with a name and a browser fingerprint (and the PIN, if set), wait in
//! the lobby until the host decides, and only then receive a LiveKit token; hosts get theirs directly.

mod decisions;
pub mod stream;

pub use decisions::{approve, approve_all, lobby, reject};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{AuthUser, ClientInfo};
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::events::LobbyEntry;
use crate::livekit::{self, Grant, ParticipantRole};
use crate::store::{Admission, JoinOutcome, ParticipantKind, ParticipantRecord, RoomRecord, RoomStatus};
use crate::{ids, ratelimit, rooms};

/// Join body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRequest {
    /// The room's current invite code: the room id alone is public (it is in the room page's address), so a
    /// replaced code locks out the old link's holders.
    pub invite_code: String,
    pub display_name: String,
    pub session_fingerprint: String,
    #[serde(default)]
    pub pin: Option<String>,
}

/// Join answer: the session secret (returned once), the admission state, and a token when admitted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    pub session_id: String,
    /// The lecture this session admits to (a guest's proof of attendance for its page afterwards).
    pub lecture_id: String,
    pub status: Admission,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub livekit_url: Option<String>,
}

/// A guest's state as the waiting room shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestStatus {
    pub status: Admission,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub livekit_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A host's (or admin's) way into the room.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostToken {
    pub token: String,
    pub livekit_url: String,
    pub identity: String,
}

fn validate_display_name(name: &str) -> Result<String> {
    // The shared normaliser: the lobby and chat show guests and accounts side by side.
    crate::names::normalize(name, 64, "invalid_display_name", crate::names::Labels::Refused)
}

fn validate_fingerprint(fp: &str) -> Result<()> {
    if !(16..=256).contains(&fp.len()) || fp.chars().any(char::is_control) {
        return Err(Error::invalid("invalid_fingerprint", "sessionFingerprint must be 16 to 256 characters"));
    }
    Ok(())
}

fn gone() -> Error {
    Error::gone("room_ended", "this lecture has ended")
}

/// Why a guest row no longer admits anyone: the room was archived, or its lecture ended (a session admits to
/// one lecture only; the next one starts at the invite link again).
fn session_over(room: &RoomRecord, participant: &ParticipantRecord) -> bool {
    room.status == RoomStatus::Archived || participant.lecture_id != room.lecture_id
}

fn removed() -> Error {
    Error::forbidden("removed", "the host removed you from this lecture; join again through the invite link")
}

fn banned() -> Error {
    Error::forbidden("banned", "you have been removed from this lecture by the host and cannot rejoin")
}

/// A guest asks to join the room's current lecture. Checks, in order: the room exists and the invite code is
/// its current one (404), it is not archived (410), is not locked (423), is
/// not full, the guest is not banned, the PIN. Then the guest waits in the lobby or, without a lobby, gets a
/// token at once.
///
/// This is the path a lecture-start storm takes thousands of times a second, so it reads the room from the
/// store's cache and leaves the capacity and ban checks to the statement that records the guest (one write,
/// no reads, see `Store::insert_guest`). A refusal decided on a cached room is confirmed on a fresh read
/// first, and a room that changed under the cached copy is read again, so the cache never decides alone.
pub async fn join(
    app: &App,
    room_id: &str,
    request: JoinRequest,
    client: &ClientInfo,
    previous_session: Option<&str>,
) -> Result<JoinResponse> {
    ratelimit::check(
        app.limiter(),
        &format!("join:ip:{}", client.ip.as_deref().unwrap_or_default()),
        app.live().rate_limits.joins_per_ip_per_minute,
        Duration::from_secs(60),
    )
    .await?;
    let display_name = validate_display_name(&request.display_name)?;
    validate_fingerprint(&request.session_fingerprint)?;
    let previous_hash = previous_session.map(ids::session_hash);
    let session_id = ids::new_session();
    let session_hash = ids::session_hash(&session_id);

    let mut room = app.store().cached_room(room_id).await?;
    let mut fresh = false;
    // A room changes rarely; a few rounds cover a change landing between the read and the insert.
    for _ in 0..JOIN_ATTEMPTS {
        if let Err(refusal) = may_join(&room, &request) {
            if fresh {
                return Err(refusal);
            }
            room = app.store().fresh_room(room_id).await?;
            fresh = true;
            continue;
        }
        if let Some(pin_hash) = &room.pin_hash {
            // A PIN (and the failure counters behind it) is checked against the room as stored.
            if !fresh {
                room = app.store().fresh_room(room_id).await?;
                fresh = true;
                continue;
            }
            // Capacity and bans come before the PIN, as on every join: a banned guest hears so, not "wrong PIN".
            if let Some(max) = room.max_participants {
                if app.store().count_admitted(&room.lecture_id).await? >= max {
                    return Err(Error::conflict("room_full", "this lecture is full"));
                }
            }
            let fingerprint = &request.session_fingerprint;
            if app.store().is_banned(&room.id, &room.host_id, fingerprint, previous_hash.as_deref()).await? {
                return Err(banned());
            }
            check_pin(app, &room, &request, pin_hash.clone(), client).await?;
        }
        let admitted = !room.lobby_enabled;
        let participant = ParticipantRecord {
            fingerprint: Some(request.session_fingerprint.clone()),
            session_hash: Some(session_hash.clone()),
            ..arriving(
                &room,
                format!("g_{}", ids::new_ordered_id()),
                ParticipantKind::Guest,
                display_name.clone(),
                client,
                admitted.then_some("no lobby"),
            )
        };
        match app.store().insert_guest(&room, &participant, previous_hash.as_deref()).await? {
            JoinOutcome::Joined => return joined(app, &room, &participant, session_id),
            JoinOutcome::Banned => return Err(banned()),
            JoinOutcome::Full => return Err(Error::conflict("room_full", "this lecture is full")),
            JoinOutcome::RoomChanged => {
                room = app.store().fresh_room(room_id).await?;
                fresh = true;
            }
        }
    }
    Err(Error::unavailable("room_changing", "the room changed while you joined; try again"))
}

/// How many times a join reads the room again when it changed underneath.
const JOIN_ATTEMPTS: usize = 4;

/// The checks a join makes on the room itself, before anything is stored.
fn may_join(room: &RoomRecord, request: &JoinRequest) -> Result<()> {
    if !rooms::invite_code_matches(room, &request.invite_code) {
        return Err(rooms::invite_not_found());
    }
    if room.status == RoomStatus::Archived {
        return Err(rooms::archived());
    }
    if room.locked {
        return Err(Error::locked("room_locked", "the host has locked this lecture; no one new can join right now"));
    }
    Ok(())
}

/// The answer to a recorded join: a token at once without a lobby, otherwise the host hears of the guest.
fn joined(app: &App, room: &RoomRecord, participant: &ParticipantRecord, session_id: String) -> Result<JoinResponse> {
    if participant.admission == Admission::Approved {
        let token = guest_token(app, room, participant)?;
        return Ok(JoinResponse {
            session_id,
            lecture_id: room.lecture_id.clone(),
            status: Admission::Approved,
            token: Some(token),
            livekit_url: Some(app.livekit().browser_url().to_owned()),
        });
    }
    app.hub().guest_arrived(&room.id, lobby_entry(participant));
    Ok(JoinResponse {
        session_id,
        lecture_id: room.lecture_id.clone(),
        status: Admission::Pending,
        token: None,
        livekit_url: None,
    })
}

/// A participant row for someone arriving now: admitted already when `admitted_by` names who let them in,
/// otherwise waiting in the lobby.
fn arriving(
    room: &RoomRecord,
    identity: String,
    kind: ParticipantKind,
    display_name: String,
    client: &ClientInfo,
    admitted_by: Option<&str>,
) -> ParticipantRecord {
    let now = crate::time::now_ms();
    ParticipantRecord {
        ip: client.ip.clone(),
        user_agent: client.user_agent.as_deref().map(|ua| ua.chars().take(300).collect()),
        admission: if admitted_by.is_some() { Admission::Approved } else { Admission::Pending },
        decided_at: admitted_by.map(|_| now),
        decided_by: admitted_by.map(str::to_owned),
        ..ParticipantRecord::arriving(
            ids::new_ordered_id(),
            room.id.clone(),
            room.lecture_id.clone(),
            identity,
            kind,
            display_name,
            now,
        )
    }
}

/// Only wrong PINs count towards the limits (per IP, and per room and browser), so a lecture hall behind
/// one NAT address is not locked out by the students who type it right. Both slots are taken before bcrypt
/// runs and handed back only for a right PIN, so parallel guesses cannot outrun the limit.
async fn check_pin(
    app: &App,
    room: &RoomRecord,
    request: &JoinRequest,
    pin_hash: String,
    client: &ClientInfo,
) -> Result<()> {
    let live = app.live();
    let limits = &live.rate_limits;
    let ip_key = format!("pin:ip:{}", client.ip.as_deref().unwrap_or_default());
    let guest_key = format!("pin:guest:{}:{}", room.id, request.session_fingerprint);
    let slots = ratelimit::acquire_all(
        app.limiter(),
        &[(&ip_key, limits.pin_failures_per_ip_per_minute), (&guest_key, limits.pin_failures_per_guest_per_minute)],
        Duration::from_secs(60),
    )
    .await?;
    let given = request.pin.clone().unwrap_or_default();
    let right = !given.is_empty() && given.len() <= 12 && rooms::verify_pin(given, pin_hash).await?;
    if right {
        ratelimit::release_all(app.limiter(), slots).await;
        return Ok(());
    }
    drop(slots);
    let actor = Actor { user_id: None, label: format!("guest:{}", request.display_name.trim()), ip: client.ip.clone() };
    audit::record(app, &actor, "room.pin_failed", Some(("room", &room.id)), Some(&room.id), serde_json::json!({}))
        .await;
    let message =
        if request.pin.as_deref().unwrap_or_default().is_empty() { "this lecture needs a PIN" } else { "wrong PIN" };
    Err(Error::forbidden("wrong_pin", message))
}

/// Whether a guest may publish: the host's explicit decision for them, else the room's default (not in
/// webinar mode, not while the panic mute is on).
pub fn guest_may_publish(room: &RoomRecord, participant: &ParticipantRecord) -> bool {
    participant.publish_granted.unwrap_or(!room.webinar_mode && !room.guests_muted)
}

/// The LiveKit token of an admitted guest, with the room's current rules.
fn guest_token(app: &App, room: &RoomRecord, participant: &ParticipantRecord) -> Result<String> {
    let livekit_room = livekit::room_name(&room.lecture_id);
    app.livekit().token(&Grant {
        livekit_room: &livekit_room,
        identity: &participant.identity,
        name: &participant.display_name,
        role: ParticipantRole::Guest,
        can_publish: guest_may_publish(room, participant),
        screen_share: room.guest_screen_share,
    })
}

/// A host (of this room) or an admin enters the current lecture (opening it at LiveKit, which makes it
/// live): no lobby, full publishing rights.
pub async fn host_token(app: &App, auth: &AuthUser, room: &RoomRecord, client: &ClientInfo) -> Result<HostToken> {
    if room.status == RoomStatus::Archived {
        return Err(rooms::archived());
    }
    let identity = format!("h_{}", auth.user.id);
    app.store()
        .upsert_host_participant(&ParticipantRecord {
            user_id: Some(auth.user.id.clone()),
            ..arriving(room, identity.clone(), ParticipantKind::Host, auth.user.name.clone(), client, Some("host"))
        })
        .await?;
    let livekit_room = livekit::room_name(&room.lecture_id);
    // Best effort: without it LiveKit still opens the room when the host connects, only with its short
    // default timeouts; an unreachable media server shows in the browser anyway.
    if let Err(err) = app.livekit().ensure_room(&livekit_room, room.max_participants).await {
        tracing::warn!(room = %room.id, error = %err, "could not open the room at LiveKit ahead of the host");
    }
    let token = app.livekit().token(&Grant {
        livekit_room: &livekit_room,
        identity: &identity,
        name: &auth.user.name,
        role: ParticipantRole::Host,
        can_publish: true,
        screen_share: true,
    })?;
    Ok(HostToken { token, livekit_url: app.livekit().browser_url().to_owned(), identity })
}

/// Looks up a guest session of a room, made for any of its lectures (404 when the secret does not belong to
/// this room). Whether it still admits anyone is `current_status`'s question.
pub async fn guest_session(app: &App, room_id: &str, session_id: &str) -> Result<ParticipantRecord> {
    let not_found = || Error::not_found("session_not_found", "no such guest session in this room; join again");
    if session_id.is_empty() || session_id.len() > 100 {
        return Err(not_found());
    }
    app.store()
        .participant_by_session(&ids::session_hash(session_id))
        .await?
        .filter(|p| p.room_id == room_id)
        .ok_or_else(not_found)
}

/// The stored state of a guest, with a fresh token when admitted and still allowed in.
pub async fn current_status(app: &App, room: &RoomRecord, participant: &ParticipantRecord) -> Result<GuestStatus> {
    let banned = match &participant.fingerprint {
        Some(fp) => app.store().is_banned(&room.id, &room.host_id, fp, participant.session_hash.as_deref()).await?,
        None => false,
    };
    status_given(app, room, participant, banned)
}

/// A guest's status from the stored room and participant, `banned` telling whether a ban of the room (or of
/// its host's rooms) covers the guest's fingerprint or session.
fn status_given(app: &App, room: &RoomRecord, participant: &ParticipantRecord, banned: bool) -> Result<GuestStatus> {
    if session_over(room, participant) {
        return Ok(GuestStatus {
            status: Admission::Rejected,
            token: None,
            livekit_url: None,
            reason: Some("the lecture has ended".into()),
        });
    }
    if banned {
        return Ok(GuestStatus {
            status: Admission::Rejected,
            token: None,
            livekit_url: None,
            reason: Some("banned".into()),
        });
    }
    if participant.removed_at.is_some() {
        return Ok(GuestStatus {
            status: Admission::Rejected,
            token: None,
            livekit_url: None,
            reason: Some("removed".into()),
        });
    }
    status_for(app, room, participant.admission, participant.reason.clone(), participant)
}

fn status_for(
    app: &App,
    room: &RoomRecord,
    admission: Admission,
    reason: Option<String>,
    participant: &ParticipantRecord,
) -> Result<GuestStatus> {
    match admission {
        Admission::Approved => Ok(GuestStatus {
            status: Admission::Approved,
            token: Some(guest_token(app, room, participant)?),
            livekit_url: Some(app.livekit().browser_url().to_owned()),
            reason: None,
        }),
        other => Ok(GuestStatus { status: other, token: None, livekit_url: None, reason }),
    }
}

/// A fresh token for an admitted guest (after a page reload, or when the first one expired unused).
pub async fn refresh_guest_token(app: &App, room_id: &str, session_id: &str) -> Result<GuestStatus> {
    let participant = guest_session(app, room_id, session_id).await?;
    let room = app.store().room_by_id(room_id).await?;
    let status = current_status(app, &room, &participant).await?;
    match status.status {
        Admission::Approved => Ok(status),
        Admission::Pending => Err(Error::forbidden("not_admitted", "the host has not let you in yet")),
        Admission::Rejected if session_over(&room, &participant) => Err(gone()),
        Admission::Rejected if status.reason.as_deref() == Some("banned") => Err(banned()),
        Admission::Rejected if status.reason.as_deref() == Some("removed") => Err(removed()),
        Admission::Rejected => Err(Error::forbidden("rejected", "the host did not let you in")),
    }
}

/// Someone allowed to see a room's content (chat, files) and act in it.
#[derive(Debug, Clone)]
pub enum Member {
    /// The room's host, or an admin.
    Host(AuthUser),
    /// A guest the host let in, not since removed or banned.
    Guest(Box<ParticipantRecord>),
}

impl Member {
    pub fn display_name(&self) -> &str {
        match self {
            Self::Host(auth) => &auth.user.name,
            Self::Guest(p) => &p.display_name,
        }
    }
    pub fn is_host(&self) -> bool {
        matches!(self, Self::Host(_))
    }
    /// `host`, `admin` (an admin who does not host this room) or `guest`.
    pub fn role(&self, room: &RoomRecord) -> &'static str {
        match self {
            Self::Host(auth) if auth.user.id == room.host_id => "host",
            Self::Host(_) => "admin",
            Self::Guest(_) => "guest",
        }
    }
    pub fn actor(&self, ip: Option<String>) -> Actor {
        match self {
            Self::Host(auth) => auth.user.actor(ip),
            Self::Guest(p) => Actor { user_id: None, label: format!("guest:{}", p.display_name), ip },
        }
    }
    /// A stable key for per-sender limits.
    pub fn key(&self) -> String {
        match self {
            Self::Host(auth) => format!("user:{}", auth.user.id),
            Self::Guest(p) => format!("participant:{}", p.id),
        }
    }
}

/// Decides whether the caller is inside the room: its host or an admin (by account), or an admitted guest (by
/// session). A guest still in the lobby, rejected, removed or banned is refused: room content must not
/// leak to the lobby.
pub async fn member(app: &App, room: &RoomRecord, auth: Option<AuthUser>, session: Option<&str>) -> Result<Member> {
    if let Some(auth) = auth {
        if auth.user.id == room.host_id || auth.user.is_admin() {
            return Ok(Member::Host(auth));
        }
    }
    let Some(session) = session.filter(|s| !s.is_empty()) else {
        return Err(Error::unauthenticated("not_a_participant", "join the lecture first"));
    };
    let participant = guest_session(app, &room.id, session)
        .await
        .map_err(|_| Error::forbidden("not_a_participant", "this session does not belong to this lecture"))?;
    let status = current_status(app, room, &participant).await?;
    match (status.status, status.reason.as_deref()) {
        (Admission::Approved, _) => Ok(Member::Guest(Box::new(participant))),
        (Admission::Pending, _) => Err(Error::forbidden("not_admitted", "the host has not let you in yet")),
        (_, Some("banned")) => Err(banned()),
        (_, Some("removed")) => Err(removed()),
        _ if session_over(room, &participant) => Err(gone()),
        _ => Err(Error::forbidden("rejected", "the host did not let you in")),
    }
}

pub(crate) fn lobby_entry(p: &ParticipantRecord) -> LobbyEntry {
    LobbyEntry {
        id: p.id.clone(),
        display_name: p.display_name.clone(),
        status: p.admission,
        waiting_since: crate::time::to_datetime(p.created_at),
        waiting_seconds: ((crate::time::now_ms() - p.created_at) / 1000).max(0),
    }
}
