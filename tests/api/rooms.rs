//! Rooms and admission end to end over HTTP, against a LiveKit double that checks what LiveKit checks: room
//! CRUD and who may touch what, guest join with every refusal, the lobby over SSE, tokens, webhooks, ending a
//! lecture and reconciliation — on SQLite and PostgreSQL.

use confctl_doubles::webhook::{WebhookTamper, events};
use livekit_api::access_token::TokenVerifier;
use serde_json::{Value, json};

use crate::support::{self, Browser, Db, Sse, WithLiveKit, error_code, jwt_claims};

on_both_databases!(
    room_crud_and_invite_codes,
    other_hosts_cannot_touch_a_room,
    guest_waits_in_lobby_then_gets_a_token_over_sse,
    join_checks_run_in_order_with_clear_errors,
    wrong_pins_are_limited_with_retry_after,
    no_lobby_webinar_and_screen_share_shape_the_token,
    the_lobby_leaks_nothing_before_approval,
    host_sees_the_lobby_live_and_approve_all_respects_the_cap,
    approve_all_hands_every_waiting_stream_its_own_token,
    webhooks_are_verified_idempotent_and_drive_the_lifecycle,
    ending_a_lecture_closes_it_everywhere,
    reconciliation_repairs_lost_webhooks,
    decisions_survive_a_restart,
    lobby_flooding_is_limited_per_ip,
    parallel_wrong_pins_meet_the_limit_exactly,
    a_new_invite_code_locks_the_old_link_out,
    one_lobby_stream_per_guest_and_a_cap_per_address,
);

async fn parallel_wrong_pins_meet_the_limit_exactly(db: Db) {
    let w = WithLiveKit::spawn(db, &[("trusted_proxies", "127.0.0.1/32")]).await;
    let ada = host(&w.t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "PIN storm", "pin": "97531"})).await;
    let id = room["id"].as_str().unwrap();
    let code = room["inviteCode"].as_str().unwrap();
    let url = format!("{}/api/rooms/{id}/join", w.t.base);
    let http = reqwest::Client::new();
    let fire = |ip: String, fp: String| {
        http.post(&url)
            .header("x-forwarded-for", ip)
            .json(&json!({"displayName": "Mallory", "sessionFingerprint": fp, "pin": "11111", "inviteCode": code}))
            .send()
    };
    let count = |answers: Vec<reqwest::Result<reqwest::Response>>| {
        let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
        for r in answers {
            *by_status.entry(r.unwrap().status().as_u16()).or_default() += 1;
        }
        by_status
    };
    // One address, a new browser each time: the per-address limit (5) holds while bcrypt runs.
    let answers =
        futures::future::join_all((0..40).map(|i| fire("198.51.100.1".into(), format!("fp-storm-{i:04}-0000000"))))
            .await;
    let by_status = count(answers);
    assert_eq!((by_status.get(&403), by_status.get(&429)), (Some(&5), Some(&35)), "{by_status:?}");
    // One browser from many addresses: the per-guest limit (5) holds the same way.
    let answers =
        futures::future::join_all((0..40).map(|i| fire(format!("203.0.113.{i}"), "fp-one-browser-000000".into())))
            .await;
    let by_status = count(answers);
    assert_eq!((by_status.get(&403), by_status.get(&429)), (Some(&5), Some(&35)), "{by_status:?}");
    let audit = support::audit_of(&w.t.app, None, "room.pin_failed", 100).await;
    assert_eq!(audit.len(), 10, "exactly ten PINs were checked");
}

async fn a_new_invite_code_locks_the_old_link_out(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Rotated"})).await;
    let id = room["id"].as_str().unwrap();
    let old_code = room["inviteCode"].as_str().unwrap().to_owned();
    let g = t.client();
    let (_, admitted) = join(&g, id, "Ann", FP, None).await;
    let session = admitted["sessionId"].as_str().unwrap().to_owned();
    let entry = ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ada.post(&format!("/api/rooms/{id}/lobby/{entry}/approve"), json!({})).await.0, 200);

    let (s, rotated) = ada.post(&format!("/api/rooms/{id}/invite-code"), json!({})).await;
    assert_eq!(s, 200);
    let new_code = rotated["inviteCode"].as_str().unwrap().to_owned();
    assert_ne!(new_code, old_code);
    let body =
        |code: &str| json!({"displayName": "Eve", "sessionFingerprint": "fp-eve-000000000000", "inviteCode": code});
    let (s, err) = g.post(&format!("/api/rooms/{id}/join"), body(&old_code)).await;
    assert_eq!((s, error_code(&err)), (404, "invite_not_found"), "the old link no longer opens the room");
    let (s, err) = g.post(&format!("/api/rooms/{id}/join"), body("")).await;
    assert_eq!((s, error_code(&err)), (404, "invite_not_found"), "the room id alone opens nothing");
    let (s, err) = g.post(&format!("/api/rooms/{id}/join"), body(&new_code.to_uppercase())).await;
    assert_eq!(s, 201, "the current code, as typed, works: {err}");
    // Someone let in before the change reconnects through their session.
    let r = g
        .http
        .post(format!("{}/api/rooms/{id}/guest-token", t.base))
        .header("x-confctl-session", &session)
        .send()
        .await
        .unwrap();
    let (s, token) = support::read(r).await;
    assert_eq!((s, token["status"].as_str()), (200, Some("APPROVED")), "{token}");
}

