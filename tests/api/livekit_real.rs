//! confctl against the real LiveKit server (livekit-server, built by scripts/livekit-server), with real
//! WebRTC participants (LiveKit's Python real-time SDK): rooms opened, listed and closed through the server
//! API, participants listed, data delivered, and the server's own signed webhooks driving the lecture's
//! lifecycle and attendance; reconciliation after webhooks that never arrived; moderation as the SFU
//! carries it out. LiveKit's own server API client is the judge of what the server holds.

use std::time::Duration;

use livekit_protocol::TrackType;
use serde_json::{Value, json};

use crate::support::livekit::{Lecture, WithRealLiveKit, publishing};
use crate::support::{self, Browser, Db, Service, error_code};

async fn room_service_and_webhooks_drive_the_lecture(db: Db) {
    let l = Lecture::new(db, json!({"name": "Photosynthesis"}), &[]).await;
    let lk = l.w.lk.rooms();
    assert_eq!(l.status().await, "READY");

    // The host's token opens the room at LiveKit ahead of anyone joining, with lecture-length timeouts.
    let (mut host, host_id) = l.host_joins(&["--audio", "tone", "--video"]).await;
    let open = lk.list_rooms(vec![l.lk_room()]).await.unwrap();
    assert_eq!(open.len(), 1, "CreateRoom reached the server");
    assert!(open[0].empty_timeout >= 600 && open[0].departure_timeout >= 600, "{:?}", open[0]);
    // room_started (signed by the real server) makes the lecture LIVE.
    l.wait_status("LIVE").await;
    l.w.lk
        .wait_participant(&l.lk_room(), &host_id, "publishing audio and video", |p| {
            publishing(p, TrackType::Audio) && publishing(p, TrackType::Video)
        })
        .await;
    l.wait_attendance(&host_id, "recorded the host's arrival", |r| r.joined_at.is_some()).await;

    let ann = l.admit("Ann").await;
    let mut ann_p = l.guest_joins(&ann, &["--audio", "tone"]).await;
    l.wait_attendance(&ann.identity, "recorded Ann's arrival", |r| r.joined_at.is_some()).await;
    // Ann's client receives the host's published media from the SFU.
    let sub = ann_p
        .wait_for("the host's tracks", |e| e["event"] == "track_subscribed" && e["identity"] == host_id.as_str())
        .await;
    assert_eq!(sub["identity"], host_id.as_str());
    host.wait_for("Ann's arrival", |e| e["event"] == "participant_connected" && e["identity"] == ann.identity.as_str())
        .await;

    // confctl's participant list is LiveKit's, with the roles from confctl's tokens.
    let (s, list) = l.host.get(&l.path("/participants")).await;
    assert_eq!(s, 200, "{list}");
    let roles: Vec<(String, String)> = list["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["identity"].as_str().unwrap().to_owned(), p["role"].as_str().unwrap_or("?").to_owned()))
        .collect();
    assert!(roles.contains(&(host_id.clone(), "host".into())), "{list}");
    assert!(roles.contains(&(ann.identity.clone(), "guest".into())), "{list}");

    // Chat goes out through the server's SendData and reaches the real clients.
    let (s, msg) = l.host.post(&l.path("/chat"), json!({"text": "Welcome to the lecture"})).await;
    assert_eq!(s, 201, "{msg}");
    for p in [&mut ann_p, &mut host] {
        let data = p.wait_for("the chat message", |e| e["event"] == "data" && e["topic"] == "chat").await;
        assert_eq!(data["fromServer"], true);
        let payload: Value = serde_json::from_str(data["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["text"], "Welcome to the lecture", "{payload}");
    }

    // participant_left closes Ann's visit.
    ann_p.leave().await;
    l.wait_attendance(&ann.identity, "recorded Ann's departure", |r| r.left_at.is_some()).await;
    l.w.lk.wait_gone(&l.lk_room(), &ann.identity).await;

    // Ending the lecture deletes the room at LiveKit, which disconnects the host.
    let (s, ended) = l.host.post(&l.path("/end"), json!({})).await;
    assert_eq!((s, ended["livekitClosed"].as_bool()), (200, Some(true)), "{ended}");
    let gone = host.next_of(&["disconnected"]).await;
    assert_eq!(gone["event"], "disconnected");
    assert!(lk.list_rooms(vec![l.lk_room()]).await.unwrap().is_empty(), "the room is gone at LiveKit");
    assert_eq!((l.status().await.as_str(), l.lecture_status().await.as_str()), ("READY", "ENDED"));
    // The next lecture has a LiveKit room of its own: the ended one's is never reopened.
    let (s, body) = l.host.post(&l.path("/token"), json!({})).await;
    assert_eq!(s, 200, "{body}");
    assert_ne!(support::jwt_claims(body["token"].as_str().unwrap())["video"]["room"], l.lk_room().as_str());
}

async fn a_room_livekit_closes_ends_the_lecture(db: Db) {
    let l = Lecture::new(db, json!({"name": "Closed by the media server"}), &[]).await;
    let (mut host, _) = l.host_joins(&["--audio", "tone"]).await;
    l.wait_status("LIVE").await;
    let waiting = l.w.t.client();
    let (_, queued) = waiting
        .post(
            &l.path("/join"),
            json!({"displayName": "Late", "sessionFingerprint": "fp-late-000000000000", "inviteCode": l.invite_code}),
        )
        .await;
    assert_eq!(queued["status"], "PENDING");

    // An operator (or LiveKit itself) closes the room: room_finished ends the lecture in confctl.
    l.w.lk.rooms().delete_room(&l.lk_room()).await.unwrap();
    host.next_of(&["disconnected"]).await;
    l.wait_lecture_ended().await;
    let (s, body) = l.as_guest(&waiting, queued["sessionId"].as_str().unwrap(), "/guest-token").await;
    assert_eq!((s, error_code(&body)), (410, "room_ended"), "the waiting guest was turned away");
    let audit = support::audit_of(&l.w.t.app, Some(&l.id), "lecture.finished", 5).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(format!("{:?}", audit[0]).contains("livekit"), "ended by LiveKit's webhook: {audit:?}");
}

/// confctl is down while the room closes at LiveKit: the room_finished webhook is lost (LiveKit cannot
/// deliver it), and reconciliation at the next start ends the lecture after the grace period.
async fn reconciliation_repairs_a_webhook_lost_while_confctl_was_down(db: Db) {
    let l = Lecture::new(
        db,
        json!({"name": "Lost webhook"}),
        &[("livekit.empty_room_grace", "1s"), ("livekit.reconcile_interval", "1s")],
    )
    .await;
    let (host, _) = l.host_joins(&["--audio", "tone"]).await;
    l.wait_status("LIVE").await;
    let (id, lecture_id, host_browser, invite_code) =
        (l.id.clone(), l.lecture_id.clone(), l.host.clone(), l.invite_code.clone());

    let (lk, data_dir, config) = l.w.stop_confctl().await;
    host.leave().await;
    lk.rooms().delete_room(&confctl::livekit::room_name(&lecture_id)).await.unwrap();
    // LiveKit retries a failed delivery for a while (~15 s), then gives up: only then is it lost. It delivers
    // a room's webhooks one after another, so every event still queued for the stopped confctl (a track
    // published just before the stop, its unpublishing, the host leaving) costs its own ~15 s first.
    lk.wait_log(&["failed to send webhook", "room_finished"], Duration::from_secs(150)).await;
    let w = WithRealLiveKit::resume(lk, data_dir, config).await;
    let host_browser = Browser { base: w.t.base.clone(), ..host_browser };
    let l = Lecture { w, host: host_browser, id, lecture_id, invite_code };
    assert_eq!(l.status().await, "LIVE", "the webhook never arrived");
    l.wait_lecture_ended().await;
    let audit = support::audit_of(&l.w.t.app, Some(&l.id), "lecture.finished", 5).await;
    assert!(format!("{audit:?}").contains("reconciliation"), "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_room_service_and_webhooks_drive_the_lecture() {
    let Some(_turn) = support::media_turn_with(&[Service::LiveKit]).await else { return };
    room_service_and_webhooks_drive_the_lecture(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_room_service_and_webhooks_drive_the_lecture() {
    let Some(_turn) = support::media_turn_with(&[Service::LiveKit, Service::Postgres]).await else { return };
    room_service_and_webhooks_drive_the_lecture(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_room_livekit_closes_ends_the_lecture() {
    let Some(_turn) = support::media_turn_with(&[Service::LiveKit]).await else { return };
    a_room_livekit_closes_ends_the_lecture(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reconciliation_repairs_a_webhook_lost_while_confctl_was_down() {
    let Some(_turn) = support::media_turn_with(&[Service::LiveKit, Service::Postgres]).await else { return };
    reconciliation_repairs_a_webhook_lost_while_confctl_was_down(Db::Postgres).await;
}
