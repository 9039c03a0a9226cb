//! In-room control and chat over HTTP against the LiveKit double: kick, ban, panic mute, lock, hands and
//! speaking rights, chat, and the audit log — with the refusals — on SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::support::{self, Browser, Db, Sse, WithLiveKit, error_code, jwt_claims};

on_both_databases!(
    kick_removes_and_closes_the_session,
    ban_refuses_the_browser_everywhere_it_applies,
    bans_and_kicks_hold_in_confctl_when_livekit_fails,
    approvals_recheck_bans_that_raced_the_join,
    guests_arriving_together_are_each_checked,
    panic_mute_sends_whole_permission_objects,
    lock_keeps_people_inside_and_newcomers_out,
    hands_queue_and_speaking_rights,
    chat_is_saved_then_broadcast_and_members_only,
    audit_log_is_filtered_paged_and_scoped,
);

struct Room {
    w: WithLiveKit,
    host: Browser,
    id: String,
    /// The LiveKit room of the room's current lecture.
    lk_name: String,
}

impl Room {
    async fn new(db: Db, settings: Value) -> Self {
        Self::configured(db, settings, &[("rate_limits.chat_messages_per_minute", "5")]).await
    }

    async fn configured(db: Db, settings: Value, config: &[(&str, &str)]) -> Self {
        let w = WithLiveKit::spawn(db, config).await;
        let host = w.t.client();
        host.register("ada@uni.edu", "Ada").await;
        let (s, room) = host.post("/api/rooms", settings).await;
        assert_eq!(s, 201, "{room}");
        let id = room["id"].as_str().unwrap().to_owned();
        let lk_name = room["livekitRoomName"].as_str().unwrap().to_owned();
        w.lk.add_room(&lk_name);
        Self { w, host, id, lk_name }
    }

    fn lk_room(&self) -> String {
        self.lk_name.clone()
    }

    /// A guest who joined (and was let in unless `admit` is false), connected to the LiveKit double.
    async fn guest(&self, name: &str, admit: bool) -> Guest {
        let browser = self.w.t.client();
        let fingerprint = format!("fp-{name}-0123456789abcdef");
        let (s, joined) = browser
            .post(
                &format!("/api/rooms/{}/join", self.id),
                json!({"displayName": name, "sessionFingerprint": fingerprint, "inviteCode": self.w.t.invite_code(&self.id).await}),
            )
            .await;
        assert_eq!(s, 201, "{joined}");
        let session = joined["sessionId"].as_str().unwrap().to_owned();
        let record =
            self.w.t.app.store().participant_by_session(&confctl::ids::session_hash(&session)).await.unwrap().unwrap();
        if admit && joined["status"] == "PENDING" {
            let (s, _) =
                self.host.post(&format!("/api/rooms/{}/lobby/{}/approve", self.id, record.id), json!({})).await;
            assert_eq!(s, 200);
        }
        if admit {
            self.w.lk.add_participant(
                &self.lk_room(),
                &record.identity,
                name,
                r#"{"role":"guest"}"#,
                Some(confctl_doubles::default_join_permission()),
            );
        }
        Guest { browser, session, identity: record.identity, fingerprint }
    }

    async fn as_guest(&self, g: &Guest, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = g
            .browser
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.w.t.base))
            .header("x-confctl-session", &g.session);
        if let Some(body) = body {
            req = req.json(&body);
        }
        support::read(req.send().await.unwrap()).await
    }
}

struct Guest {
    browser: Browser,
    session: String,
    identity: String,
    fingerprint: String,
}