async fn one_lobby_stream_per_guest_and_a_cap_per_address(db: Db) {
    let w = WithLiveKit::spawn(db, &[("rate_limits.lobby_streams_per_ip", "3")]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Streams"})).await;
    let id = room["id"].as_str().unwrap();
    let mut events = Sse::open(&ada.http, &format!("{}/api/rooms/{id}/events", t.base)).await;
    assert_eq!(events.next().await.unwrap().0, "lobby");
    let g = t.client();
    let (_, joined) = join(&g, id, "Ann", FP, None).await;
    let session = joined["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(events.next().await.unwrap().0, "guest_waiting");

    // The same guest opens stream after stream: each new one replaces the older, which ends.
    let mut older = Sse::open(&g.http, &guest_stream_url(t, id, &session)).await;
    assert_eq!(older.next().await.unwrap().1["status"], "PENDING");
    for _ in 0..5 {
        let mut newer = Sse::open(&g.http, &guest_stream_url(t, id, &session)).await;
        assert_eq!(newer.next().await.unwrap().1["status"], "PENDING");
        assert!(older.next().await.is_none(), "the replaced stream ends");
        older = newer;
    }
    // Other guests from the same address fill the cap (3 open streams per address here).
    let mut kept = Vec::new();
    for i in 0..2 {
        let (_, j) = join(&t.client(), id, "Bot", &format!("fp-bot-{i}-000000000000"), None).await;
        let mut s = Sse::open(&g.http, &guest_stream_url(t, id, j["sessionId"].as_str().unwrap())).await;
        assert_eq!(s.next().await.unwrap().1["status"], "PENDING");
        kept.push(s);
    }
    let (_, j) = join(&t.client(), id, "Bot", "fp-bot-9-000000000000", None).await;
    let r = g.http.get(guest_stream_url(t, id, j["sessionId"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.status(), 429, "past the cap of open streams per address");

    // The host heard of each guest once: Ann's six streams announced nothing more.
    let (s, _) = ada.post(&format!("/api/rooms/{id}/lobby/approve-all"), json!({})).await;
    assert_eq!(s, 200);
    let mut names = Vec::new();
    loop {
        let (name, _) = events.next().await.unwrap();
        if name == "lobby_decided" {
            break;
        }
        names.push(name);
    }
    assert_eq!(
        names,
        ["guest_waiting", "guest_waiting", "guest_waiting"],
        "the three bots' joins, nothing for Ann's streams"
    );
    assert_eq!(older.next().await.unwrap().1["status"], "APPROVED", "the live stream gets the decision");
}

async fn lobby_flooding_is_limited_per_ip(db: Db) {
    let w = WithLiveKit::spawn(db, &[("rate_limits.joins_per_ip_per_minute", "3")]).await;
    let ada = host(&w.t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Flooded"})).await;
    let id = room["id"].as_str().unwrap();
    for i in 0..3 {
        assert_eq!(join(&w.t.client(), id, "Bot", &format!("fp-bot-{i}-000000000000"), None).await.0, 201);
    }
    let (s, body) = join(&w.t.client(), id, "Bot", "fp-bot-9-000000000000", None).await;
    assert_eq!((s, error_code(&body)), (429, "rate_limited"));
    assert_eq!(ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"].as_array().unwrap().len(), 3);
}

const FP: &str = "fp-0123456789abcdef";

async fn host(t: &support::TestApp, email: &str) -> Browser {
    let b = t.client();
    b.register(email, &email.replace("@uni.edu", "")).await;
    b
}

async fn create_room(b: &Browser, body: Value) -> Value {
    let (s, room) = b.post("/api/rooms", body).await;
    assert_eq!(s, 201, "{room}");
    room
}

async fn join(b: &Browser, room_id: &str, name: &str, fp: &str, pin: Option<&str>) -> (u16, Value) {
    let code = support::invite_code(&b.app, room_id).await;
    let mut body = json!({"displayName": name, "sessionFingerprint": fp, "inviteCode": code});
    if let Some(pin) = pin {
        body["pin"] = json!(pin);
    }
    b.post(&format!("/api/rooms/{room_id}/join"), body).await
}

fn guest_stream_url(t: &support::TestApp, room_id: &str, session: &str) -> String {
    format!("{}/api/rooms/{room_id}/lobby/stream?sessionId={session}", t.base)
}

async fn room_crud_and_invite_codes(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "  Photosynthesis 101 ", "pin": "2468", "maxParticipants": 300})).await;
    for key in [
        "id",
        "name",
        "inviteCode",
        "status",
        "hostId",
        "lobbyEnabled",
        "hasPin",
        "webinarMode",
        "locked",
        "maxParticipants",
        "guestScreenShare",
        "aiAssistant",
        "livekitRoomName",
        "createdAt",
        "startedAt",
        "archivedAt",
        "lectureId",
        "lectureNumber",
        "lecturesForParticipants",
    ] {
        assert!(room.get(key).is_some(), "room lacks {key}: {room}");
    }
    assert_eq!(room["name"], "Photosynthesis 101");
    assert_eq!((room["status"].as_str(), room["hasPin"].as_bool()), (Some("READY"), Some(true)));
    assert_eq!(
        (room["lobbyEnabled"].as_bool(), room["guestScreenShare"].as_bool(), room["aiAssistant"].as_bool()),
        (Some(true), Some(false), Some(true))
    );
    assert!(room.get("pinHash").is_none() && !room.to_string().contains("$2"), "no PIN hash anywhere: {room}");
    assert!(room["id"].as_str().unwrap().len() >= 22, "128-bit ids");
    let id = room["id"].as_str().unwrap();
    let code = room["inviteCode"].as_str().unwrap().to_owned();
    assert!(code.len() == 12 && code.chars().all(|c| c == '-' || c.is_ascii_lowercase()), "{code}");

    let (s, public) = t.client().get(&format!("/api/rooms/by-code/{}", code.to_uppercase())).await;
    assert_eq!(s, 200, "codes are case-insensitive: {public}");
    assert_eq!(public["requiresPin"], true);
    assert_eq!(public["hostName"], "ada");
    for private in ["inviteCode", "hostId", "pinHash", "hasPin", "participants", "entries", "maxParticipants"] {
        assert!(public.get(private).is_none(), "public view leaks {private}");
    }

    let (s, patched) = ada
        .patch(&format!("/api/rooms/{id}"), json!({"pin": null, "webinarMode": true, "maxParticipants": null}))
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!((patched["hasPin"].as_bool(), patched["webinarMode"].as_bool()), (Some(false), Some(true)));
    assert!(patched["maxParticipants"].is_null());
    let (s, patched) = ada.patch(&format!("/api/rooms/{id}"), json!({"name": "Renamed"})).await;
    assert_eq!(
        (s, patched["hasPin"].as_bool(), patched["webinarMode"].as_bool()),
        (200, Some(false), Some(true)),
        "absent fields stay"
    );
    for bad in [
        json!({"pin": "12a4"}),
        json!({"pin": "123"}),
        json!({"maxParticipants": 0}),
        json!({"name": ""}),
        json!({"owner": "x"}),
    ] {
        let (s, body) = ada.patch(&format!("/api/rooms/{id}"), bad.clone()).await;
        assert_eq!(s, 400, "{bad} → {body}");
    }

    let (s, regenerated) = ada.post(&format!("/api/rooms/{id}/invite-code"), json!({})).await;
    assert_eq!(s, 200);
    assert_ne!(regenerated["inviteCode"], code.as_str());
    let (s, body) = t.client().get(&format!("/api/rooms/by-code/{code}")).await;
    assert_eq!((s, error_code(&body)), (404, "invite_not_found"), "the old code stops working at once");

    let (s, list) = ada.get("/api/rooms").await;
    assert_eq!((s, list["rooms"].as_array().unwrap().len()), (200, 1));
    let (s, _) = ada.delete(&format!("/api/rooms/{id}")).await;
    assert_eq!(s, 204);
    assert_eq!(ada.get(&format!("/api/rooms/{id}")).await.0, 404);
    t.app.store().close().await;
}

async fn other_hosts_cannot_touch_a_room(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let admin = host(t, "admin@uni.edu").await; // first account: ADMIN
    let ada = host(t, "ada@uni.edu").await;
    let bob = host(t, "bob@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Ada's lecture"})).await;
    let id = room["id"].as_str().unwrap();
    let guest = t.client();
    let (_, joined) = join(&guest, id, "Ann", FP, None).await;
    let entry = ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"][0]["id"].as_str().unwrap().to_owned();

    let routes: Vec<(&str, String)> = vec![
        ("GET", format!("/api/rooms/{id}")),
        ("PATCH", format!("/api/rooms/{id}")),
        ("DELETE", format!("/api/rooms/{id}")),
        ("POST", format!("/api/rooms/{id}/invite-code")),
        ("POST", format!("/api/rooms/{id}/end")),
        ("POST", format!("/api/rooms/{id}/token")),
        ("GET", format!("/api/rooms/{id}/lobby")),
        ("POST", format!("/api/rooms/{id}/lobby/approve-all")),
        ("POST", format!("/api/rooms/{id}/lobby/{entry}/approve")),
        ("POST", format!("/api/rooms/{id}/lobby/{entry}/reject")),
        ("GET", format!("/api/rooms/{id}/events")),
    ];
    for (method, path) in &routes {
        let url = format!("{}{path}", t.base);
        let req = |b: &Browser| b.http.request(method.parse().unwrap(), &url).json(&json!({"name": "hijacked"}));
        let r = req(&bob).send().await.unwrap();
        assert_eq!(r.status(), 404, "host B on {method} {path}");
        let r = req(&guest).send().await.unwrap();
        assert_eq!(r.status(), 401, "a guest (no account) on {method} {path}");
    }
    let (s, _) = bob.get("/api/rooms?all=true").await;
    assert_eq!(s, 403, "only admins list every room");
    let (s, all) = admin.get("/api/rooms?all=true").await;
    assert_eq!((s, all["rooms"].as_array().unwrap().len()), (200, 1));
    let (s, _) = admin.get(&format!("/api/rooms/{id}")).await;
    assert_eq!(s, 200, "admins may read any room");
    let (s, tok) = admin.post(&format!("/api/rooms/{id}/token"), json!({})).await;
    assert_eq!(s, 200, "admins may enter any room: {tok}");

    // Nothing changed through the refused calls.
    let (_, still) = ada.get(&format!("/api/rooms/{id}")).await;
    assert_eq!((still["name"].as_str(), still["status"].as_str()), (Some("Ada's lecture"), Some("READY")));
    assert_eq!(joined["status"], "PENDING");
    assert_eq!(ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"].as_array().unwrap().len(), 1);
    assert!(w.lk.calls_for("DeleteRoom").is_empty());
}

async fn guest_waits_in_lobby_then_gets_a_token_over_sse(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Lecture"})).await;
    let id = room["id"].as_str().unwrap();
    let guest = t.client();
    let (s, joined) = join(&guest, id, "  Ann Student ", FP, None).await;
    assert_eq!(s, 201, "{joined}");
    assert_eq!(joined["status"], "PENDING");
    assert!(joined.get("token").is_none(), "no token before approval");
    let session = joined["sessionId"].as_str().unwrap().to_owned();
    assert!(session.len() >= 22);

    let mut stream = Sse::open(&guest.http, &guest_stream_url(t, id, &session)).await;
    let (name, first) = stream.next().await.unwrap();
    assert_eq!((name.as_str(), first["status"].as_str()), ("status", Some("PENDING")));
    assert!(first.get("token").is_none());

    let (_, lobby) = ada.get(&format!("/api/rooms/{id}/lobby")).await;
    let entry = &lobby["entries"][0];
    assert_eq!(entry["displayName"], "Ann Student");
    assert_eq!(entry["status"], "PENDING");
    assert!(entry["waitingSince"].is_string() && entry["waitingSeconds"].is_number());
    let text = lobby.to_string();
    assert!(!text.contains(FP) && !text.contains(&session), "the lobby never shows fingerprint or session: {text}");
    let entry_id = entry["id"].as_str().unwrap();

    let (s, _) = ada.post(&format!("/api/rooms/{id}/lobby/{entry_id}/approve"), json!({})).await;
    assert_eq!(s, 200);
    let (_, approved) = stream.next().await.unwrap();
    assert_eq!(approved["status"], "APPROVED");
    assert_eq!(approved["livekitUrl"].as_str().unwrap(), w.lk.url().replace("http://", "ws://"));
    assert!(stream.next().await.is_none(), "the stream ends after the decision");

    let token = approved["token"].as_str().unwrap();
    let claims = TokenVerifier::with_api_key("APItestkey", "test-secret-that-is-long-enough").verify(token).unwrap();
    assert!(claims.sub.starts_with("g_") && claims.sub != session && !claims.sub.contains(&session), "opaque identity");
    assert_eq!(claims.name, "Ann Student");
    assert_eq!(claims.metadata, r#"{"role":"guest"}"#);
    assert_eq!(claims.video.room, room["livekitRoomName"].as_str().unwrap(), "scoped to this lecture's LiveKit room");
    assert!(claims.video.room_join && !claims.video.room_admin && !claims.video.room_create && !claims.video.room_list);
    assert_eq!(claims.video.can_publish, Some(true));
    assert_eq!(claims.video.can_subscribe, Some(true));
    assert_eq!(claims.video.can_publish_data, Some(true));
    assert_eq!(claims.video.can_update_own_metadata, Some(false));
    assert_eq!(claims.video.can_publish_sources, ["camera", "microphone"]);
    assert!(claims.exp - claims.nbf <= 601, "10-minute tokens");

    let (s, body) = ada.post(&format!("/api/rooms/{id}/lobby/{entry_id}/approve"), json!({})).await;
    assert_eq!((s, error_code(&body)), (409, "already_decided"), "no second token by approving twice");

    // Reconnecting after approval: the first event is the current state, with a fresh token.
    let mut again = Sse::open(&guest.http, &guest_stream_url(t, id, &session)).await;
    let (_, state) = again.next().await.unwrap();
    assert_eq!(state["status"], "APPROVED");
    assert!(state["token"].is_string());
    assert!(again.next().await.is_none());

    let (s, refreshed) = guest
        .http
        .post(format!("{}/api/rooms/{id}/guest-token", t.base))
        .header("x-confctl-session", &session)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(jwt_claims(refreshed["token"].as_str().unwrap())["sub"], claims.sub.as_str(), "same identity on reload");

    let r = guest.http.get(guest_stream_url(t, id, "not-a-session")).send().await.unwrap();
    assert_eq!(r.status(), 404, "the session is checked before the stream starts");
    let other = create_room(&ada, json!({"name": "Other"})).await;
    let r = guest.http.get(guest_stream_url(t, other["id"].as_str().unwrap(), &session)).send().await.unwrap();
    assert_eq!(r.status(), 404, "a session belongs to one room");

    // Rejection reaches the waiting guest with the reason.
    let (_, j2) = join(&t.client(), id, "Troll", "fp-troll-000000000000", None).await;
    let mut s2 = Sse::open(&guest.http, &guest_stream_url(t, id, j2["sessionId"].as_str().unwrap())).await;
    s2.next().await.unwrap();
    let e2 = ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = ada.post(&format!("/api/rooms/{id}/lobby/{e2}/reject"), json!({"reason": "wrong course"})).await;
    assert_eq!(s, 200);
    let (_, rejected) = s2.next().await.unwrap();
    assert_eq!((rejected["status"].as_str(), rejected["reason"].as_str()), (Some("REJECTED"), Some("wrong course")));
    assert!(rejected.get("token").is_none());
}

async fn join_checks_run_in_order_with_clear_errors(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let g = t.client();

    let room = create_room(&ada, json!({"name": "Locked", "locked": true, "pin": "1234"})).await;
    let id = room["id"].as_str().unwrap();
    let (s, body) = join(&g, id, "Ann", FP, Some("0000")).await;
    assert_eq!((s, error_code(&body)), (423, "room_locked"), "locked is checked before the PIN");
    ada.patch(&format!("/api/rooms/{id}"), json!({"locked": false, "maxParticipants": 1})).await;
    let (s, body) = join(&g, id, "Ann", FP, None).await;
    assert_eq!((s, error_code(&body)), (403, "wrong_pin"));
    assert!(body["error"]["message"].as_str().unwrap().contains("PIN"));
    let (s, body) = join(&g, id, "Ann", FP, Some("0000")).await;
    assert_eq!((s, error_code(&body)), (403, "wrong_pin"));
    let (s, first) = join(&g, id, "Ann", FP, Some("1234")).await;
    assert_eq!((s, first["status"].as_str()), (201, Some("PENDING")));
    ada.post(&format!("/api/rooms/{id}/lobby/approve-all"), json!({})).await;
    let (s, body) = join(&g, id, "Ben", "fp-ben-0000000000000", Some("1234")).await;
    assert_eq!((s, error_code(&body)), (409, "room_full"));

    // A banned fingerprint is refused even with a brand-new session; the old session id is a second key.
    let banned_room = create_room(&ada, json!({"name": "Bans"})).await;
    let bid = banned_room["id"].as_str().unwrap();
    let (_, j) = join(&g, bid, "Troll", "fp-troll-000000000000", None).await;
    let host_id = banned_room["hostId"].as_str().unwrap();
    sqlx::query("INSERT INTO bans (id, room_id, host_id, fingerprint, session_hash, created_at) VALUES ('b1', $1, $2, 'fp-troll-000000000000', $3, 0)")
        .bind(bid)
        .bind(host_id)
        .bind(confctl::ids::session_hash(j["sessionId"].as_str().unwrap()))
        .execute(t.app.store().raw_pool_for_tests())
        .await
        .unwrap();
    let (s, body) = join(&g, bid, "Troll again", "fp-troll-000000000000", None).await;
    assert_eq!((s, error_code(&body)), (403, "banned"));
    let r = g
        .http
        .post(format!("{}/api/rooms/{bid}/join", t.base))
        .header("x-confctl-session", j["sessionId"].as_str().unwrap())
        .json(&json!({"displayName": "New Me", "sessionFingerprint": "fp-fresh-browser-0000", "inviteCode": banned_room["inviteCode"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a known banned session with a new fingerprint is refused too");

    let code = banned_room["inviteCode"].as_str().unwrap();
    for (body, code) in [
        (json!({"displayName": "", "sessionFingerprint": FP, "inviteCode": code}), "invalid_display_name"),
        (json!({"displayName": "x".repeat(65), "sessionFingerprint": FP, "inviteCode": code}), "invalid_display_name"),
        (json!({"displayName": "new\nline", "sessionFingerprint": FP, "inviteCode": code}), "invalid_display_name"),
        (json!({"displayName": "Ann", "sessionFingerprint": "short", "inviteCode": code}), "invalid_fingerprint"),
        (json!({"displayName": "Ann", "inviteCode": code}), "invalid_body"),
        (json!({"displayName": "Ann", "sessionFingerprint": FP}), "invalid_body"),
        (
            json!({"displayName": "Ann", "sessionFingerprint": FP, "inviteCode": code, "status": "APPROVED"}),
            "invalid_body",
        ),
    ] {
        let (s, err) = g.post(&format!("/api/rooms/{bid}/join"), body.clone()).await;
        assert_eq!((s, error_code(&err)), (400, code), "{body}");
    }
    let (s, body) = join(&g, "no-such-room", "Ann", FP, None).await;
    assert_eq!((s, error_code(&body)), (404, "room_not_found"));

    ada.post(&format!("/api/rooms/{bid}/archive"), json!({})).await;
    let (s, body) = join(&g, bid, "Late", FP, None).await;
    assert_eq!((s, error_code(&body)), (410, "room_archived"));
}

async fn wrong_pins_are_limited_with_retry_after(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "PIN", "pin": "97531"})).await;
    let id = room["id"].as_str().unwrap();
    let g = t.client();
    for _ in 0..5 {
        assert_eq!(join(&g, id, "Mallory", "fp-mallory-0000000000", Some("11111")).await.0, 403);
    }
    let r = g
        .http
        .post(format!("{}/api/rooms/{id}/join", t.base))
        .json(&json!({"displayName": "Mallory", "sessionFingerprint": "fp-mallory-0000000000", "pin": "97531", "inviteCode": room["inviteCode"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "even the right PIN waits once the limit is hit");
    assert!(r.headers().get("retry-after").is_some());
    let audit = support::audit_of(&t.app, None, "room.pin_failed", 50).await;
    assert_eq!(audit.len(), 5, "each failed PIN is audited");
    assert_eq!(audit[0].room_id.as_deref(), Some(id));
}

async fn no_lobby_webinar_and_screen_share_shape_the_token(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Open", "lobbyEnabled": false, "webinarMode": true})).await;
    let id = room["id"].as_str().unwrap();
    let (s, joined) = join(&t.client(), id, "Ann", FP, None).await;
    assert_eq!((s, joined["status"].as_str()), (201, Some("APPROVED")));
    let claims = jwt_claims(joined["token"].as_str().unwrap());
    assert_eq!(claims["video"]["canPublish"], false, "webinar guests cannot publish");
    assert_eq!(claims["video"]["canPublishData"], true, "but can raise hands and chat");
    assert!(joined["livekitUrl"].is_string());

    ada.patch(&format!("/api/rooms/{id}"), json!({"webinarMode": false, "guestScreenShare": true})).await;
    let (_, joined) = join(&t.client(), id, "Ben", "fp-ben-0000000000000", None).await;
    let claims = jwt_claims(joined["token"].as_str().unwrap());
    assert_eq!(claims["video"]["canPublish"], true);
    assert_eq!(
        claims["video"]["canPublishSources"],
        json!(["camera", "microphone", "screen_share", "screen_share_audio"])
    );

    let (s, host_token) = ada.post(&format!("/api/rooms/{id}/token"), json!({})).await;
    assert_eq!(s, 200);
    let claims = jwt_claims(host_token["token"].as_str().unwrap());
    assert_eq!(claims["metadata"], r#"{"role":"host"}"#);
    assert_eq!(claims["video"]["canPublish"], true);
    assert_eq!(claims["video"]["roomJoin"], true);
    assert!(claims["video"].get("roomAdmin").is_none_or(|v| v == false), "no server-API rights in a browser token");
    assert_eq!(host_token["identity"], claims["sub"]);
    let created = w.lk.calls_for("CreateRoom");
    assert_eq!(created.len(), 1, "the room is opened at LiveKit ahead of the host");
    assert!(created[0].grants.room_create);
    let (_, now) = ada.get(&format!("/api/rooms/{id}")).await;
    assert_eq!(created[0].request_json["name"], now["livekitRoomName"], "the LiveKit room of the current lecture");
    assert_eq!(created[0].request_json["emptyTimeout"], 1800, "long enough for a host stepping out");
    assert_eq!(created[0].request_json["departureTimeout"], 600);
}

async fn the_lobby_leaks_nothing_before_approval(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Private", "pin": "4321"})).await;
    let id = room["id"].as_str().unwrap();
    let g = t.client();
    let (_, joined) = join(&g, id, "Waiting", FP, Some("4321")).await;
    let session = joined["sessionId"].as_str().unwrap();
    let with_session = |req: reqwest::RequestBuilder| req.header("x-confctl-session", session);

    let r = with_session(g.http.post(format!("{}/api/rooms/{id}/guest-token", t.base))).send().await.unwrap();
    let (s, body) = support::read(r).await;
    assert_eq!((s, error_code(&body)), (403, "not_admitted"));
    for path in [format!("/api/rooms/{id}"), format!("/api/rooms/{id}/lobby"), format!("/api/rooms/{id}/events")] {
        let r = with_session(g.http.get(format!("{}{path}", t.base))).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = with_session(g.http.post(format!("{}/api/rooms/{id}/token", t.base))).send().await.unwrap();
    assert_eq!(r.status(), 401, "the host token route needs an account");
    let (_, public) = g.get(&format!("/api/rooms/by-code/{}", room["inviteCode"].as_str().unwrap())).await;
    let text = public.to_string();
    assert!(!text.contains("4321") && !text.contains("Waiting") && !text.contains("$2"), "{text}");
    let calls: Vec<_> = w.lk.calls().into_iter().filter(|c| c.method != "ListRooms").collect();
    assert!(calls.is_empty(), "nothing about a waiting guest reached LiveKit: {calls:?}");
}

async fn host_sees_the_lobby_live_and_approve_all_respects_the_cap(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Capped", "maxParticipants": 2})).await;
    let id = room["id"].as_str().unwrap();
    let mut events = Sse::open(&ada.http, &format!("{}/api/rooms/{id}/events", t.base)).await;
    let (name, snapshot) = events.next().await.unwrap();
    assert_eq!((name.as_str(), snapshot["entries"].as_array().unwrap().len()), ("lobby", 0));

    let mut sessions = Vec::new();
    for (i, name) in ["Ann", "Ben", "Cy"].iter().enumerate() {
        let (_, j) = join(&t.client(), id, name, &format!("fp-guest-{i}-00000000000"), None).await;
        sessions.push(j["sessionId"].as_str().unwrap().to_owned());
        let (event, data) = events.next().await.unwrap();
        assert_eq!(event, "guest_waiting");
        assert_eq!(data["entry"]["displayName"], *name);
        assert!(!data.to_string().contains("fp-guest"), "no fingerprints in host events");
    }
    let (s, result) = ada.post(&format!("/api/rooms/{id}/lobby/approve-all"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!((result["approved"].as_u64(), result["stillWaiting"].as_u64()), (Some(2), Some(1)), "the cap holds");
    let (event, data) = events.next().await.unwrap();
    assert_eq!(event, "lobby_decided");
    assert_eq!(data["entries"].as_array().unwrap().len(), 2);
    let (_, lobby) = ada.get(&format!("/api/rooms/{id}/lobby")).await;
    assert_eq!(lobby["entries"][0]["displayName"], "Cy", "the latest arrival still waits");

    // A waiting guest whose page goes away is shown as gone, and announced again on coming back.
    let mut cy = Sse::open(&t.client().http, &guest_stream_url(t, id, &sessions[2])).await;
    cy.next().await.unwrap();
    drop(cy);
    let (event, data) = events.next().await.unwrap();
    assert_eq!(event, "guest_left", "Cy was announced at the join, not again by the stream");
    assert_eq!(data["entryId"], lobby["entries"][0]["id"]);
    let mut cy = Sse::open(&t.client().http, &guest_stream_url(t, id, &sessions[2])).await;
    cy.next().await.unwrap();
    let (event, _) = events.next().await.unwrap();
    assert_eq!(event, "guest_waiting", "a reconnecting guest is announced again");
}

/// The streams of one "approve all" read the stored state together (one read for the batch, shared by every
/// stream): each still hears its own status and its own token, and a guest banned just before hears that.
async fn approve_all_hands_every_waiting_stream_its_own_token(db: Db) {
    let w = WithLiveKit::spawn(db, &[("rate_limits.lobby_streams_per_ip", "50")]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Many at once"})).await;
    let id = room["id"].as_str().unwrap();
    let mut guests = Vec::new();
    for i in 0..8 {
        let name = format!("Guest {i}");
        let (s, j) = join(&t.client(), id, &name, &format!("fp-many-{i}-000000000000"), None).await;
        assert_eq!((s, j["status"].as_str()), (201, Some("PENDING")), "{j}");
        let session = j["sessionId"].as_str().unwrap().to_owned();
        let mut stream = Sse::open(&t.client().http, &guest_stream_url(t, id, &session)).await;
        assert_eq!(stream.next().await.unwrap().1["status"], "PENDING");
        guests.push((name, session, stream));
    }
    // The last guest is banned while waiting: turned away with the reason, not let in by "approve all".
    let (_, session, mut banned) = guests.pop().unwrap();
    let record = t.app.store().participant_by_session(&confctl::ids::session_hash(&session)).await.unwrap().unwrap();
    let (s, body) = ada.post(&format!("/api/rooms/{id}/participants/{}/ban", record.identity), json!({})).await;
    assert_eq!(s, 201, "{body}");
    let (_, status) = banned.next().await.unwrap();
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("REJECTED"), Some("banned")), "{status}");

    let (s, result) = ada.post(&format!("/api/rooms/{id}/lobby/approve-all"), json!({})).await;
    assert_eq!((s, result["approved"].as_u64()), (200, Some(7)), "{result}");
    let mut identities = std::collections::HashSet::new();
    for (name, _, stream) in &mut guests {
        let (_, status) = stream.next().await.unwrap();
        assert_eq!(status["status"], "APPROVED", "{name}: {status}");
        let claims = jwt_claims(status["token"].as_str().unwrap());
        assert_eq!(claims["name"], name.as_str(), "{claims}");
        identities.insert(claims["sub"].as_str().unwrap().to_owned());
        assert!(stream.next().await.is_none(), "the stream ends once decided");
    }
    assert_eq!(identities.len(), 7, "a token of its own for every guest");
}

async fn webhooks_are_verified_idempotent_and_drive_the_lifecycle(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Hooks"})).await;
    let id = room["id"].as_str().unwrap();
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    let url = w.webhook_url();

    for tamper in [
        WebhookTamper::TamperedBody,
        WebhookTamper::WrongSecret,
        WebhookTamper::WrongApiKey,
        WebhookTamper::MissingAuthorization,
    ] {
        let d = w.lk.send_webhook_with(&url, events::room_started(&lk_room), tamper).await.unwrap();
        assert_eq!(d.status, Some(401), "{tamper:?}");
    }
    assert_eq!(ada.get(&format!("/api/rooms/{id}")).await.1["status"], "READY", "forged webhooks change nothing");

    let started = events::room_started(&lk_room);
    assert_eq!(w.lk.send_webhook(&url, started.clone()).await.unwrap().status, Some(200));
    let (_, r) = ada.get(&format!("/api/rooms/{id}")).await;
    assert_eq!(r["status"], "LIVE");
    let started_at = r["startedAt"].clone();
    assert_eq!(w.lk.send_webhook(&url, started).await.unwrap().status, Some(200), "a retried event is acknowledged");
    assert_eq!(ada.get(&format!("/api/rooms/{id}")).await.1["startedAt"], started_at);

    let unknown = events::new_event("egress_started");
    assert_eq!(w.lk.send_webhook(&url, unknown).await.unwrap().status, Some(200), "unknown events are ignored");
    let foreign = w.lk.add_room("someone-elses-room");
    assert_eq!(w.lk.send_webhook(&url, events::room_finished(&foreign)).await.unwrap().status, Some(200));

    // Participant history, including a `left` that arrives before its `joined`.
    let g = t.client();
    let (_, j) = join(&g, id, "Ann", FP, None).await;
    let entry = ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"][0]["id"].as_str().unwrap().to_owned();
    ada.post(&format!("/api/rooms/{id}/lobby/{entry}/approve"), json!({})).await;
    let identity = t
        .app
        .store()
        .participant_by_session(&confctl::ids::session_hash(j["sessionId"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap()
        .identity;
    let p = w.lk.add_participant(&lk_room.name, &identity, "Ann", "{}", None);
    let left = events::participant_left(&lk_room, &p);
    let joined = events::participant_joined(&lk_room, &p);
    assert_eq!(w.lk.send_webhook(&url, left).await.unwrap().status, Some(200));
    let lecture_id = r["lectureId"].as_str().unwrap();
    let rec = t.app.store().participant_by_identity(lecture_id, &identity).await.unwrap().unwrap();
    assert!(rec.left_at.is_some() && rec.joined_at.is_some(), "left without joined still records the visit");
    assert_eq!(w.lk.send_webhook(&url, joined).await.unwrap().status, Some(200));
    let rec = t.app.store().participant_by_identity(lecture_id, &identity).await.unwrap().unwrap();
    assert!(rec.joined_at.is_some());

    // room_finished ends the lecture and turns away whoever still waits; the room is ready for the next.
    let (_, waiting) = join(&t.client(), id, "Late", "fp-late-00000000000000", None).await;
    let mut stream = Sse::open(&g.http, &guest_stream_url(t, id, waiting["sessionId"].as_str().unwrap())).await;
    stream.next().await.unwrap();
    assert_eq!(w.lk.send_webhook(&url, events::room_finished(&lk_room)).await.unwrap().status, Some(200));
    let (_, ended) = stream.next().await.unwrap();
    assert_eq!(ended["status"], "REJECTED");
    let (_, r) = ada.get(&format!("/api/rooms/{id}")).await;
    assert_eq!((r["status"].as_str(), r["lectureNumber"].as_i64()), (Some("READY"), Some(2)));
    assert_ne!(r["lectureId"].as_str(), Some(lecture_id), "the next lecture is a new one");
    let (_, lectures) = ada.get(&format!("/api/rooms/{id}/lectures")).await;
    let first = &lectures["lectures"][0];
    assert_eq!((first["id"].as_str(), first["status"].as_str()), (Some(lecture_id), Some("ENDED")));
    assert!(first["endedAt"].is_string() && first["startedAt"] == started_at);
}

async fn ending_a_lecture_closes_it_everywhere(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Finale"})).await;
    let id = room["id"].as_str().unwrap();
    let lk_name = room["livekitRoomName"].as_str().unwrap();
    w.lk.add_room(lk_name);
    let g = t.client();
    let (_, waiting) = join(&g, id, "Ann", FP, None).await;
    let mut stream = Sse::open(&g.http, &guest_stream_url(t, id, waiting["sessionId"].as_str().unwrap())).await;
    stream.next().await.unwrap();

    let (s, ended) = ada.post(&format!("/api/rooms/{id}/end"), json!({})).await;
    assert_eq!(s, 200, "{ended}");
    assert_eq!((ended["room"]["status"].as_str(), ended["livekitClosed"].as_bool()), (Some("READY"), Some(true)));
    assert_eq!(ended["endedLectureId"], room["lectureId"]);
    let calls = w.lk.calls_for("DeleteRoom");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].room.as_deref(), Some(lk_name));
    assert!(calls[0].grants.room_create, "DeleteRoom is signed with roomCreate");
    assert_eq!(calls[0].status, 200);
    assert!(w.lk.room(lk_name).is_none());

    let (_, rejected) = stream.next().await.unwrap();
    assert_eq!(rejected["status"], "REJECTED");
    // The ended lecture admits no one: its waiting guest's session is over, and the room's next lecture has
    // a LiveKit room of its own.
    let response = g
        .http
        .post(format!("{}/api/rooms/{id}/guest-token", t.base))
        .header("x-confctl-session", waiting["sessionId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (s, body) = support::read(response).await;
    assert_eq!((s, error_code(&body)), (410, "room_ended"));
    let (_, next) = ada.get(&format!("/api/rooms/{id}")).await;
    assert_ne!(next["livekitRoomName"].as_str(), Some(lk_name));
    // Archiving is what closes a room to everyone.
    assert_eq!(ada.post(&format!("/api/rooms/{id}/archive"), json!({})).await.0, 200);
    assert_eq!(join(&g, id, "Late", "fp-late-00000000000000", None).await.0, 410);
    assert_eq!(ada.post(&format!("/api/rooms/{id}/token"), json!({})).await.0, 410);
    assert_eq!(ada.patch(&format!("/api/rooms/{id}"), json!({"locked": true})).await.0, 410);
    let (s, again) = ada.post(&format!("/api/rooms/{id}/end"), json!({})).await;
    assert_eq!(s, 200, "ending twice is harmless: {again}");
    let audit = support::audit_of(&t.app, Some(id), "lecture.end", 5).await;
    assert!(!audit.is_empty());
}

async fn reconciliation_repairs_lost_webhooks(db: Db) {
    let w = WithLiveKit::spawn(db, &[("livekit.empty_room_grace", "1s")]).await;
    let t = &w.t;
    let ada = host(t, "ada@uni.edu").await;
    let quiet = create_room(&ada, json!({"name": "Started without webhook"})).await;
    let stale = create_room(&ada, json!({"name": "Finished without webhook"})).await;
    let closed = create_room(&ada, json!({"name": "Ended while LiveKit was away"})).await;
    let (qid, sid, cid) =
        (quiet["id"].as_str().unwrap(), stale["id"].as_str().unwrap(), closed["id"].as_str().unwrap());

    let lk = |room: &serde_json::Value| room["livekitRoomName"].as_str().unwrap().to_owned();
    w.lk.add_room(&lk(&quiet));
    // A live lecture whose room_finished was lost: started an hour ago, gone from LiveKit.
    let stale_lk = w.lk.add_room(&lk(&stale));
    let mut started = events::room_started(&stale_lk);
    started.created_at -= 3600;
    w.lk.send_webhook(&w.webhook_url(), started).await.unwrap();
    w.lk.remove_room(&lk(&stale));
    // Ended here while LiveKit was unreachable; LiveKit still has it open.
    sqlx::query("UPDATE lectures SET status = 'ENDED', ended_at = 1 WHERE room_id = $1")
        .bind(cid)
        .execute(t.app.store().raw_pool_for_tests())
        .await
        .unwrap();
    w.lk.add_room(&lk(&closed));
    w.lk.add_room("not-ours");

    let mut reconciler = confctl::rooms::lifecycle::Reconciler::default();
    let first = reconciler.pass(&t.app).await.unwrap();
    assert_eq!((first.activated, first.ended, first.closed), (1, 0, 1), "a missing room is not ended at first sight");
    assert_eq!(ada.get(&format!("/api/rooms/{sid}")).await.1["status"], "LIVE", "LiveKit may just be restarting");
    // Missing for longer than the grace period (1 s here): now it is over.
    t.app.clock().advance(std::time::Duration::from_millis(1100));
    let second = reconciler.pass(&t.app).await.unwrap();
    assert_eq!((second.activated, second.ended, second.closed), (0, 1, 0));
    assert_eq!(ada.get(&format!("/api/rooms/{qid}")).await.1["status"], "LIVE");
    assert_eq!(ada.get(&format!("/api/rooms/{sid}")).await.1["status"], "READY", "its lecture ended");
    assert!(w.lk.room(&lk(&closed)).is_none());
    assert!(w.lk.room("not-ours").is_some(), "rooms that are not confctl's are left alone");
    assert!(w.lk.calls_for("ListRooms").iter().all(|c| c.grants.room_list && c.status == 200));
    assert_eq!(reconciler.pass(&t.app).await.unwrap(), Default::default(), "a further pass finds nothing");

    // A room that comes back within the grace period is left alone.
    let (_, back) = ada.post("/api/rooms", json!({"name": "Media server restart"})).await;
    let bid = back["id"].as_str().unwrap();
    let lk_back = w.lk.add_room(&lk(&back));
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_back)).await.unwrap();
    w.lk.remove_room(&lk(&back));
    reconciler.pass(&t.app).await.unwrap();
    w.lk.add_room(&lk(&back));
    t.app.clock().advance(std::time::Duration::from_millis(1100));
    assert_eq!(reconciler.pass(&t.app).await.unwrap().ended, 0);
    assert_eq!(ada.get(&format!("/api/rooms/{bid}")).await.1["status"], "LIVE");
}

async fn decisions_survive_a_restart(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let ada = host(&w.t, "ada@uni.edu").await;
    let room = create_room(&ada, json!({"name": "Durable"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let g = w.t.client();
    let (_, joined) = join(&g, &id, "Ann", FP, None).await;
    let session = joined["sessionId"].as_str().unwrap().to_owned();
    let entry = ada.get(&format!("/api/rooms/{id}/lobby")).await.1["entries"][0]["id"].as_str().unwrap().to_owned();
    ada.post(&format!("/api/rooms/{id}/lobby/{entry}/approve"), json!({})).await;

    let t = w.t.restart().await;
    let mut stream = Sse::open(&t.client().http, &guest_stream_url(&t, &id, &session)).await;
    let (_, state) = stream.next().await.unwrap();
    assert_eq!(state["status"], "APPROVED", "the approval was durable");
    assert!(state["token"].is_string());
    t.stop().await;
}
