//! The host's tools against disruption: kick, ban (per room or across the host's rooms), the panic mute,
//! lock, and webinar hand-raising with speaking rights. Every action is audited; LiveKit is told through
//! the `livekit` module.

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::admission::Member;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
pub use crate::events::Hand;
use crate::events::{self, Decision, Decisions, HostEvent};
use crate::ids;
use crate::livekit::{self, ParticipantRole};
use crate::store::{Admission, BanRecord, ParticipantKind, ParticipantRecord, RoomRecord, RoomStatus};

/// Whom a ban covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BanScope {
    /// This room only.
    #[default]
    Room,
    /// Every room of this host.
    Host,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BanRequest {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub scope: BanScope,
}

/// What removing someone did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    pub identity: String,
    /// False when they were not connected to LiveKit at that moment (or LiveKit has not answered yet).
    pub disconnected: bool,
    /// True when LiveKit could not be told yet: confctl already refuses them, and the disconnect is retried
    /// in the background (the host's event stream says when it went through).
    pub pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban: Option<BanRecord>,
}

/// Result of the panic button (or its undo), participant by participant.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MuteReport {
    pub muted: Vec<String>,
    pub failed: Vec<MuteFailure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MuteFailure {
    pub identity: String,
    pub error: String,
}

fn trimmed_reason(reason: Option<String>) -> Option<String> {
    reason.map(|r| r.trim().chars().take(300).collect::<String>()).filter(|r| !r.is_empty())
}

async fn guest_by_identity(app: &App, room: &RoomRecord, identity: &str) -> Result<ParticipantRecord> {
    let participant = app
        .store()
        .participant_by_identity(&room.lecture_id, identity)
        .await?
        .ok_or_else(|| Error::not_found("participant_not_found", "no such participant in this room"))?;
    if participant.kind == ParticipantKind::Host {
        return Err(Error::forbidden("cannot_remove_host", "hosts cannot be removed or muted from their own room"));
    }
    Ok(participant)
}

/// Removes a participant now; they may come back through the invite link (and the lobby).
pub async fn kick(app: &App, room: &RoomRecord, identity: &str, actor: &Actor) -> Result<Removal> {
    let participant = guest_by_identity(app, room, identity).await?;
    // confctl refuses them first: their session no longer opens the room and a waiting entry is turned away.
    events::atomically(app, async {
        app.store().mark_removed(&room.id, &participant.id, "kicked").await?;
        if participant.admission == Admission::Pending
            && app
                .store()
                .decide_entry(&room.lecture_id, &participant.id, Admission::Rejected, Some("kicked"), "moderation")
                .await
                .is_ok()
        {
            notify_rejected(app, &room.id, [participant.id.clone()], "kicked");
        }
        Ok(())
    })
    .await?;
    if participant.hand_raised_at.is_some() {
        publish_hands(app, room).await;
    }
    let connection = disconnect(app, &room.id, &room.lecture_id, &participant.identity).await;
    audit::record(
        app,
        actor,
        "moderation.kick",
        Some(("participant", identity)),
        Some(&room.id),
        serde_json::json!({ "displayName": participant.display_name, "disconnected": connection.disconnected, "pending": connection.pending }),
    )
    .await;
    Ok(Removal {
        identity: identity.to_owned(),
        disconnected: connection.disconnected,
        pending: connection.pending,
        ban: None,
    })
}

/// What LiveKit said to a disconnect.
#[derive(Debug, Clone, Copy)]
struct Connection {
    disconnected: bool,
    pending: bool,
}

/// How often, and how far apart, a failed disconnect is tried again: about five minutes in all, after which
/// the `participant_joined` webhook and the revoked tokens still keep the person out.
const DISCONNECT_RETRIES: [u64; 7] = [1, 2, 5, 10, 30, 60, 180];

