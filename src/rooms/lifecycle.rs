//! A lecture's life: LiveKit webhooks, the host's "end lecture", and reconciliation with LiveKit's own
//! list of rooms, so a dropped webhook cannot leave a lecture LIVE forever. Each LiveKit room is one
//! lecture (named after the lecture's id), so a late webhook of last week's session never touches today's.

use std::collections::{HashMap, HashSet};

use livekit_protocol as proto;

use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::Result;
use crate::events::{self, AgentEvent, Decision, Decisions, HostEvent};
use crate::livekit;
use crate::store::{Admission, EndedLecture, LectureStatus, RoomRecord, RoomStatus, WebhookChange, WebhookOutcome};

/// Ends the room's current lecture for everyone: closes its LiveKit room, marks it ENDED, rejects everyone
/// still waiting and opens the room's next lecture (same invite link). If LiveKit cannot be reached the
/// lecture still ends here (no new tokens are issued for it) and reconciliation closes it at LiveKit later.
/// Returns whether LiveKit confirmed.
pub async fn end(app: &App, room: &RoomRecord, actor: &Actor) -> Result<bool> {
    let closed = match app.livekit().delete_room(&livekit::room_name(&room.lecture_id)).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(lecture = %room.lecture_id, error = %err, "ending the lecture here; LiveKit will be told on reconciliation");
            false
        }
    };
    events::atomically(app, async {
        let ended = app.store().end_lecture(&room.lecture_id, app.clock().now_ms()).await?;
        announce_end(app, room, &ended).await;
        audit::record(
            app,
            actor,
            "lecture.end",
            Some(("lecture", &room.lecture_id)),
            Some(&room.id),
            serde_json::json!({ "livekitClosed": closed, "rejectedWaiting": ended.rejected_entries.len() }),
        )
        .await;
        Ok(())
    })
    .await?;
    Ok(closed)
}

/// Tells hosts and assistants that a room's lecture is now LIVE.
pub(crate) async fn announce_live(app: &App, room_id: &str) {
    app.hub().to_hosts(room_id, HostEvent::RoomStatus { status: RoomStatus::Live });
    match app.store().room_by_id(room_id).await {
        Ok(room) if room.ai_assistant => app.hub().to_agents(AgentEvent::LectureLive { room_id: room.id }),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot tell assistants about a live lecture"),
    }
}

