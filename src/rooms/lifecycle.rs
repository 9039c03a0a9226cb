//! A room's life after creation: LiveKit webhooks, the host's "end lecture", and reconciliation with
//! LiveKit's own list of rooms, so a dropped webhook cannot leave a room ACTIVE forever.

use std::collections::{HashMap, HashSet};

use livekit_protocol as proto;

use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::Result;
use crate::events::{AgentEvent, Decision, Decisions, HostEvent};
use crate::livekit;
use crate::store::{Admission, EndedRoom, RoomRecord, RoomStatus, WebhookChange, WebhookOutcome};

/// Ends a lecture for everyone: closes the LiveKit room, marks the room ENDED and rejects everyone still
/// waiting. If LiveKit cannot be reached the room still ends here (no new tokens are issued) and
/// reconciliation closes it at LiveKit later. Returns whether LiveKit confirmed.
pub async fn end(app: &App, room: &RoomRecord, actor: &Actor) -> Result<bool> {
    let closed = match app.livekit().delete_room(&livekit::room_name(&room.id)).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(room = %room.id, error = %err, "ending the room here; LiveKit will be told on reconciliation");
            false
        }
    };
    let ended = app.store().end_room(&room.id, app.clock().now_ms()).await?;
    announce_end(app, room, &ended).await;
    audit::record(
        app,
        actor,
        "room.end",
        Some(("room", &room.id)),
        Some(&room.id),
        serde_json::json!({ "livekitClosed": closed, "rejectedWaiting": ended.rejected_entries.len() }),
    )
    .await;
    Ok(closed)
}

/// Tells hosts and assistants that a room is now ACTIVE.
pub(crate) async fn announce_active(app: &App, room_id: &str) {
    app.hub().to_hosts(room_id, HostEvent::RoomStatus { status: RoomStatus::Active });
    match app.store().room_by_id(room_id).await {
        Ok(room) if room.ai_assistant => app.hub().to_agents(AgentEvent::RoomActive(Box::new(room))),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot tell assistants about an active room"),
    }
}

async fn announce_end(app: &App, room: &RoomRecord, ended: &EndedRoom) {
    if ended.newly_ended {
        app.hub().to_hosts(&room.id, HostEvent::RoomStatus { status: RoomStatus::Ended });
        app.hub().to_agents(AgentEvent::RoomEnded { room_id: room.id.clone() });
    }
    let reason = "the lecture has ended".to_owned();
    let entries: HashMap<String, Decision> = ended
        .rejected_entries
        .iter()
        .map(|id| (id.clone(), Decision { status: Admission::Rejected, reason: Some(reason.clone()) }))
        .collect();
    let mut snapshot = room.clone();
    snapshot.status = RoomStatus::Ended;
    app.hub().decided(Decisions { room: snapshot, entries });
}

fn event_time_ms(event: &proto::WebhookEvent) -> i64 {
    if event.created_at > 0 { event.created_at.saturating_mul(1000) } else { crate::time::now_ms() }
}

/// A webhook as LiveKit delivers it: the signature (`Authorization`) is checked over the raw body before
/// anything is applied (401 on any mismatch).
pub async fn receive_webhook(app: &App, body: &[u8], authorization: &str) -> Result<()> {
    let text = std::str::from_utf8(body)
        .map_err(|_| crate::Error::unauthenticated("invalid_webhook", "webhook body is not UTF-8"))?;
    let event = app.livekit().verify_webhook(text, authorization)?;
    apply_webhook(app, &event).await
}

/// Applies a verified LiveKit webhook. Unknown events and rooms that are not ours are ignored; a repeated
/// event id changes nothing.
async fn apply_webhook(app: &App, event: &proto::WebhookEvent) -> Result<()> {
    let room_name = event.room.as_ref().map(|r| r.name.as_str()).unwrap_or_default();
    let Some(room_id) = livekit::room_id_of(room_name) else {
        return Ok(());
    };
    let at = event_time_ms(event);
    let identity = event.participant.as_ref().map(|p| p.identity.as_str()).unwrap_or_default();
    let change = match event.event.as_str() {
        "room_started" => WebhookChange::RoomStarted { room_id, at },
        "room_finished" => WebhookChange::RoomFinished { room_id, at },
        "participant_joined" if !identity.is_empty() => WebhookChange::ParticipantJoined { room_id, identity, at },
        "participant_left" if !identity.is_empty() => WebhookChange::ParticipantLeft { room_id, identity, at },
        _ => WebhookChange::Ignored,
    };
    let event_id =
        if event.id.is_empty() { format!("{}:{room_name}:{identity}:{at}", event.event) } else { event.id.clone() };
    let room = match app.store().room_by_id(room_id).await {
        Ok(room) => room,
        // A room deleted here but still known to LiveKit: nothing to record.
        Err(crate::Error::NotFound { .. }) => return Ok(()),
        Err(err) => return Err(err),
    };
    if let WebhookChange::ParticipantJoined { identity, .. } = change {
        remove_if_removed(app, room_id, identity).await;
    }
    match app.store().apply_webhook(&event_id, &event.event, change).await? {
        None => tracing::debug!(event_id, "duplicate webhook ignored"),
        Some(WebhookOutcome::RoomStarted(true)) => announce_active(app, room_id).await,
        Some(WebhookOutcome::RoomFinished(ended)) => {
            announce_end(app, &room, &ended).await;
            if ended.newly_ended {
                audit::record(
                    app,
                    &Actor::system(),
                    "room.finished",
                    Some(("room", room_id)),
                    Some(room_id),
                    serde_json::json!({ "source": "livekit" }),
                )
                .await;
            }
        }
        Some(_) => {
            let kind = event.event.as_str();
            if matches!(kind, "participant_joined" | "participant_left") && !identity.is_empty() {
                let info = event.participant.as_ref();
                app.hub().admin().publish(
                    kind,
                    Some(room_id),
                    serde_json::json!({
                        "identity": identity,
                        "name": info.map(|p| p.name.as_str()).unwrap_or_default(),
                        "role": info.and_then(livekit::role_of),
                    }),
                );
            }
        }
    }
    Ok(())
}

