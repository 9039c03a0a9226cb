//! confctl against the real LiveKit server (livekit-server, built by scripts/livekit-server), with real
//! WebRTC participants (LiveKit's Python real-time SDK): rooms opened, listed and closed through the server
//! API, participants listed, data delivered, and the server's own signed webhooks driving the lecture's
//! lifecycle and attendance; reconciliation after webhooks that never arrived; moderation as the SFU
//! carries it out. LiveKit's own server API client is the judge of what the server holds.

use std::time::Duration;

use livekit_protocol::TrackType;
use serde_json::{Value, json};

use crate::support::livekit::{PATIENCE, Participant, WithRealLiveKit};
use crate::support::{self, Browser, Db, Service, error_code};

/// A lecture on the real server: the host signed in, the room created.
struct Lecture {
    w: WithRealLiveKit,
    host: Browser,
    id: String,
    /// Every join presents the room's invite code, as the invite link does.
    invite_code: String,
}

/// A guest admitted through the lobby, with their LiveKit token.
struct Admitted {
    identity: String,
    token: String,
}

impl Lecture {
    async fn new(db: Db, settings: Value, overrides: &[(&str, &str)]) -> Self {
        let w = WithRealLiveKit::spawn(db, overrides).await;
        let host = w.t.client();
        host.register("ada@uni.edu", "Ada").await;
        let (s, room) = host.post("/api/rooms", settings).await;
        assert_eq!(s, 201, "{room}");
        let id = room["id"].as_str().unwrap().to_owned();
        let invite_code = room["inviteCode"].as_str().unwrap().to_owned();
        Self { w, host, id, invite_code }
    }

    fn lk_room(&self) -> String {
        format!("confctl-{}", self.id)
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/rooms/{}{rest}", self.id)
    }

    async fn status(&self) -> String {
        self.host.get(&self.path("")).await.1["status"].as_str().unwrap().to_owned()
    }

    /// Waits until confctl's room reaches `status` (driven by webhooks or reconciliation).
    async fn wait_status(&self, status: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if self.status().await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("room never became {status} (is {}); LiveKit log:\n{}", self.status().await, self.w.lk.log());
    }

    /// The host's token from confctl and the host in the room as a real participant.
    async fn host_joins(&self, args: &[&str]) -> (Participant, String) {
        let (s, token) = self.host.post(&self.path("/token"), json!({})).await;
        assert_eq!(s, 200, "{token}");
        let url = token["livekitUrl"].as_str().unwrap();
        assert_eq!(url, self.w.lk.ws_url, "browsers are sent to the configured server");
        let p = Participant::join("host", url, token["token"].as_str().unwrap(), args).await;
        (p, token["identity"].as_str().unwrap().to_owned())
    }

    /// A guest joins through the lobby and the host approves; returns their token (not yet used).
    async fn admit(&self, name: &str) -> Admitted {
        let browser = self.w.t.client();
        let fingerprint = format!("fp-{name}-0123456789abcdef");
        let (s, joined) = browser
            .post(
                &self.path("/join"),
                json!({"displayName": name, "sessionFingerprint": fingerprint, "inviteCode": self.invite_code}),
            )
            .await;
        assert_eq!((s, joined["status"].as_str()), (201, Some("PENDING")), "{joined}");
        let session = joined["sessionId"].as_str().unwrap().to_owned();
        let (_, lobby) = self.host.get(&self.path("/lobby")).await;
        let entry = lobby["entries"].as_array().unwrap().iter().find(|e| e["displayName"] == name).unwrap();
        let (s, _) =
            self.host.post(&self.path(&format!("/lobby/{}/approve", entry["id"].as_str().unwrap())), json!({})).await;
        assert_eq!(s, 200);
        let (s, token) = self.as_guest(&browser, &session, "/guest-token").await;
        assert_eq!(s, 200, "{token}");
        let identity = support::jwt_claims(token["token"].as_str().unwrap())["sub"].as_str().unwrap().to_owned();
        Admitted { identity, token: token["token"].as_str().unwrap().to_owned() }
    }

    async fn as_guest(&self, browser: &Browser, session: &str, rest: &str) -> (u16, Value) {
        let r = browser
            .http
            .post(format!("{}{}", self.w.t.base, self.path(rest)))
            .header("x-confctl-session", session)
            .send()
            .await
            .unwrap();
        support::read(r).await
    }

    async fn guest_joins(&self, g: &Admitted, args: &[&str]) -> Participant {
        Participant::join(&g.identity, &self.w.lk.ws_url, &g.token, args).await
    }

