//! Checks that the double's webhooks pass (and its forged ones fail) the real SDK's `WebhookReceiver`, and that the control surface and binary work.

// Helpers outside #[test] fns are test code too; a panic is how they report failure.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use confctl_doubles::webhook::{WEBHOOK_CONTENT_TYPE, events};
use confctl_doubles::{LiveKitDouble, LiveKitDoubleConfig, WebhookTamper};
use livekit_api::access_token::TokenVerifier;
use livekit_api::webhooks::WebhookReceiver;
use livekit_protocol as proto;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const KEY: &str = "hook-key";
const SECRET: &str = "hook-secret";

#[derive(Clone)]
struct Receiver {
    receiver: WebhookReceiver,
    events: Arc<Mutex<Vec<proto::WebhookEvent>>>,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    assert_eq!(headers.get("content-type").unwrap().to_str().unwrap(), WEBHOOK_CONTENT_TYPE);
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    match rx.receiver.receive(&body, auth) {
        Ok(event) => {
            rx.events.lock().unwrap().push(event);
            StatusCode::OK
        }
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

/// A minimal confctl-like receiver that trusts only what `WebhookReceiver` accepts.
async fn start_receiver() -> (String, Arc<Mutex<Vec<proto::WebhookEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let state = Receiver {
        receiver: WebhookReceiver::new(TokenVerifier::with_api_key(KEY, SECRET)),
        events: Arc::clone(&events),
    };
    let app = Router::new().route("/webhook", post(receive)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, events)
}

#[tokio::test]
async fn signed_webhook_is_accepted_and_tampered_ones_are_not() {
    let (url, received) = start_receiver().await;
    let double = LiveKitDouble::start(LiveKitDoubleConfig::new(KEY, SECRET)).await.unwrap();
    let room = double.add_room("lecture");
    let alice = double.add_participant("lecture", "alice", "Alice", "", None);

    let event = events::participant_joined(&room, &alice);
    let delivery = double.send_webhook(&url, event.clone()).await.unwrap();
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["event"], "participant_joined");
    assert_eq!(body["room"]["name"], "lecture");
    assert_eq!(body["participant"]["identity"], "alice");
    assert!(body["id"].as_str().unwrap().starts_with("EV_"));
    assert!(body["createdAt"].is_string(), "int64 is a JSON string");
    assert!(!delivery.authorization.as_deref().unwrap().starts_with("Bearer "));

    for tamper in [
        WebhookTamper::TamperedBody,
        WebhookTamper::WrongSecret,
        WebhookTamper::WrongApiKey,
        WebhookTamper::MissingAuthorization,
    ] {
        let delivery = double.send_webhook_with(&url, events::room_finished(&room), tamper).await.unwrap();
        assert_eq!(delivery.status, Some(401), "{tamper:?} must be rejected");
    }

    let received = received.lock().unwrap().clone();
    assert_eq!(received, [event]);
    assert_eq!(double.webhook_deliveries().len(), 5);
}

#[tokio::test]
async fn state_changes_are_announced_in_order() {
    let (url, received) = start_receiver().await;
    let double = LiveKitDouble::start(LiveKitDoubleConfig::new(KEY, SECRET)).await.unwrap();
    // Before a URL is set nothing is queued, so this room is never announced.
    double.add_room("silent");
    double.set_webhook_url(Some(url));

    let client = double.room_client();
    client.create_room("lecture", Default::default()).await.unwrap();
    double.add_participant("lecture", "alice", "Alice", "", None);
    double.add_participant("lecture", "bob", "Bob", "", None);
    client.remove_participant("lecture", "bob").await.unwrap();
    client.delete_room("lecture").await.unwrap();
    double.flush_webhooks().await;

    let names: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            let who = e.participant.as_ref().map(|p| p.identity.clone());
            (e.event.clone(), who)
        })
        .collect();
    let alice = Some("alice".to_owned());
    let bob = Some("bob".to_owned());
    assert_eq!(
        names,
        [
            ("room_started".to_owned(), None),
            ("participant_joined".to_owned(), alice.clone()),
            ("participant_joined".to_owned(), bob.clone()),
            ("participant_left".to_owned(), bob),
            ("participant_left".to_owned(), alice),
            ("room_finished".to_owned(), None),
        ]
    );
    assert!(double.webhook_deliveries().iter().all(|d| d.accepted()));
}