/// Disconnects someone confctl has already refused. LiveKit being down must not undo or fail the removal:
/// the call is retried in the background and reported as pending, and the host hears when it went through.
async fn disconnect(app: &App, room_id: &str, lecture_id: &str, identity: &str) -> Connection {
    let livekit_room = livekit::room_name(lecture_id);
    match app.livekit().remove_participant(&livekit_room, identity).await {
        Ok(was_connected) => Connection { disconnected: was_connected, pending: false },
        Err(err) => {
            tracing::warn!(room = %room_id, identity, error = %err, "LiveKit did not take a removal; retrying in the background");
            let (app, room_id, livekit_room, identity) =
                (app.clone(), room_id.to_owned(), livekit_room.clone(), identity.to_owned());
            tokio::spawn(async move { retry_disconnect(app, room_id, livekit_room, identity).await });
            Connection { disconnected: false, pending: true }
        }
    }
}

async fn retry_disconnect(app: App, room_id: String, livekit_room: String, identity: String) {
    for delay in DISCONNECT_RETRIES {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(delay)) => {}
            _ = app.shutting_down() => return,
        }
        match app.livekit().remove_participant(&livekit_room, &identity).await {
            Ok(disconnected) => {
                app.hub().to_hosts(&room_id, HostEvent::RemovalConfirmed { identity: identity.clone(), disconnected });
                return;
            }
            Err(err) => {
                tracing::warn!(room = %room_id, identity, error = %err, "LiveKit still does not take a removal")
            }
        }
    }
    tracing::error!(room = %room_id, identity, "gave up disconnecting a removed participant at LiveKit; their tokens stay refused");
    app.hub().to_hosts(&room_id, HostEvent::RemovalFailed { identity });
}

fn notify_rejected(app: &App, room_id: &str, ids: impl IntoIterator<Item = String>, reason: &str) {
    let entries = ids
        .into_iter()
        .map(|id| (id, Decision { status: Admission::Rejected, reason: Some(reason.to_owned()) }))
        .collect();
    app.hub().decided(room_id, Decisions::new(entries));
}

/// Bans a participant's browser (fingerprint; the session as a second key) from this room or all of the
/// host's rooms. The ban, the removal of every row it covers and the rejection of that browser's waiting
/// entries are one transaction, so the ban holds in confctl before LiveKit is even asked to disconnect.
pub async fn ban(app: &App, room: &RoomRecord, identity: &str, request: BanRequest, actor: &Actor) -> Result<Removal> {
    let participant = guest_by_identity(app, room, identity).await?;
    let fingerprint = participant
        .fingerprint
        .clone()
        .ok_or_else(|| Error::invalid("cannot_ban", "this participant has no browser fingerprint to ban"))?;
    let record = BanRecord {
        id: ids::new_id(),
        room_id: (request.scope == BanScope::Room).then(|| room.id.clone()),
        host_id: room.host_id.clone(),
        fingerprint,
        session_hash: participant.session_hash.clone(),
        ip: participant.ip.clone(),
        display_name: Some(participant.display_name.clone()),
        reason: trimmed_reason(request.reason),
        created_by: Some(actor.label.clone()),
        created_at: app.clock().now_ms(),
    };
    let changed = events::atomically(app, async {
        let changed = app.store().insert_ban_and_refuse(&record).await?;
        for row in &changed.rejected_entries {
            notify_rejected(app, &row.room_id, [row.key.clone()], "banned");
        }
        Ok(changed)
    })
    .await?;
    if participant.hand_raised_at.is_some() {
        publish_hands(app, room).await;
    }
    let mut connection = Connection { disconnected: false, pending: false };
    for row in &changed.removed_identities {
        let c = disconnect(app, &row.room_id, &row.lecture_id, &row.key).await;
        if row.key == identity && row.room_id == room.id {
            connection = c;
        } else {
            connection.pending |= c.pending;
        }
    }
    audit::record(
        app,
        actor,
        "moderation.ban",
        Some(("participant", identity)),
        Some(&room.id),
        serde_json::json!({ "displayName": participant.display_name, "scope": if record.room_id.is_some() { "room" } else { "host" }, "reason": record.reason, "banId": record.id, "disconnected": connection.disconnected, "pending": connection.pending }),
    )
    .await;
    Ok(Removal {
        identity: identity.to_owned(),
        disconnected: connection.disconnected,
        pending: connection.pending,
        ban: Some(record),
    })
}