    /// Waits until confctl's attendance record of `identity` satisfies `check`.
    async fn wait_attendance(
        &self,
        identity: &str,
        what: &str,
        check: impl Fn(&confctl::store::ParticipantRecord) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some(rec) = self.w.t.app.store().participant_by_identity(&self.id, identity).await.unwrap() {
                if check(&rec) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("attendance of {identity} never {what}");
    }
}

fn has_track(p: &livekit_protocol::ParticipantInfo, kind: TrackType) -> bool {
    p.tracks.iter().any(|t| t.r#type == kind as i32 && !t.muted)
}

async fn room_service_and_webhooks_drive_the_lecture(db: Db) {
    let l = Lecture::new(db, json!({"name": "Photosynthesis"}), &[]).await;
    let lk = l.w.lk.rooms();
    assert_eq!(l.status().await, "CREATED");

    // The host's token opens the room at LiveKit ahead of anyone joining, with lecture-length timeouts.
    let (mut host, host_id) = l.host_joins(&["--audio", "tone", "--video"]).await;
    let open = lk.list_rooms(vec![l.lk_room()]).await.unwrap();
    assert_eq!(open.len(), 1, "CreateRoom reached the server");
    assert!(open[0].empty_timeout >= 600 && open[0].departure_timeout >= 600, "{:?}", open[0]);
    // room_started (signed by the real server) makes the lecture ACTIVE.
    l.wait_status("ACTIVE").await;
    l.w.lk
        .wait_participant(&l.lk_room(), &host_id, "publishing audio and video", |p| {
            has_track(p, TrackType::Audio) && has_track(p, TrackType::Video)
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
    assert_eq!(l.status().await, "ENDED");
    let (s, body) = l.host.post(&l.path("/token"), json!({})).await;
    assert_eq!((s, error_code(&body)), (410, "room_ended"));
}

async fn a_room_livekit_closes_ends_the_lecture(db: Db) {
    let l = Lecture::new(db, json!({"name": "Closed by the media server"}), &[]).await;
    let (mut host, _) = l.host_joins(&["--audio", "tone"]).await;
    l.wait_status("ACTIVE").await;
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
    l.wait_status("ENDED").await;
    let (s, body) = l.as_guest(&waiting, queued["sessionId"].as_str().unwrap(), "/guest-token").await;
    assert_eq!((s, error_code(&body)), (410, "room_ended"), "the waiting guest was turned away");
    let audit =
        l.w.t
            .app
            .store()
            .list_audit(&confctl::store::AuditFilter {
                room_id: Some(l.id.clone()),
                action: Some("room.finished".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
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
    l.wait_status("ACTIVE").await;
    let (id, host_browser, invite_code) = (l.id.clone(), l.host.clone(), l.invite_code.clone());

    let (lk, data_dir, config) = l.w.stop_confctl().await;
    host.leave().await;
    lk.rooms().delete_room(&format!("confctl-{id}")).await.unwrap();
    // LiveKit retries a failed delivery for a while (~15 s), then gives up: only then is it lost.
    lk.wait_log(&["failed to send webhook", "room_finished"]).await;
    let w = WithRealLiveKit::resume(lk, data_dir, config).await;
    let host_browser = Browser { base: w.t.base.clone(), ..host_browser };
    let l = Lecture { w, host: host_browser, id, invite_code };
    assert_eq!(l.status().await, "ACTIVE", "the webhook never arrived");
    l.wait_status("ENDED").await;
    let audit =
        l.w.t
            .app
            .store()
            .list_audit(&confctl::store::AuditFilter {
                room_id: Some(l.id.clone()),
                action: Some("room.finished".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
    assert!(format!("{audit:?}").contains("reconciliation"), "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_room_service_and_webhooks_drive_the_lecture() {
    if !support::require(&[Service::LiveKit]) {
        return;
    }
    room_service_and_webhooks_drive_the_lecture(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_room_service_and_webhooks_drive_the_lecture() {
    if !support::require(&[Service::LiveKit, Service::Postgres]) {
        return;
    }
    room_service_and_webhooks_drive_the_lecture(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_room_livekit_closes_ends_the_lecture() {
    if !support::require(&[Service::LiveKit]) {
        return;
    }
    a_room_livekit_closes_ends_the_lecture(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reconciliation_repairs_a_webhook_lost_while_confctl_was_down() {
    if !support::require(&[Service::LiveKit, Service::Postgres]) {
        return;
    }
    reconciliation_repairs_a_webhook_lost_while_confctl_was_down(Db::Postgres).await;
}
