//! What the monitor's header and rooms list learn beyond the rooms themselves, on SQLite and PostgreSQL:
//! requests per second (in the snapshot, and on the event stream for a client that asks), and the assistant's
//! state in each room from its status reports and captions — joining, captioning, failing with its reason —
//! with an `assistant` event whenever that changes.
use std::time::Duration;

use crate::support::{Db, Sse, WithLiveKit, with_token};
use confctl::admin::tokens;
use confctl::audit::Actor;
use confctl::store::ApiTokenScope;
use confctl_doubles::webhook::events;
use serde_json::{Value, json};

on_both_databases!(requests_per_second_reach_the_header, the_assistant_state_follows_reports_and_captions);

fn bearer(token: &str) -> reqwest::Client {
    let auth = (reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers([auth].into_iter().collect()).build().unwrap()
}

async fn requests_per_second_reach_the_header(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let (_, read) = tokens::create(&t.app, &Actor::cli(), "watch", ApiTokenScope::Read, None).await.unwrap();
    let mut stream = Sse::open(&bearer(&read), &format!("{}/api/admin/events?instance=true", t.base)).await;
    for _ in 0..30 {
        reqwest::get(format!("{}/healthz", t.base)).await.unwrap();
    }
    // The rate counts whole seconds: the one in progress is not in it yet.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, snap) = with_token(&t.base, &read, "GET", "/api/admin/rooms", None).await;
    let rate = snap["instance"]["requestsPerSecond"].as_f64().unwrap();
    assert!((3.0..=5.0).contains(&rate), "30-odd requests in the last ten seconds: {rate} ({snap})");
    assert_eq!(snap["instance"]["eventStreams"], 1);
    // The stream brings the same figures every few seconds, without an id. On PostgreSQL the audit entry of
    // the token made above comes through the outbox a moment later, so it may reach the stream first.
    let (mut name, mut figures) = stream.next().await.unwrap();
    if name == "audit" {
        assert_eq!(figures["data"]["action"], "api_token.create", "{figures}");
        (name, figures) = stream.next().await.unwrap();
    }
    assert_eq!(name, "instance", "{figures}");
    assert!(figures["requestsPerSecond"].as_f64().unwrap() >= 3.0, "{figures}");
    assert_eq!((figures["eventStreams"].as_u64(), figures["assistantWorkers"].as_u64()), (Some(1), Some(0)));
}

/// The snapshot's row of one room.
async fn row(base: &str, token: &str, room_id: &str) -> Value {
    let (s, snap) = with_token(base, token, "GET", "/api/admin/rooms", None).await;
    assert_eq!(s, 200, "{snap}");
    snap["rooms"].as_array().unwrap().iter().find(|r| r["id"] == room_id).unwrap().clone()
}

async fn the_assistant_state_follows_reports_and_captions(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let host = t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, read) = tokens::create(&t.app, &Actor::cli(), "watch", ApiTokenScope::Read, None).await.unwrap();
    let (_, agent) = confctl::accounts::agent_tokens::create(&t.app, &Actor::cli(), "gpu").await.unwrap();
    let (_, room) = host.post("/api/rooms", json!({"name": "Optics", "lobbyEnabled": false})).await;
    let (_, quiet) = host.post("/api/rooms", json!({"name": "Seminar", "aiAssistant": false})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let lecture = room["lectureId"].as_str().unwrap();

    assert_eq!(row(&t.base, &read, &id).await["assistant"], "on", "not live yet");
    assert_eq!(row(&t.base, &read, quiet["id"].as_str().unwrap()).await["assistant"], "off");
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_room)).await.unwrap();
    assert_eq!(row(&t.base, &read, &id).await["assistant"], "joining", "just started, nothing heard yet");

    let mut stream = Sse::open(&bearer(&read), &format!("{}/api/admin/events", t.base)).await;
    let status = format!("/api/agent/lectures/{lecture}/status");
    let (s, answer) = with_token(&t.base, &agent, "POST", &status, Some(json!({}))).await;
    assert_eq!((s, answer["assistant"].as_str()), (200, Some("captioning")), "{answer}");
    let (name, event) = stream.next().await.unwrap();
    assert_eq!(
        (name.as_str(), event["roomId"].as_str(), event["data"]["assistant"].as_str()),
        ("assistant", Some(id.as_str()), Some("captioning"))
    );

    // Speech to text fails: the report says why, the monitor shows it.
    let problem = "speech to text fails: connection refused";
    let (s, _) = with_token(&t.base, &agent, "POST", &status, Some(json!({ "problem": problem }))).await;
    assert_eq!(s, 200);
    let (_, event) = stream.next().await.unwrap();
    assert_eq!(
        (event["data"]["assistant"].as_str(), event["data"]["assistantProblem"].as_str()),
        (Some("failing"), Some(problem))
    );
    let failing = row(&t.base, &read, &id).await;
    assert_eq!((failing["assistant"].as_str(), failing["assistantProblem"].as_str()), (Some("failing"), Some(problem)));

    // A caption shows it works again.
    let caption = json!({"segmentId": "s1", "speakerIdentity": "h_ada", "speakerName": "Ada", "text": "Light bends.",
        "final": true, "startMs": 0, "endMs": 900, "language": "en", "provider": "whisper"});
    let (s, _) =
        with_token(&t.base, &agent, "POST", &format!("/api/agent/lectures/{lecture}/captions"), Some(caption)).await;
    assert_eq!(s, 202);
    let (_, event) = stream.next().await.unwrap();
    assert_eq!(event["data"]["assistant"], "captioning", "{event}");
    let back = row(&t.base, &read, &id).await;
    assert_eq!((back["assistant"].as_str(), back["assistantProblem"].clone()), (Some("captioning"), Value::Null));
    assert!(back["lastCaptionAt"].is_string(), "{back}");

    // Reports are for lectures of rooms that want the assistant, from agent tokens only.
    let (s, _) = with_token(
        &t.base,
        &agent,
        "POST",
        &format!("/api/agent/lectures/{}/status", quiet["lectureId"].as_str().unwrap()),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = with_token(&t.base, &read, "POST", &status, Some(json!({}))).await;
    assert_eq!(s, 401);
    let (s, _) = with_token(&t.base, &agent, "POST", &status, Some(json!({"state": "fine"}))).await;
    assert_eq!(s, 400, "unknown fields are refused");
}