async fn kick_removes_and_closes_the_session(db: Db) {
    let r = Room::new(db, json!({"name": "Kick"})).await;
    let ann = r.guest("ann", true).await;
    let path = format!("/api/rooms/{}/participants/{}/kick", r.id, ann.identity);

    let (s, _) = r.as_guest(&ann, "POST", &path, None).await;
    assert_eq!(s, 401, "a guest cannot call host actions");
    let bob = r.w.t.client();
    bob.register("bob@uni.edu", "Bob").await;
    assert_eq!(bob.post(&path, json!({})).await.0, 404, "host B cannot moderate host A's room");
    assert!(r.w.lk.calls_for("RemoveParticipant").is_empty());

    let (s, removal) = r.host.post(&path, json!({})).await;
    assert_eq!(s, 200, "{removal}");
    assert_eq!(removal["disconnected"], true);
    let calls = r.w.lk.calls_for("RemoveParticipant");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].room.as_deref(), calls[0].identity.as_deref()),
        (Some(r.lk_room().as_str()), Some(ann.identity.as_str()))
    );
    assert!(calls[0].grants.room_admin && calls[0].grants.room == r.lk_room(), "roomAdmin scoped to this room");
    assert!(r.w.lk.participant(&r.lk_room(), &ann.identity).is_none());

    let (s, body) =
        r.as_guest(&ann, "POST", &format!("/api/rooms/{}/chat", r.id), Some(json!({"text": "I'm back"}))).await;
    assert_eq!((s, error_code(&body)), (403, "removed"), "chat by a kicked guest");
    let (s, body) = r.as_guest(&ann, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!((s, error_code(&body)), (403, "removed"), "no new token for the kicked session");

    let (s, body) = r.host.post(&format!("/api/rooms/{}/participants/nobody/kick", r.id), json!({})).await;
    assert_eq!((s, error_code(&body)), (404, "participant_not_found"));
    let (_, token) = r.host.post(&format!("/api/rooms/{}/token", r.id), json!({})).await;
    let (s, body) = r
        .host
        .post(&format!("/api/rooms/{}/participants/{}/kick", r.id, token["identity"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!((s, error_code(&body)), (403, "cannot_remove_host"));

    // A kicked guest who is no longer connected: still marked, LiveKit says not found, no error.
    let cy = r.guest("cy", true).await;
    r.w.lk.remove_participant(&r.lk_room(), &cy.identity);
    let (s, removal) = r.host.post(&format!("/api/rooms/{}/participants/{}/kick", r.id, cy.identity), json!({})).await;
    assert_eq!((s, removal["disconnected"].as_bool()), (200, Some(false)));
}

async fn ban_refuses_the_browser_everywhere_it_applies(db: Db) {
    let r = Room::new(db, json!({"name": "Ban"})).await;
    let troll = r.guest("troll", true).await;
    // The same browser is also waiting in the lobby under a second session.
    let (_, second) = troll
        .browser
        .post(
            &format!("/api/rooms/{}/join", r.id),
            json!({"displayName": "troll2", "sessionFingerprint": troll.fingerprint, "inviteCode": r.w.t.invite_code(&r.id).await}),
        )
        .await;
    let mut waiting = Sse::open(
        &troll.browser.http,
        &format!("{}/api/rooms/{}/lobby/stream?sessionId={}", r.w.t.base, r.id, second["sessionId"].as_str().unwrap()),
    )
    .await;
    assert_eq!(waiting.next().await.unwrap().1["status"], "PENDING");

    let (s, removal) = r
        .host
        .post(&format!("/api/rooms/{}/participants/{}/ban", r.id, troll.identity), json!({"reason": "spam"}))
        .await;
    assert_eq!(s, 201, "{removal}");
    let ban_id = removal["ban"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.w.lk.calls_for("RemoveParticipant")[0].identity.as_deref(), Some(troll.identity.as_str()));
    assert_eq!(
        waiting.next().await.unwrap().1["status"],
        "REJECTED",
        "the lobby entry of the banned browser is turned away"
    );

    let (s, list) = r.host.get(&format!("/api/rooms/{}/bans", r.id)).await;
    assert_eq!(s, 200);
    assert_eq!(list["bans"][0]["reason"], "spam");
    assert_eq!(list["bans"][0]["displayName"], "troll");
    assert!(!list.to_string().contains(&troll.fingerprint), "fingerprints stay server-side");

    let code = r.w.t.invite_code(&r.id).await;
    let join = |fp: String, session: Option<String>| {
        let mut req = troll
            .browser
            .http
            .post(format!("{}/api/rooms/{}/join", r.w.t.base, r.id))
            .json(&json!({"displayName": "innocent", "sessionFingerprint": fp, "inviteCode": code}));
        if let Some(s) = session {
            req = req.header("x-confctl-session", s);
        }
        async move { support::read(req.send().await.unwrap()).await }
    };
    let (s, body) = join(troll.fingerprint.clone(), None).await;
    assert_eq!((s, error_code(&body)), (403, "banned"), "same fingerprint, fresh session");
    assert!(body["error"]["message"].as_str().unwrap().contains("removed"));
    let (s, _) = join("fp-brand-new-browser-00".into(), Some(troll.session.clone())).await;
    assert_eq!(s, 403, "old session, new fingerprint");
    let (s, body) = r.as_guest(&troll, "GET", &format!("/api/rooms/{}/chat", r.id), None).await;
    assert_eq!((s, error_code(&body)), (403, "banned"));
    let (s, body) = r.as_guest(&troll, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!((s, error_code(&body)), (403, "banned"), "no token route works");

    // Lifting the ban lets the browser back in.
    let (s, _) = r.host.delete(&format!("/api/rooms/{}/bans/{ban_id}", r.id)).await;
    assert_eq!(s, 204);
    assert_eq!(join(troll.fingerprint.clone(), None).await.0, 201);
    assert_eq!(r.host.delete(&format!("/api/rooms/{}/bans/{ban_id}", r.id)).await.0, 404);

    // A host-wide ban covers the host's other rooms.
    let other = r.guest("other", true).await;
    let (s, _) = r
        .host
        .post(&format!("/api/rooms/{}/participants/{}/ban", r.id, other.identity), json!({"scope": "host"}))
        .await;
    assert_eq!(s, 201);
    let (_, room2) = r.host.post("/api/rooms", json!({"name": "Second lecture"})).await;
    let (s, body) = other
        .browser
        .post(
            &format!("/api/rooms/{}/join", room2["id"].as_str().unwrap()),
            json!({"displayName": "x", "sessionFingerprint": other.fingerprint, "inviteCode": room2["inviteCode"]}),
        )
        .await;
    assert_eq!((s, error_code(&body)), (403, "banned"));
    let (s, body) = r
        .host
        .post(&format!("/api/rooms/{}/participants/{}/ban", r.id, other.identity), json!({"scope": "galaxy"}))
        .await;
    assert_eq!(s, 400, "{body}");
}

async fn bans_and_kicks_hold_in_confctl_when_livekit_fails(db: Db) {
    let r = Room::new(db, json!({"name": "Outage"})).await;
    let troll = r.guest("troll", true).await;
    let code = r.w.t.invite_code(&r.id).await;
    // The same browser waits in the lobby in a second tab.
    let (_, tab2) = troll
        .browser
        .post(
            &format!("/api/rooms/{}/join", r.id),
            json!({"displayName": "troll2", "sessionFingerprint": troll.fingerprint, "inviteCode": code}),
        )
        .await;
    let tab2_session = tab2["sessionId"].as_str().unwrap().to_owned();
    let mut tab2_stream = Sse::open(
        &troll.browser.http,
        &format!("{}/api/rooms/{}/lobby/stream?sessionId={tab2_session}", r.w.t.base, r.id),
    )
    .await;
    assert_eq!(tab2_stream.next().await.unwrap().1["status"], "PENDING");
    let mut host_events = Sse::open(&r.host.http, &format!("{}/api/rooms/{}/events", r.w.t.base, r.id)).await;
    assert_eq!(host_events.next().await.unwrap().0, "lobby");

    r.w.lk.fail_method("RemoveParticipant", true);
    let (s, removal) = r
        .host
        .post(&format!("/api/rooms/{}/participants/{}/ban", r.id, troll.identity), json!({"reason": "spam"}))
        .await;
    assert_eq!(s, 201, "a LiveKit outage does not fail the ban: {removal}");
    assert_eq!((removal["pending"].as_bool(), removal["disconnected"].as_bool()), (Some(true), Some(false)));
    let text = removal.to_string();
    assert!(!text.contains("http://") && !text.contains("twirp"), "no internals reach the host: {text}");

    // confctl refuses the browser everywhere at once.
    let (_, decided) = tab2_stream.next().await.unwrap();
    assert_eq!((decided["status"].as_str(), decided.get("token")), (Some("REJECTED"), None), "{decided}");
    let (s, all) = r.host.post(&format!("/api/rooms/{}/lobby/approve-all", r.id), json!({})).await;
    assert_eq!((s, all["approved"].as_u64()), (200, Some(0)), "approve-all does not let the second tab in");
    for session in [&troll.session, &tab2_session] {
        let (s, body) = support::read(
            troll
                .browser
                .http
                .post(format!("{}/api/rooms/{}/guest-token", r.w.t.base, r.id))
                .header("x-confctl-session", session.as_str())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&body)), (403, "banned"), "no token for any session of the browser");
    }
    let mut again = Sse::open(
        &troll.browser.http,
        &format!("{}/api/rooms/{}/lobby/stream?sessionId={tab2_session}", r.w.t.base, r.id),
    )
    .await;
    let (_, status) = again.next().await.unwrap();
    assert_eq!(
        (status["status"].as_str(), status.get("token")),
        (Some("REJECTED"), None),
        "a new stream mints nothing"
    );

    // LiveKit comes back: the disconnect goes through in the background and the host hears of it.
    assert!(r.w.lk.participant(&r.lk_room(), &troll.identity).is_some(), "still connected during the outage");
    r.w.lk.fail_method("RemoveParticipant", false);
    let confirmed = loop {
        let (name, data) = host_events.next().await.unwrap();
        if name == "removal_confirmed" {
            break data;
        }
    };
    assert_eq!(
        (confirmed["identity"].as_str(), confirmed["disconnected"].as_bool()),
        (Some(troll.identity.as_str()), Some(true))
    );
    assert!(r.w.lk.participant(&r.lk_room(), &troll.identity).is_none(), "disconnected once LiveKit answered");

    // A kick during an outage is the same: refused here first, disconnect pending.
    let ann = r.guest("ann", true).await;
    r.w.lk.fail_method("RemoveParticipant", true);
    let (s, removal) = r.host.post(&format!("/api/rooms/{}/participants/{}/kick", r.id, ann.identity), json!({})).await;
    assert_eq!((s, removal["pending"].as_bool()), (200, Some(true)), "{removal}");
    let (s, body) = r.as_guest(&ann, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!((s, error_code(&body)), (403, "removed"));
    r.w.lk.fail_method("RemoveParticipant", false);
}

async fn approvals_recheck_bans_that_raced_the_join(db: Db) {
    let r = Room::new(db, json!({"name": "Race"})).await;
    let code = r.w.t.invite_code(&r.id).await;
    let g = r.w.t.client();
    let mut sessions = Vec::new();
    for (name, fp) in [("one", "fp-race-one-00000000"), ("two", "fp-race-two-00000000")] {
        let (s, j) = g
            .post(
                &format!("/api/rooms/{}/join", r.id),
                json!({"displayName": name, "sessionFingerprint": fp, "inviteCode": code}),
            )
            .await;
        assert_eq!((s, j["status"].as_str()), (201, Some("PENDING")));
        sessions.push(j["sessionId"].as_str().unwrap().to_owned());
    }
    // Bans written without the sweep that a ban through the API does: as if each raced its guest's join.
    let host_id = r.host.get("/api/auth/me").await.1["user"]["id"].as_str().unwrap().to_owned();
    for (i, fp) in ["fp-race-one-00000000", "fp-race-two-00000000"].iter().enumerate() {
        sqlx::query("INSERT INTO bans (id, room_id, host_id, fingerprint, created_at) VALUES ($1, $2, $3, $4, 0)")
            .bind(format!("race-{i}"))
            .bind(&r.id)
            .bind(&host_id)
            .bind(*fp)
            .execute(r.w.t.app.store().raw_pool_for_tests())
            .await
            .unwrap();
    }
    let (_, lobby) = r.host.get(&format!("/api/rooms/{}/lobby", r.id)).await;
    let first = lobby["entries"][0]["id"].as_str().unwrap().to_owned();
    let (s, body) = r.host.post(&format!("/api/rooms/{}/lobby/{first}/approve", r.id), json!({})).await;
    assert_eq!((s, error_code(&body)), (409, "guest_banned"), "{body}");
    let (s, all) = r.host.post(&format!("/api/rooms/{}/lobby/approve-all", r.id), json!({})).await;
    assert_eq!((s, all["approved"].as_u64()), (200, Some(0)));
    for session in &sessions {
        let p = r.w.t.app.store().participant_by_session(&confctl::ids::session_hash(session)).await.unwrap().unwrap();
        assert_ne!(p.admission, confctl::store::Admission::Approved);
    }
    assert!(r.w.lk.calls().iter().all(|c| c.method != "UpdateParticipant"));
}

/// Guests arriving at the same moment (on SQLite their rows share statements) are each checked on their
/// own: the banned browser among them is refused every time, and everyone else waits in the lobby once.
async fn guests_arriving_together_are_each_checked(db: Db) {
    let r = Room::configured(db, json!({"name": "Crowd"}), &[("rate_limits.joins_per_ip_per_minute", "1000")]).await;
    let troll = r.guest("troll", true).await;
    let (s, _) = r.host.post(&format!("/api/rooms/{}/participants/{}/ban", r.id, troll.identity), json!({})).await;
    assert_eq!(s, 201);
    let code = r.w.t.invite_code(&r.id).await;
    let crowd = futures::future::join_all((0..150).map(|i| {
        let fingerprint =
            if i % 10 == 3 { troll.fingerprint.clone() } else { format!("fp-crowd-{i:04}-0123456789abcdef") };
        let request = troll.browser.http.post(format!("{}/api/rooms/{}/join", r.w.t.base, r.id)).json(
            &json!({"displayName": format!("Student {i}"), "sessionFingerprint": fingerprint, "inviteCode": code}),
        );
        async move { (i, support::read(request.send().await.unwrap()).await) }
    }))
    .await;
    let mut waiting = std::collections::BTreeSet::new();
    for (i, (s, body)) in crowd {
        if i % 10 == 3 {
            assert_eq!((s, error_code(&body)), (403, "banned"), "{i}: {body}");
        } else {
            assert_eq!((s, body["status"].as_str()), (201, Some("PENDING")), "{i}: {body}");
            waiting.insert(format!("Student {i}"));
        }
    }
    let (s, lobby) = r.host.get(&format!("/api/rooms/{}/lobby", r.id)).await;
    assert_eq!(s, 200);
    let listed: Vec<String> =
        lobby["entries"].as_array().unwrap().iter().map(|e| e["displayName"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed.len(), 135, "each waiting guest once");
    assert_eq!(listed.into_iter().collect::<std::collections::BTreeSet<_>>(), waiting);
}

async fn panic_mute_sends_whole_permission_objects(db: Db) {
    let r = Room::new(db, json!({"name": "Panic"})).await;
    let ann = r.guest("ann", true).await;
    let ben = r.guest("ben", true).await;
    let gone = r.guest("gone", true).await;
    r.w.lk.remove_participant(&r.lk_room(), &gone.identity);
    let (_, host_token) = r.host.post(&format!("/api/rooms/{}/token", r.id), json!({})).await;
    let host_identity = host_token["identity"].as_str().unwrap().to_owned();
    r.w.lk.add_participant(&r.lk_room(), &host_identity, "Ada", r#"{"role":"host"}"#, None);
    r.w.lk.add_participant(&r.lk_room(), "confctl-assistant", "Assistant", r#"{"role":"assistant"}"#, None);

    let guest_try = r.as_guest(&ann, "POST", &format!("/api/rooms/{}/mute-all", r.id), None).await;
    assert_eq!(guest_try.0, 401);
    let (s, report) = r.host.post(&format!("/api/rooms/{}/mute-all", r.id), json!({})).await;
    assert_eq!(s, 200, "{report}");
    let mut muted: Vec<&str> = report["muted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    muted.sort();
    let mut expected = vec![ann.identity.as_str(), ben.identity.as_str()];
    expected.sort();
    assert_eq!(muted, expected, "hosts and the assistant keep their rights; the departed guest is not there to mute");
    assert_eq!(report["failed"], json!([]));

    let updates = r.w.lk.calls_for("UpdateParticipant");
    assert_eq!(updates.len(), 2);
    for call in &updates {
        assert_eq!(call.room.as_deref(), Some(r.lk_room().as_str()));
        assert!(call.grants.room_admin && call.grants.room == r.lk_room());
        let p = &call.request_json["permission"];
        assert_eq!(
            (p["canPublish"].as_bool(), p["canSubscribe"].as_bool(), p["canPublishData"].as_bool()),
            (Some(false), Some(true), Some(true)),
            "{p}"
        );
        assert_eq!(p["canPublishSources"], json!(["CAMERA", "MICROPHONE"]), "sources stay stated explicitly");
        assert_eq!(p["hidden"], false);
    }
    let ann_now = r.w.lk.participant(&r.lk_room(), &ann.identity).unwrap().permission.unwrap();
    assert!(
        !ann_now.can_publish && ann_now.can_subscribe && ann_now.can_publish_data,
        "the double applied the whole object"
    );

    // Calling it twice is harmless; guests who come back or arrive stay muted.
    let (s, again) = r.host.post(&format!("/api/rooms/{}/mute-all", r.id), json!({})).await;
    assert_eq!((s, again["failed"].as_array().unwrap().len()), (200, 0));
    let (_, refreshed) = r.as_guest(&gone, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!(
        jwt_claims(refreshed["token"].as_str().unwrap())["video"]["canPublish"],
        false,
        "a reload does not escape the panic mute"
    );
    let late = r.guest("late", true).await;
    let (_, fresh) = r.as_guest(&late, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!(jwt_claims(fresh["token"].as_str().unwrap())["video"]["canPublish"], false);
    let (_, room) = r.host.get(&format!("/api/rooms/{}", r.id)).await;
    assert_eq!(room["guestsMuted"], true);

    r.w.lk.clear_calls();
    let (s, report) = r.host.post(&format!("/api/rooms/{}/unmute-all", r.id), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(report["muted"].as_array().unwrap().len(), 3, "ann, ben and the late arrival: {report}");
    for call in r.w.lk.calls_for("UpdateParticipant") {
        let p = &call.request_json["permission"];
        assert_eq!(
            (p["canPublish"].as_bool(), p["canSubscribe"].as_bool(), p["canPublishData"].as_bool()),
            (Some(true), Some(true), Some(true))
        );
    }
    let (_, refreshed) = r.as_guest(&gone, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!(jwt_claims(refreshed["token"].as_str().unwrap())["video"]["canPublish"], true);
}

async fn lock_keeps_people_inside_and_newcomers_out(db: Db) {
    let r = Room::new(db, json!({"name": "Lock"})).await;
    let ann = r.guest("ann", true).await;
    let (s, body) = r.host.post(&format!("/api/rooms/{}/lock", r.id), json!({})).await;
    assert_eq!((s, body["locked"].as_bool()), (200, Some(true)));
    let newcomer = r.w.t.client();
    let (s, body) = newcomer
        .post(
            &format!("/api/rooms/{}/join", r.id),
            json!({"displayName": "Late", "sessionFingerprint": "fp-late-000000000000", "inviteCode": r.w.t.invite_code(&r.id).await}),
        )
        .await;
    assert_eq!((s, error_code(&body)), (423, "room_locked"));
    let (s, _) = r.as_guest(&ann, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!(s, 200, "people inside stay");
    assert_eq!(r.as_guest(&ann, "POST", &format!("/api/rooms/{}/unlock", r.id), None).await.0, 401);
    let (s, _) = r.host.post(&format!("/api/rooms/{}/unlock", r.id), json!({})).await;
    assert_eq!(s, 200);
    let (s, _) = newcomer
        .post(
            &format!("/api/rooms/{}/join", r.id),
            json!({"displayName": "Late", "sessionFingerprint": "fp-late-000000000000", "inviteCode": r.w.t.invite_code(&r.id).await}),
        )
        .await;
    assert_eq!(s, 201);
}

async fn hands_queue_and_speaking_rights(db: Db) {
    let r = Room::new(db, json!({"name": "Webinar", "webinarMode": true})).await;
    let ann = r.guest("ann", true).await;
    let ben = r.guest("ben", true).await;
    let waiting = r.guest("waiting", false).await;
    let mut events = Sse::open(&r.host.http, &format!("{}/api/rooms/{}/events", r.w.t.base, r.id)).await;
    events.next().await.unwrap();

    let (s, body) =
        r.as_guest(&waiting, "POST", &format!("/api/rooms/{}/hand", r.id), Some(json!({"raised": true}))).await;
    assert_eq!((s, error_code(&body)), (403, "not_admitted"), "the lobby cannot raise hands");
    for g in [&ben, &ann] {
        let (s, _) = r.as_guest(g, "POST", &format!("/api/rooms/{}/hand", r.id), Some(json!({"raised": true}))).await;
        assert_eq!(s, 200);
    }
    r.as_guest(&ben, "POST", &format!("/api/rooms/{}/hand", r.id), Some(json!({"raised": true}))).await;
    let (_, hands) = r.host.get(&format!("/api/rooms/{}/hands", r.id)).await;
    let order: Vec<&str> =
        hands["hands"].as_array().unwrap().iter().map(|h| h["displayName"].as_str().unwrap()).collect();
    assert_eq!(order, ["ben", "ann"], "first raised, first in line; raising again keeps the place");
    let data = r.w.lk.sent_data(&r.lk_room());
    let hand_msgs: Vec<Value> = data
        .iter()
        .filter(|d| d.topic.as_deref() == Some("hand-raise"))
        .map(|d| serde_json::from_slice(&d.data).unwrap())
        .collect();
    assert_eq!(hand_msgs.len(), 3);
    assert_eq!(
        (hand_msgs[0]["identity"].as_str(), hand_msgs[0]["raised"].as_bool()),
        (Some(ben.identity.as_str()), Some(true))
    );
    let mut saw_hands = false;
    while let Some((name, data)) = events.next().await {
        if name == "hands" && data["hands"].as_array().unwrap().len() == 2 {
            saw_hands = true;
            break;
        }
    }
    assert!(saw_hands, "the host event stream carries the queue");

    r.w.lk.clear_calls();
    let path = format!("/api/rooms/{}/participants/{}/permissions", r.id, ben.identity);
    let (s, change) = r.host.post(&path, json!({"canPublish": true})).await;
    assert_eq!(s, 200, "{change}");
    assert_eq!(change["appliedLive"], true);
    let call = &r.w.lk.calls_for("UpdateParticipant")[0];
    assert_eq!(call.identity.as_deref(), Some(ben.identity.as_str()));
    let p = &call.request_json["permission"];
    assert_eq!(
        (p["canPublish"].as_bool(), p["canSubscribe"].as_bool(), p["canPublishData"].as_bool()),
        (Some(true), Some(true), Some(true))
    );
    let (_, hands) = r.host.get(&format!("/api/rooms/{}/hands", r.id)).await;
    assert_eq!(hands["hands"].as_array().unwrap().len(), 1, "granting lowers the hand");
    let (_, token) = r.as_guest(&ben, "POST", &format!("/api/rooms/{}/guest-token", r.id), None).await;
    assert_eq!(
        jwt_claims(token["token"].as_str().unwrap())["video"]["canPublish"],
        true,
        "the grant survives a reload"
    );

    let (s, _) = r.host.post(&path, json!({"canPublish": false})).await;
    assert_eq!(s, 200);
    assert!(!r.w.lk.participant(&r.lk_room(), &ben.identity).unwrap().permission.unwrap().can_publish);
    assert_eq!(r.as_guest(&ann, "POST", &path, Some(json!({"canPublish": true}))).await.0, 401, "guests cannot grant");
    let (s, _) = r
        .host
        .post(
            &format!("/api/rooms/{}/participants/{}/permissions", r.id, waiting.identity),
            json!({"canPublish": true}),
        )
        .await;
    assert_eq!(s, 409, "someone in the lobby cannot be given the floor");
}

async fn chat_is_saved_then_broadcast_and_members_only(db: Db) {
    let r = Room::new(db, json!({"name": "Chat"})).await;
    let ann = r.guest("ann", true).await;
    let lobby = r.guest("lobby", false).await;
    let chat = format!("/api/rooms/{}/chat", r.id);

    let (s, posted) = r.host.post(&chat, json!({"text": "Welcome! Questions at the end."})).await;
    assert_eq!(s, 201, "{posted}");
    assert_eq!((posted["message"]["senderRole"].as_str(), posted["delivered"].as_bool()), (Some("host"), Some(true)));
    let (s, posted) =
        r.as_guest(&ann, "POST", &chat, Some(json!({"text": "Is chlorophyll green?\nAsking for a friend."}))).await;
    assert_eq!(s, 201);
    let ann_msg = posted["message"].clone();
    assert_eq!((ann_msg["senderName"].as_str(), ann_msg["senderRole"].as_str()), (Some("ann"), Some("guest")));

    let sent: Vec<Value> =
        r.w.lk
            .sent_data(&r.lk_room())
            .iter()
            .filter(|d| d.topic.as_deref() == Some("chat"))
            .map(|d| serde_json::from_slice(&d.data).unwrap())
            .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1], ann_msg, "the broadcast is exactly the saved message");
    assert!(
        r.w.lk
            .calls_for("SendData")
            .iter()
            .all(|c| c.grants.room_admin && c.room.as_deref() == Some(r.lk_room().as_str()))
    );

    let (s, history) = r.as_guest(&ann, "GET", &chat, None).await;
    assert_eq!(s, 200);
    let msgs = history["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["id"], ann_msg["id"]);
    let (_, after) = r.host.get(&format!("{chat}?after={}", msgs[0]["seq"])).await;
    assert_eq!(after["messages"].as_array().unwrap().len(), 1);

    let (s, body) = r.as_guest(&lobby, "GET", &chat, None).await;
    assert_eq!((s, error_code(&body)), (403, "not_admitted"), "the lobby cannot read the chat");
    let (s, _) = r.as_guest(&lobby, "POST", &chat, Some(json!({"text": "let me in"}))).await;
    assert_eq!(s, 403);
    assert_eq!(r.w.t.client().get(&chat).await.0, 401);

    for bad in
        [json!({"text": "   "}), json!({"text": "x".repeat(4001)}), json!({"text": "bell\u{7}"}), json!({"text": 5})]
    {
        let (s, body) = r.as_guest(&ann, "POST", &chat, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} → {body}");
    }
    let (s, _) = r.as_guest(&ann, "POST", &chat, Some(json!({"text": "Привет! 👋"}))).await;
    assert_eq!(s, 201, "Unicode is fine");
    let mut last = 0;
    for i in 0..5 {
        last = r.as_guest(&ann, "POST", &chat, Some(json!({"text": format!("spam {i}")}))).await.0;
    }
    assert_eq!(last, 429, "per-sender rate limit");

    let msg_id = ann_msg["id"].as_str().unwrap();
    assert_eq!(r.as_guest(&ann, "DELETE", &format!("{chat}/{msg_id}"), None).await.0, 401, "guests cannot delete");
    let (s, deleted) = r.host.delete(&format!("{chat}/{msg_id}")).await;
    assert_eq!(s, 200);
    assert_eq!((deleted["message"]["deleted"].as_bool(), deleted["message"]["text"].as_str()), (Some(true), Some("")));
    let (_, history) = r.host.get(&chat).await;
    let shown = history["messages"].as_array().unwrap().iter().find(|m| m["id"] == msg_id).unwrap().clone();
    assert_eq!(shown["deleted"], true, "shown as removed");
    let audit = support::audit_of(&r.w.t.app, None, "chat.delete", 5).await;
    assert!(audit[0].details["text"].as_str().unwrap().contains("chlorophyll"), "the audit log keeps the text");

    // The lecture's chat stays with the lecture; the room's next lecture starts with an empty one.
    let (_, ended) = r.host.post(&format!("/api/rooms/{}/end", r.id), json!({})).await;
    let (s, history) = r.host.get(&chat).await;
    assert_eq!((s, history["messages"].as_array().unwrap().len()), (200, 0));
    let (_, lecture) = r.host.get(&format!("/api/lectures/{}", ended["endedLectureId"].as_str().unwrap())).await;
    let kept: Vec<&str> = lecture["chat"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(kept.contains(&"Привет! 👋"), "the lecture page has the lecture's chat: {kept:?}");
    assert!(kept.iter().all(|t| !t.contains("chlorophyll")), "a deleted message stays deleted: {kept:?}");
    r.host.post(&format!("/api/rooms/{}/archive", r.id), json!({})).await;
    let (s, body) = r.host.post(&chat, json!({"text": "after the end"})).await;
    assert_eq!((s, error_code(&body)), (410, "room_archived"));
}

async fn audit_log_is_filtered_paged_and_scoped(db: Db) {
    let r = Room::new(db, json!({"name": "Audited", "pin": "1357"})).await;
    let ann = r.guest_with_pin_failure().await;
    r.host.post(&format!("/api/rooms/{}/lock", r.id), json!({})).await;
    r.host.post(&format!("/api/rooms/{}/unlock", r.id), json!({})).await;
    r.host.post(&format!("/api/rooms/{}/participants/{}/kick", r.id, ann), json!({})).await;

    let (s, page) = r.host.get(&format!("/api/rooms/{}/audit?limit=2", r.id)).await;
    assert_eq!(s, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "moderation.kick", "newest first");
    let before = page["nextBefore"].as_i64().unwrap();
    let (_, older) = r.host.get(&format!("/api/rooms/{}/audit?limit=50&before={before}", r.id)).await;
    let actions: Vec<&str> =
        older["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["moderation.lock", "room.pin_failed", "lobby.approve", "room.create"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    let (_, only) = r.host.get(&format!("/api/rooms/{}/audit?action=room.pin_failed", r.id)).await;
    assert!(only["entries"].as_array().unwrap().iter().all(|e| e["action"] == "room.pin_failed"));

    // The instance log is for admins: the first account (Ada) is one; a later host is not.
    let (s, all) = r.host.get("/api/admin/audit?action=auth.login_failed").await;
    assert_eq!(s, 200, "{all}");
    let bob = r.w.t.client();
    bob.register("bob@uni.edu", "Bob").await;
    assert_eq!(bob.get("/api/admin/audit").await.0, 403);
    assert_eq!(bob.get(&format!("/api/rooms/{}/audit", r.id)).await.0, 404, "host B cannot read host A's room log");
    let (s, body) = r.host.get("/api/admin/audit?since=yesterday").await;
    assert_eq!((s, error_code(&body)), (400, "invalid_since"));
    let (s, recent) = r.host.get("/api/admin/audit?since=2000-01-01T00:00:00Z&limit=500").await;
    assert_eq!(s, 200);
    assert!(recent["entries"].as_array().unwrap().len() >= 6);
}

impl Room {
    /// A guest who first types a wrong PIN, then the right one, and is let in; returns the identity.
    async fn guest_with_pin_failure(&self) -> String {
        let b = self.w.t.client();
        let url = format!("/api/rooms/{}/join", self.id);
        let code = self.w.t.invite_code(&self.id).await;
        let (s, _) = b
            .post(
                &url,
                json!({"displayName": "ann", "sessionFingerprint": "fp-ann-0123456789abcdef", "pin": "0000", "inviteCode": code}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, joined) = b
            .post(
                &url,
                json!({"displayName": "ann", "sessionFingerprint": "fp-ann-0123456789abcdef", "pin": "1357", "inviteCode": code}),
            )
            .await;
        assert_eq!(s, 201);
        let p = self
            .w
            .t
            .app
            .store()
            .participant_by_session(&confctl::ids::session_hash(joined["sessionId"].as_str().unwrap()))
            .await
            .unwrap()
            .unwrap();
        self.host.post(&format!("/api/rooms/{}/lobby/{}/approve", self.id, p.id), json!({})).await;
        p.identity
    }
}