pub async fn bans(app: &App, room: &RoomRecord) -> Result<Vec<BanRecord>> {
    app.store().bans_for_room(&room.id, &room.host_id).await
}

pub async fn unban(app: &App, room: &RoomRecord, ban_id: &str, actor: &Actor) -> Result<()> {
    app.store().delete_ban(ban_id, &room.id, &room.host_id).await?;
    audit::record(app, actor, "moderation.unban", Some(("ban", ban_id)), Some(&room.id), serde_json::json!({})).await;
    Ok(())
}

/// How many permission updates run at once during the panic mute: fast for 300 students, gentle on LiveKit.
const PARALLEL_UPDATES: usize = 16;

/// The panic button: every connected participant except hosts and the assistant loses publishing (their
/// tracks stop), and guests who join or reload stay muted until "unmute all".
pub async fn mute_all(app: &App, room: &RoomRecord, actor: &Actor) -> Result<MuteReport> {
    set_guest_publishing(app, room, false, actor).await
}

/// Restores the room's default rights (publishing unless it is a webinar).
pub async fn unmute_all(app: &App, room: &RoomRecord, actor: &Actor) -> Result<MuteReport> {
    set_guest_publishing(app, room, true, actor).await
}

async fn set_guest_publishing(app: &App, room: &RoomRecord, restore: bool, actor: &Actor) -> Result<MuteReport> {
    if room.status == RoomStatus::Archived {
        return Err(crate::rooms::archived());
    }
    events::atomically(app, async {
        app.store().set_guests_muted(room, !restore).await?;
        app.hub().to_hosts(&room.id, HostEvent::RoomUpdated { locked: room.locked, guests_muted: !restore });
        Ok(())
    })
    .await?;
    let can_publish = restore && !room.webinar_mode;
    let livekit_room = livekit::room_name(&room.lecture_id);
    let connected = app.livekit().list_participants(&livekit_room).await?;
    let targets: Vec<String> = connected
        .into_iter()
        .filter(|p| !matches!(livekit::role_of(p), Some("host" | "assistant")))
        .map(|p| p.identity)
        .collect();
    let results: Vec<(String, Result<bool>)> = futures::stream::iter(targets)
        .map(|identity| {
            let lk = app.livekit();
            let livekit_room = livekit_room.clone();
            let permission = livekit::permission(ParticipantRole::Guest, can_publish, room.guest_screen_share);
            async move {
                let result =
                    lk.update_permission(&livekit_room, &identity, permission).await.map(|info| info.is_some());
                (identity, result)
            }
        })
        .buffer_unordered(PARALLEL_UPDATES)
        .collect()
        .await;
    let mut report = MuteReport::default();
    for (identity, result) in results {
        match result {
            Ok(true) => report.muted.push(identity),
            Ok(false) => report.failed.push(MuteFailure { identity, error: "no longer connected".into() }),
            Err(err) => report.failed.push(MuteFailure { identity, error: err.to_string() }),
        }
    }
    report.muted.sort();
    let action = if restore { "moderation.unmute_all" } else { "moderation.mute_all" };
    audit::record(
        app,
        actor,
        action,
        Some(("room", &room.id)),
        Some(&room.id),
        serde_json::json!({ "changed": report.muted.len(), "failed": report.failed.len() }),
    )
    .await;
    Ok(report)
}

/// Locks or unlocks the room: while locked nobody new can join; people inside stay.
pub async fn set_locked(app: &App, room: &RoomRecord, locked: bool, actor: &Actor) -> Result<()> {
    if room.status == RoomStatus::Archived {
        return Err(crate::rooms::archived());
    }
    events::atomically(app, async {
        app.store().set_room_locked(&room.id, locked).await?;
        app.hub().to_hosts(&room.id, HostEvent::RoomUpdated { locked, guests_muted: room.guests_muted });
        let action = if locked { "moderation.lock" } else { "moderation.unlock" };
        audit::record(app, actor, action, Some(("room", &room.id)), Some(&room.id), serde_json::json!({})).await;
        Ok(())
    })
    .await
}