/// A kicked or banned participant who reached the room anyway (a token issued just before the removal) is
/// removed again on arrival.
async fn remove_if_removed(app: &App, room_id: &str, identity: &str) {
    let removed = match app.store().participant_by_identity(room_id, identity).await {
        Ok(Some(p)) => p.removed_at.is_some(),
        Ok(None) => false,
        Err(err) => {
            tracing::warn!(error = %err, "cannot check an arriving participant");
            false
        }
    };
    if removed && app.livekit().remove_participant(&livekit::room_name(room_id), identity).await.is_ok() {
        audit::record(
            app,
            &Actor::system(),
            "moderation.removed_again",
            Some(("participant", identity)),
            Some(room_id),
            serde_json::json!({}),
        )
        .await;
    }
}

/// One reconciliation pass; returns (activated, ended, closed at LiveKit).
/// Reconciliation state: since when each ACTIVE room has been missing from LiveKit. A room is ended only
/// after it has been missing for the whole grace period, so a media server that restarts in the middle of
/// a lecture does not end it.
#[derive(Debug, Default)]
pub struct Reconciler {
    absent_since: HashMap<String, i64>,
}

/// What one reconciliation pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// CREATED rooms LiveKit has open, now ACTIVE.
    pub activated: usize,
    /// ACTIVE rooms missing from LiveKit past the grace period, now ENDED.
    pub ended: usize,
    /// Rooms ENDED here (or deleted) that LiveKit still had open, now closed there.
    pub closed: usize,
}

impl Reconciler {
    /// One pass: compares confctl's rooms with LiveKit's list and repairs what lost webhooks left behind.
    pub async fn pass(&mut self, app: &App) -> Result<Reconciled> {
        let live = app.livekit().list_rooms().await?;
        reconcile_rooms(app, &live, &mut self.absent_since).await
    }
}

async fn reconcile_rooms(
    app: &App,
    live: &[proto::Room],
    absent_since: &mut HashMap<String, i64>,
) -> Result<Reconciled> {
    let live_ids: HashSet<&str> = live.iter().filter_map(|r| livekit::room_id_of(&r.name)).collect();
    let now = app.clock().now_ms();
    let grace = i64::try_from(app.config().livekit.empty_room_grace.as_millis()).unwrap_or(i64::MAX / 2);
    let mut done = Reconciled::default();

    for room in app.store().rooms_with_status(RoomStatus::Created).await? {
        if live_ids.contains(room.id.as_str()) && app.store().mark_room_active(&room.id, now).await? {
            announce_active(app, &room.id).await;
            done.activated += 1;
        }
    }
    let active = app.store().rooms_with_status(RoomStatus::Active).await?;
    absent_since.retain(|id, _| active.iter().any(|r| &r.id == id) && !live_ids.contains(id.as_str()));
    for room in active {
        if live_ids.contains(room.id.as_str()) {
            continue;
        }
        let since = *absent_since.entry(room.id.clone()).or_insert(now);
        if now - since > grace {
            absent_since.remove(&room.id);
            let result = app.store().end_room(&room.id, now).await?;
            announce_end(app, &room, &result).await;
            audit::record(
                app,
                &Actor::system(),
                "room.finished",
                Some(("room", &room.id)),
                Some(&room.id),
                serde_json::json!({ "source": "reconciliation" }),
            )
            .await;
            done.ended += 1;
        }
    }
    // Rooms that ended here while LiveKit was unreachable are closed there now.
    for name in live.iter().map(|r| r.name.as_str()) {
        let Some(id) = livekit::room_id_of(name) else { continue };
        let ended_here = match app.store().room_by_id(id).await {
            Ok(room) => room.status == RoomStatus::Ended,
            Err(crate::Error::NotFound { .. }) => true,
            Err(err) => return Err(err),
        };
        if ended_here && app.livekit().delete_room(name).await.is_ok() {
            done.closed += 1;
        }
    }
    Ok(done)
}

/// Reconciles at start-up and then every `livekit.reconcile_interval` until shutdown.
pub async fn reconcile_forever(app: App) {
    let mut tick = tokio::time::interval(app.config().livekit.reconcile_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reconciler = Reconciler::default();
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.shutting_down() => return,
        }
        match reconciler.pass(&app).await {
            Ok(done) => {
                warned = false;
                if done != Reconciled::default() {
                    tracing::info!(
                        activated = done.activated,
                        ended = done.ended,
                        closed_at_livekit = done.closed,
                        "reconciled rooms with LiveKit"
                    );
                }
            }
            // Said once per outage, not every interval.
            Err(err) if !warned => {
                warned = true;
                tracing::warn!(error = %err, "cannot reconcile rooms with LiveKit; will keep trying");
            }
            Err(_) => {}
        }
    }
}