/// A control call with a JSON body.
async fn send_json(http: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> reqwest::Response {
    http.request(method, url).header("content-type", "application/json").body(body.to_string()).send().await.unwrap()
}

#[tokio::test]
async fn control_surface_drives_the_double() {
    let (url, received) = start_receiver().await;
    let double = LiveKitDouble::start(LiveKitDoubleConfig::new(KEY, SECRET)).await.unwrap();
    let http = reqwest::Client::new();
    let base = double.url();

    let resp =
        send_json(&http, reqwest::Method::PUT, format!("{base}/_double/webhook-url"), json!({ "url": url })).await;
    assert_eq!(resp.status().as_u16(), 204);

    let resp = send_json(
        &http,
        reqwest::Method::POST,
        format!("{base}/_double/rooms"),
        json!({ "name": "lecture", "metadata": "m" }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);

    let resp = send_json(
        &http,
        reqwest::Method::POST,
        format!("{base}/_double/rooms/lecture/participants"),
        json!({ "identity": "alice", "name": "Alice", "permission": { "canSubscribe": true } }),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);
    let alice = double.participant("lecture", "alice").unwrap();
    let permission = alice.permission.unwrap();
    assert!(permission.can_subscribe && !permission.can_publish);
    assert_eq!(double.room("lecture").unwrap().metadata, "m");

    double.room_client().remove_participant("lecture", "alice").await.unwrap();
    let calls: Value =
        http.get(format!("{base}/_double/calls?method=RemoveParticipant")).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls[0]["identity"], "alice");
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(calls[0]["grants"]["roomAdmin"], true);
    assert_eq!(calls[0]["requestJson"]["room"], "lecture");

    let delivery: Value = send_json(
        &http,
        reqwest::Method::POST,
        format!("{base}/_double/webhooks"),
        json!({ "event": { "event": "room_finished", "room": { "name": "lecture" } } }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(delivery["status"], 200);
    let forged: Value = send_json(
        &http,
        reqwest::Method::POST,
        format!("{base}/_double/webhooks"),
        json!({ "event": { "event": "room_finished" }, "tamper": "tampered_body" }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(forged["status"], 401);

    let deliveries: Value = http.get(format!("{base}/_double/webhooks")).send().await.unwrap().json().await.unwrap();
    let names: Vec<_> =
        deliveries.as_array().unwrap().iter().map(|d| d["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["room_started", "participant_joined", "participant_left", "room_finished", "room_finished"]);
    assert_eq!(received.lock().unwrap().len(), 4);

    let resp = http.post(format!("{base}/_double/reset")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(double.room_names().is_empty());
    assert!(double.calls().is_empty());
}

#[tokio::test]
async fn binary_prints_its_url_and_stops_on_sigterm() {
    confctl_doubles::install_crypto_provider();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_livekit-double"))
        .args(["--listen", "127.0.0.1:0", "--api-key", KEY, "--api-secret", SECRET])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line)).await.unwrap().unwrap();
    let url = line.trim_end().strip_prefix("LIVEKIT_DOUBLE_URL=").unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"));

    let health: Value = reqwest::get(format!("{url}/_double/health")).await.unwrap().json().await.unwrap();
    assert_eq!(health["ok"], true);
    let rooms =
        livekit_api::services::room::RoomClient::with_api_key(&url, KEY, SECRET).list_rooms(vec![]).await.unwrap();
    assert!(rooms.is_empty());

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}
