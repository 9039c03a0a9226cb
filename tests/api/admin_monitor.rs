//! The monitor's admin API on SQLite and PostgreSQL: API tokens (scopes, revocation, expiry, last use), the
//! rooms snapshot and room detail, the room actions with their audit entries, and the instance event stream
//! with `Last-Event-ID` resume and the reset for clients too far behind.

use confctl::admin::tokens;
use confctl::audit::Actor;
use confctl::store::ApiTokenScope;
use serde_json::{Value, json};

use crate::support::{self, Browser, Db, Sse, TestApp, WithLiveKit, error_code};

on_both_databases!(
    tokens_gate_the_admin_api,
    snapshot_actions_and_audit,
    events_resume_with_last_event_id,
    bans_are_listed_and_lifted,
);

/// A reqwest client that presents `token` (and optionally `Last-Event-ID`) on every request.
fn bearer(token: &str, last_event_id: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(id) = last_event_id {
        headers.insert("last-event-id", id.parse().unwrap());
    }
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String) -> (u16, Value) {
    support::read(http.request(method, url).send().await.unwrap()).await
}

async fn token(t: &TestApp, name: &str, scope: ApiTokenScope) -> (String, String) {
    let (record, token) = tokens::create(&t.app, &Actor::cli(), name, scope, None).await.unwrap();
    (record.id, token)
}

/// An admin (the first account), a host with one room, and the room's id.
async fn instance(t: &TestApp) -> (Browser, Browser, String) {
    let admin = t.client();
    admin.register("root@uni.edu", "Root").await;
    let host = t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (s, room) = host.post("/api/rooms", json!({"name": "Algebra"})).await;
    assert_eq!(s, 201, "{room}");
    (admin, host, room["id"].as_str().unwrap().to_owned())
}

async fn guest_joins(t: &TestApp, room_id: &str, name: &str) -> Value {
    let (s, joined) = t
        .client()
        .post(
            &format!("/api/rooms/{room_id}/join"),
            json!({"displayName": name, "sessionFingerprint": format!("fp-{name}-0123456789abcdef"),
                   "inviteCode": t.invite_code(room_id).await}),
        )
        .await;
    assert_eq!(s, 201, "{joined}");
    joined
}

async fn tokens_gate_the_admin_api(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let (admin, host, room_id) = instance(&t).await;
    let rooms = format!("{}/api/admin/rooms", t.base);
    let lock = format!("{}/api/admin/rooms/{room_id}/lock", t.base);

    // Nobody, a stranger's token, and a host's session are refused; an admin's session is not.
    let (s, body) = call(&reqwest::Client::new(), reqwest::Method::GET, rooms.clone()).await;
    assert_eq!((s, error_code(&body)), (401, "not_signed_in"));
    let (s, body) = call(&bearer("cfm_not-a-token", None), reqwest::Method::GET, rooms.clone()).await;
    assert_eq!((s, error_code(&body)), (401, "invalid_api_token"));
    let (s, body) = host.get("/api/admin/rooms").await;
    assert_eq!((s, error_code(&body)), (403, "admin_only"));
    let (s, body) = host.post(&format!("/api/admin/rooms/{room_id}/lock"), json!({})).await;
    assert_eq!((s, error_code(&body)), (403, "admin_only"));
    let (s, body) = admin.get("/api/admin/rooms").await;
    assert_eq!(s, 200, "{body}");

    // A read token looks but cannot act.
    let (read_id, read) = token(&t, "dashboard", ApiTokenScope::Read).await;
    let (s, body) = call(&bearer(&read, None), reqwest::Method::GET, rooms.clone()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["rooms"][0]["id"], room_id.as_str());
    let (s, body) = call(&bearer(&read, None), reqwest::Method::POST, lock.clone()).await;
    assert_eq!((s, error_code(&body)), (403, "read_only_token"));
    assert!(!t.app.store().room_by_id(&room_id).await.unwrap().locked);
    let listed = tokens::list(&t.app).await.unwrap();
    assert!(listed.iter().find(|r| r.id == read_id).unwrap().last_used_at.is_some(), "last use is recorded");

    // An admin token acts; the audit entry carries the token's name.
    let (admin_id, full) = token(&t, "laptop", ApiTokenScope::Admin).await;
    let (s, body) = call(&bearer(&full, None), reqwest::Method::POST, lock.clone()).await;
    assert_eq!(s, 200, "{body}");
    assert!(t.app.store().room_by_id(&room_id).await.unwrap().locked);
    let (_, audit) = admin.get("/api/admin/audit?action=moderation.lock").await;
    assert_eq!(audit["entries"][0]["actorLabel"], "token:laptop", "{audit}");

    // Revoked and expired tokens get 401 with their own codes.
    tokens::revoke(&t.app, &Actor::cli(), &admin_id).await.unwrap();
    let (s, body) = call(&bearer(&full, None), reqwest::Method::GET, rooms.clone()).await;
    assert_eq!((s, error_code(&body)), (401, "api_token_revoked"));
    let (_, short) =
        tokens::create(&t.app, &Actor::cli(), "short", ApiTokenScope::Read, Some(std::time::Duration::from_millis(1)))
            .await
            .unwrap();
    t.app.clock().advance(std::time::Duration::from_millis(5));
    let (s, body) = call(&bearer(&short, None), reqwest::Method::GET, rooms).await;
    assert_eq!((s, error_code(&body)), (401, "api_token_expired"));
    // An unknown room is a 404 that names it.
    let (s, body) = call(&bearer(&read, None), reqwest::Method::GET, format!("{}/api/admin/rooms/nope", t.base)).await;
    assert_eq!((s, error_code(&body)), (404, "room_not_found"));
}