/// `room` as it was while the lecture ran: its `lecture_id` is the lecture that ended.
async fn announce_end(app: &App, room: &RoomRecord, ended: &EndedLecture) {
    if ended.newly_ended {
        if room.ai_assistant && app.store().lecture_by_id(&room.lecture_id).await.is_ok_and(|l| l.started_at.is_some())
        {
            // Until the assistant writes the artifact, the lecture page says the summary is being written.
            // Recorded before the assistant hears of the end, so its artifact cannot be overtaken.
            if let Err(err) = app.store().expect_summary(&room.lecture_id, app.clock().now_ms()).await {
                tracing::warn!(error = %err, "cannot mark the summary as being written");
            }
        }
        app.hub().to_hosts(&room.id, HostEvent::LectureEnded { lecture_id: room.lecture_id.clone() });
        app.hub().to_agents(AgentEvent::LectureEnded { lecture_id: room.lecture_id.clone() });
    }
    let reason = "the lecture has ended".to_owned();
    let entries: HashMap<String, Decision> = ended
        .rejected_entries
        .iter()
        .map(|id| (id.clone(), Decision { status: Admission::Rejected, reason: Some(reason.clone()) }))
        .collect();
    app.hub().decided(&room.id, Decisions::new(entries));
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
    let Some(lecture_id) = livekit::lecture_id_of(room_name) else {
        return Ok(());
    };
    let at = event_time_ms(event);
    let info = event.participant.as_ref();
    let identity = info.map(|p| p.identity.as_str()).unwrap_or_default();
    let joined_at = info.filter(|p| p.joined_at > 0).map(|p| p.joined_at.saturating_mul(1000));
    let change = match event.event.as_str() {
        "room_started" => WebhookChange::RoomStarted { lecture_id, at },
        "room_finished" => WebhookChange::RoomFinished { lecture_id, at },
        "participant_joined" if !identity.is_empty() => WebhookChange::ParticipantJoined { lecture_id, identity, at },
        "participant_left" if !identity.is_empty() => {
            WebhookChange::ParticipantLeft { lecture_id, identity, joined_at, at }
        }
        _ => WebhookChange::Ignored,
    };
    let event_id =
        if event.id.is_empty() { format!("{}:{room_name}:{identity}:{at}", event.event) } else { event.id.clone() };
    let lecture = match app.store().lecture_by_id(lecture_id).await {
        Ok(lecture) => lecture,
        // A room deleted here but still known to LiveKit: nothing to record.
        Err(crate::Error::NotFound { .. }) => return Ok(()),
        Err(err) => return Err(err),
    };
    let room_id = lecture.room_id.as_str();
    let arrived = matches!(change, WebhookChange::ParticipantJoined { .. });
    // The event id is recorded (a unique key) in the same transaction as the change and its announcements:
    // of two replicas that receive the same delivery (LiveKit retries land anywhere), exactly one inserts it
    // and acts on the event — changes, announcements and calls to LiveKit alike; the other waits for that
    // transaction and hears "duplicate".
    let applied = events::atomically(app, async {
        let outcome = app.store().apply_webhook(&event_id, &event.event, change).await?;
        match &outcome {
            None => tracing::debug!(event_id, "duplicate webhook ignored"),
            Some(WebhookOutcome::LectureStarted(true)) => announce_live(app, room_id).await,
            Some(WebhookOutcome::LectureFinished(ended)) => {
                let mut room = app.store().room_by_id(room_id).await?;
                room.lecture_id = lecture.id.clone();
                announce_end(app, &room, ended).await;
                if ended.newly_ended {
                    audit::record(
                        app,
                        &Actor::system(),
                        "lecture.finished",
                        Some(("lecture", lecture_id)),
                        Some(room_id),
                        serde_json::json!({ "source": "livekit" }),
                    )
                    .await;
                }
            }
            Some(_) => {
                let kind = event.event.as_str();
                if matches!(kind, "participant_joined" | "participant_left") && !identity.is_empty() {
                    app.hub().to_admins(
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
        Ok(outcome.is_some())
    })
    .await?;
    // LiveKit is called once the change is committed (its rows stay locked until then).
    if arrived && applied {
        remove_if_removed(app, room_id, lecture_id, identity).await;
    }
    Ok(())
}

/// A kicked or banned participant who reached the room anyway (a token issued just before the removal) is
/// removed again on arrival.
async fn remove_if_removed(app: &App, room_id: &str, lecture_id: &str, identity: &str) {
    let removed = match app.store().participant_by_identity(lecture_id, identity).await {
        Ok(Some(p)) => p.removed_at.is_some(),
        Ok(None) => false,
        Err(err) => {
            tracing::warn!(error = %err, "cannot check an arriving participant");
            false
        }
    };
    if removed && app.livekit().remove_participant(&livekit::room_name(lecture_id), identity).await.is_ok() {
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

/// Reconciliation state: since when each LIVE lecture has been missing from LiveKit. A lecture is ended
/// only after it has been missing for the whole grace period, so a media server that restarts in the middle
/// of a lecture does not end it.
#[derive(Debug, Default)]
pub struct Reconciler {
    absent_since: HashMap<String, i64>,
}

/// What one reconciliation pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// OPEN lectures LiveKit has open, now LIVE.
    pub activated: usize,
    /// LIVE lectures missing from LiveKit past the grace period, now ENDED.
    pub ended: usize,
    /// Lectures ENDED here (or deleted) that LiveKit still had open, now closed there.
    pub closed: usize,
    /// Stays in a live lecture whose `participant_left` was lost, now closed.
    pub stays_closed: u64,
}

impl Reconciler {
    /// One pass: compares confctl's lectures with LiveKit's list and repairs what lost webhooks left behind.
    pub async fn pass(&mut self, app: &App) -> Result<Reconciled> {
        let live = app.livekit().list_rooms().await?;
        reconcile_lectures(app, &live, &mut self.absent_since).await
    }
}

async fn reconcile_lectures(
    app: &App,
    live: &[proto::Room],
    absent_since: &mut HashMap<String, i64>,
) -> Result<Reconciled> {
    let live_ids: HashSet<&str> = live.iter().filter_map(|r| livekit::lecture_id_of(&r.name)).collect();
    let now = app.clock().now_ms();
    let grace = i64::try_from(app.config().livekit.empty_room_grace.as_millis()).unwrap_or(i64::MAX / 2);
    let mut done = Reconciled::default();

    for room in app.store().rooms_by_lecture_state(false).await? {
        if !live_ids.contains(room.lecture_id.as_str()) {
            continue;
        }
        let activated = events::atomically(app, async {
            let activated = app.store().mark_lecture_live(&room.lecture_id, now).await?;
            if activated {
                announce_live(app, &room.id).await;
            }
            Ok(activated)
        })
        .await?;
        done.activated += usize::from(activated);
    }
    let active = app.store().rooms_by_lecture_state(true).await?;
    absent_since.retain(|id, _| active.iter().any(|r| &r.lecture_id == id) && !live_ids.contains(id.as_str()));
    for room in active {
        if live_ids.contains(room.lecture_id.as_str()) {
            done.stays_closed += close_lost_stays(app, &room.lecture_id, now).await;
            continue;
        }
        let since = *absent_since.entry(room.lecture_id.clone()).or_insert(now);
        if now - since > grace {
            absent_since.remove(&room.lecture_id);
            events::atomically(app, async {
                let result = app.store().end_lecture(&room.lecture_id, now).await?;
                announce_end(app, &room, &result).await;
                audit::record(
                    app,
                    &Actor::system(),
                    "lecture.finished",
                    Some(("lecture", &room.lecture_id)),
                    Some(&room.id),
                    serde_json::json!({ "source": "reconciliation" }),
                )
                .await;
                Ok(())
            })
            .await?;
            done.ended += 1;
        }
    }
    // Lectures that ended here while LiveKit was unreachable are closed there now.
    for name in live.iter().map(|r| r.name.as_str()) {
        let Some(id) = livekit::lecture_id_of(name) else { continue };
        let ended_here = match app.store().lecture_by_id(id).await {
            Ok(lecture) => lecture.status == LectureStatus::Ended,
            Err(crate::Error::NotFound { .. }) => true,
            Err(err) => return Err(err),
        };
        if ended_here && app.livekit().delete_room(name).await.is_ok() {
            done.closed += 1;
        }
    }
    Ok(done)
}

/// Attendance must not count someone as present for the rest of a lecture because LiveKit's
/// `participant_left` never arrived: stays of people LiveKit no longer lists end now.
async fn close_lost_stays(app: &App, lecture_id: &str, now: i64) -> u64 {
    let present = match app.livekit().list_participants(&livekit::room_name(lecture_id)).await {
        Ok(list) => list.into_iter().map(|p| p.identity).collect::<Vec<_>>(),
        Err(_) => return 0,
    };
    app.store().close_stays_except(lecture_id, &present, now).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "cannot close lost attendance stays");
        0
    })
}

/// Reconciles every `livekit.reconcile_interval` while this replica leads (see `replicas`), and at once when
/// it starts leading (at start-up on SQLite, where it always leads), until shutdown.
pub async fn reconcile_forever(app: App) {
    let mut turns = crate::replicas::LeaderTicks::new(&app, app.config().livekit.reconcile_interval);
    let mut reconciler = Reconciler::default();
    let mut warned = false;
    while let Some(turn) = turns.next().await {
        if turn.fresh {
            // Since when lectures have been missing was last seen before another replica took over; counted
            // again from now, so a lecture is never ended sooner than the grace period allows.
            reconciler = Reconciler::default();
        }
        match reconciler.pass(&app).await {
            Ok(done) => {
                warned = false;
                if done != Reconciled::default() {
                    tracing::info!(
                        activated = done.activated,
                        ended = done.ended,
                        closed_at_livekit = done.closed,
                        stays_closed = done.stays_closed,
                        "reconciled lectures with LiveKit"
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