/// A guest raises or lowers their hand; hosts see the queue, and the room hears it on topic `hand-raise`.
pub async fn raise_hand(app: &App, room: &RoomRecord, member: &Member, raised: bool) -> Result<Vec<Hand>> {
    let Member::Guest(participant) = member else {
        return Err(Error::invalid("hosts_do_not_raise_hands", "only guests raise hands"));
    };
    if room.status == RoomStatus::Archived {
        return Err(crate::rooms::archived());
    }
    let at = app.clock().now_ms();
    let already = participant.hand_raised_at.is_some();
    // Raising twice keeps the original place in the queue.
    if !(raised && already) {
        app.store().set_hand(&room.id, &participant.id, raised.then_some(at)).await?;
    }
    broadcast_hand(app, room, participant, raised, at).await;
    publish_hands(app, room).await;
    hands(app, room).await
}

async fn broadcast_hand(app: &App, room: &RoomRecord, participant: &ParticipantRecord, raised: bool, at: i64) {
    let payload = serde_json::json!({
        "identity": participant.identity,
        "name": participant.display_name,
        "raised": raised,
        "at": crate::time::to_datetime(at),
    });
    if let Err(err) = app.livekit().send_data(&livekit::room_name(&room.lecture_id), "hand-raise", &payload).await {
        tracing::warn!(error = %err, "could not broadcast a hand raise; hosts still see it in the queue");
    }
}

async fn publish_hands(app: &App, room: &RoomRecord) {
    match hands(app, room).await {
        Ok(list) => app.hub().to_hosts(&room.id, HostEvent::Hands { hands: list }),
        Err(err) => tracing::warn!(error = %err, "could not load the hand queue"),
    }
}

/// Raised hands in the order they went up.
pub async fn hands(app: &App, room: &RoomRecord) -> Result<Vec<Hand>> {
    Ok(app
        .store()
        .raised_hands(&room.lecture_id)
        .await?
        .into_iter()
        .filter_map(|p| {
            p.hand_raised_at.map(|at| Hand {
                identity: p.identity,
                display_name: p.display_name,
                raised_at: crate::time::to_datetime(at),
            })
        })
        .collect())
}

/// What granting or revoking speaking rights did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionChange {
    pub identity: String,
    pub can_publish: bool,
    /// False when the participant is not connected right now (the decision still applies to their next token).
    pub applied_live: bool,
}

/// Lets a guest speak (which lowers their hand) or takes the right away again.
pub async fn set_can_publish(
    app: &App,
    room: &RoomRecord,
    identity: &str,
    can_publish: bool,
    actor: &Actor,
) -> Result<PermissionChange> {
    if room.status == RoomStatus::Archived {
        return Err(crate::rooms::archived());
    }
    let participant = guest_by_identity(app, room, identity).await?;
    if participant.admission != Admission::Approved || participant.removed_at.is_some() {
        return Err(Error::conflict("not_in_room", "this participant is not in the room"));
    }
    app.store().set_publish_granted(&room.id, &participant.id, can_publish).await?;
    let permission = livekit::permission(ParticipantRole::Guest, can_publish, room.guest_screen_share);
    let applied_live =
        app.livekit().update_permission(&livekit::room_name(&room.lecture_id), identity, permission).await?.is_some();
    if can_publish && participant.hand_raised_at.is_some() {
        broadcast_hand(app, room, &participant, false, app.clock().now_ms()).await;
        publish_hands(app, room).await;
    }
    let action = if can_publish { "moderation.grant_speak" } else { "moderation.revoke_speak" };
    audit::record(
        app,
        actor,
        action,
        Some(("participant", identity)),
        Some(&room.id),
        serde_json::json!({ "displayName": participant.display_name, "appliedLive": applied_live }),
    )
    .await;
    Ok(PermissionChange { identity: identity.to_owned(), can_publish, applied_live })
}