async fn snapshot_actions_and_audit(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let (admin, _host, room_id) = instance(t).await;
    let (_, full) = token(t, "ops", ApiTokenScope::Admin).await;
    let http = bearer(&full, None);
    guest_joins(t, &room_id, "Grace").await;
    guest_joins(t, &room_id, "Alan").await;

    let (s, snap) = call(&http, reqwest::Method::GET, format!("{}/api/admin/rooms?state=live", t.base)).await;
    assert_eq!(s, 200, "{snap}");
    let row = &snap["rooms"][0];
    assert_eq!((row["name"].as_str(), row["host"].as_str()), (Some("Algebra"), Some("Ada")));
    assert_eq!(row["lobby"].as_array().unwrap().len(), 2, "{row}");
    assert_eq!(snap["instance"]["database"], if db == Db::Sqlite { "sqlite" } else { "postgres" });
    assert_eq!(snap["instance"]["livekitReachable"], true, "{snap}");
    assert_eq!(
        (snap["instance"]["assistantWorkers"].as_u64(), snap["instance"]["certificateExpiresAt"].is_null()),
        (Some(0), true)
    );
    let (s, body) = call(&http, reqwest::Method::GET, format!("{}/api/admin/rooms?state=sideways", t.base)).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_state"));

    // Approve one, reject the other, end the room: each audited under the token's name.
    let first = row["lobby"][0]["id"].as_str().unwrap().to_owned();
    let second = row["lobby"][1]["id"].as_str().unwrap().to_owned();
    let base = format!("{}/api/admin/rooms/{room_id}", t.base);
    let (s, body) = call(&http, reqwest::Method::POST, format!("{base}/lobby/{first}/approve")).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("APPROVED")), "{body}");
    let (s, body) = call(&http, reqwest::Method::POST, format!("{base}/lobby/{second}/reject")).await;
    assert_eq!(s, 200, "{body}");
    let (s, detail) = call(&http, reqwest::Method::GET, base.clone()).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(detail["room"]["lobby"].as_array().unwrap().len(), 0);
    assert!(detail["recentEvents"].as_array().unwrap().iter().any(|e| e["type"] == "lobby_decided"), "{detail}");
    let (s, body) = call(&http, reqwest::Method::POST, format!("{base}/end")).await;
    assert_eq!(s, 200, "{body}");
    let (_, recent) = admin.get("/api/admin/rooms?state=recent").await;
    assert_eq!(recent["rooms"][0]["status"], "READY", "a room whose lecture just ended is recent: {recent}");
    let (_, audit) = admin.get(&format!("/api/admin/audit?room={room_id}")).await;
    let by_token: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actorLabel"] == "token:ops")
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["lobby.approve", "lobby.reject", "lecture.end"] {
        assert!(by_token.contains(&action), "{action}: {by_token:?}");
    }
}

async fn events_resume_with_last_event_id(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let (_admin, host, room_id) = instance(&t).await;
    let (_, read) = token(&t, "watcher", ApiTokenScope::Read).await;
    let events = format!("{}/api/admin/events", t.base);

    let mut live = Sse::open(&bearer(&read, None), &events).await;
    guest_joins(&t, &room_id, "Grace").await;
    let (name, waiting) = live.next().await.unwrap();
    assert_eq!(name, "guest_waiting", "{waiting}");
    assert_eq!(waiting["roomId"], room_id.as_str());
    assert_eq!(waiting["data"]["entry"]["displayName"], "Grace");
    let seen = waiting["id"].as_u64().unwrap();
    drop(live);

    // While away: the host approves Grace.
    let entry = waiting["data"]["entry"]["id"].as_str().unwrap();
    let (s, _) = host.post(&format!("/api/rooms/{room_id}/lobby/{entry}/approve"), json!({})).await;
    assert_eq!(s, 200);

    // Back with Last-Event-ID: what was missed comes first, in order, nothing twice.
    let mut resumed = Sse::open(&bearer(&read, Some(&seen.to_string())), &events).await;
    let (name, decided) = resumed.next().await.unwrap();
    assert_eq!(name, "lobby_decided", "{decided}");
    assert_eq!(decided["id"].as_u64(), Some(seen + 1));
    assert_eq!(decided["data"]["entries"][0]["status"], "APPROVED");
    let (name, audit) = resumed.next().await.unwrap();
    assert_eq!((name.as_str(), audit["data"]["action"].as_str()), ("audit", Some("lobby.approve")), "{audit}");
    assert_eq!(audit["data"]["actor"], "ada@uni.edu");

    // An id the feed never had (another server's, or from before the buffer): reset, then live events.
    let unknown = (seen + 1_000_000).to_string();
    let mut stale = Sse::open(&bearer(&read, Some(&unknown)), &events).await;
    let (name, reset) = stale.next().await.unwrap();
    assert_eq!((name.as_str(), reset["reason"].as_str()), ("reset", Some("too_far_behind")));
    let (s, _) = host.post(&format!("/api/rooms/{room_id}/lock"), json!({})).await;
    assert_eq!(s, 200);
    let (name, updated) = stale.next().await.unwrap();
    assert_eq!((name.as_str(), updated["data"]["locked"].as_bool()), ("room_updated", Some(true)), "{updated}");
    let (s, body) = call(&bearer(&read, Some("soon")), reqwest::Method::GET, events).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_last_event_id"));
}

async fn bans_are_listed_and_lifted(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let (admin, _host, room_id) = instance(t).await;
    let lk_name = t.app.store().room_by_id(&room_id).await.unwrap().lecture_id;
    let lk_name = confctl::livekit::room_name(&lk_name);
    w.lk.add_room(&lk_name);
    let (_, full) = token(t, "ops", ApiTokenScope::Admin).await;
    let (_, read) = token(t, "eyes", ApiTokenScope::Read).await;
    let http = bearer(&full, None);
    let joined = guest_joins(t, &room_id, "Mallory").await;
    let session = joined["sessionId"].as_str().unwrap();
    let record = t.app.store().participant_by_session(&confctl::ids::session_hash(session)).await.unwrap().unwrap();
    let base = format!("{}/api/admin/rooms/{room_id}", t.base);
    let (s, _) = call(&http, reqwest::Method::POST, format!("{base}/lobby/{}/approve", record.id)).await;
    assert_eq!(s, 200);
    w.lk.add_participant(
        &lk_name,
        &record.identity,
        "Mallory",
        r#"{"role":"guest"}"#,
        Some(confctl_doubles::default_join_permission()),
    );
    let r = http
        .post(format!("{base}/participants/{}/ban", record.identity))
        .json(&json!({"reason": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let (s, all) = call(&bearer(&read, None), reqwest::Method::GET, format!("{}/api/admin/bans", t.base)).await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["bans"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all["bans"][0]["reason"], "spam");
    let ban_id = all["bans"][0]["id"].as_str().unwrap().to_owned();
    let (_, in_room) = admin.get(&format!("/api/admin/bans?room={room_id}")).await;
    assert_eq!(in_room["bans"][0]["id"], ban_id.as_str());
    let (s, body) = admin.get("/api/admin/bans?room=nope").await;
    assert_eq!((s, error_code(&body)), (404, "room_not_found"));

    let lift = format!("{}/api/admin/bans/{ban_id}", t.base);
    let (s, body) = call(&bearer(&read, None), reqwest::Method::DELETE, lift.clone()).await;
    assert_eq!((s, error_code(&body)), (403, "read_only_token"));
    let (s, body) = call(&http, reqwest::Method::DELETE, lift.clone()).await;
    assert_eq!((s, body["lifted"]["id"].as_str()), (200, Some(ban_id.as_str())), "{body}");
    let (s, body) = call(&http, reqwest::Method::DELETE, lift).await;
    assert_eq!((s, error_code(&body)), (404, "ban_not_found"));
    let (_, audit) = admin.get("/api/admin/audit?action=moderation.unban").await;
    assert_eq!(audit["entries"][0]["actorLabel"], "token:ops", "{audit}");
}
