//! The assistant's API (docs/agent-api.md) on both databases: agent tokens, the room stream, the hidden
//! listen-only LiveKit token, captions published and stored, the summary context and the lecture artifact.

use confctl_doubles::webhook::events;
use livekit_api::access_token::TokenVerifier;
use serde_json::{Value, json};

use crate::support::{self, Db, Sse, WithLiveKit, error_code};

on_both_databases!(agent_tokens_gate_the_api, rooms_stream_tokens_captions_and_artifacts);

async fn agent_request(w: &WithLiveKit, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::with_token(&w.t.base, token, method, path, body).await
}

async fn agent_tokens_gate_the_api(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let (record, token) =
        confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "gpu-box").await.unwrap();
    assert!(token.starts_with("cfa_") && token.len() > 40);
    let (s, _) = agent_request(&w, &token, "GET", "/api/agent/lectures/x/context", None).await;
    assert_eq!(s, 404, "a valid token passes the gate (then the lecture is unknown)");
    for bad in ["", "cfa_not-a-real-token", "Bearer-less"] {
        let (s, body) = agent_request(&w, bad, "GET", "/api/agent/lectures/x/context", None).await;
        assert_eq!((s, error_code(&body)), (401, "invalid_agent_token"), "{bad:?}");
    }
    // A host's session cookie is not an agent token.
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    assert_eq!(host.get("/api/agent/lectures/x/context").await.0, 401);

    confctl::accounts::agent_tokens::revoke(&w.t.app, &confctl::audit::Actor::cli(), &record.id).await.unwrap();
    let (s, _) = agent_request(&w, &token, "GET", "/api/agent/lectures/x/context", None).await;
    assert_eq!(s, 401, "revoked at once");
    let listed = confctl::accounts::agent_tokens::list(&w.t.app).await.unwrap();
    assert!(listed[0].revoked_at.is_some() && listed[0].last_used_at.is_some());
    assert!(!serde_json::to_string(&listed).unwrap().contains(&token));
}

async fn rooms_stream_tokens_captions_and_artifacts(db: Db) {
    let w = WithLiveKit::spawn(db, &[("agent.default_language", "ru")]).await;
    let (_, token) =
        confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "local").await.unwrap();
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Biology", "lobbyEnabled": false})).await;
    let (_, quiet) = host.post("/api/rooms", json!({"name": "No assistant", "aiAssistant": false})).await;
    let id = room["lectureId"].as_str().unwrap().to_owned();
    let room_id = room["id"].as_str().unwrap().to_owned();
    let lk_name = room["livekitRoomName"].as_str().unwrap().to_owned();

    let http = reqwest::Client::builder()
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("authorization", format!("Bearer {token}").parse().unwrap());
            h
        })
        .build()
        .unwrap();
    let mut stream = Sse::open(&http, &format!("{}/api/agent/lectures/stream", w.t.base)).await;
    let (name, first) = stream.next().await.unwrap();
    assert_eq!((name.as_str(), first["lectures"].as_array().unwrap().len()), ("lectures", 0));

    // Before the lecture starts there is nothing to listen to: no token.
    let (s, body) = agent_request(&w, &token, "POST", &format!("/api/agent/lectures/{id}/token"), None).await;
    assert_eq!((s, error_code(&body)), (409, "room_not_live"), "a room that is not live gets no token");

    let lk_room = w.lk.add_room(&lk_name);
    let quiet_lk = w.lk.add_room(quiet["livekitRoomName"].as_str().unwrap());
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&quiet_lk)).await.unwrap();
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_room)).await.unwrap();
    let (name, active) = stream.next().await.unwrap();
    assert_eq!(name, "lecture_live", "only rooms with the assistant on are announced");
    assert_eq!((active["lectureId"].as_str(), active["roomId"].as_str()), (Some(id.as_str()), Some(room_id.as_str())));
    assert_eq!(active["livekitRoomName"], lk_name.as_str());
    assert_eq!(active["language"], "ru", "the configured default language");

    let (s, t) = agent_request(&w, &token, "POST", &format!("/api/agent/lectures/{id}/token"), None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["identity"], "confctl-assistant");
    assert!(t["livekitUrl"].as_str().unwrap().starts_with("ws://"));
    let claims = TokenVerifier::with_api_key("APItestkey", "test-secret-that-is-long-enough")
        .verify(t["token"].as_str().unwrap())
        .unwrap();
    let v = &claims.video;
    assert!(v.hidden && v.room_join && v.room == lk_name, "hidden and scoped to the lecture's room");
    assert_eq!(
        (v.can_subscribe, v.can_publish, v.can_publish_data),
        (Some(true), Some(false), Some(false)),
        "listen only"
    );
    assert_eq!(claims.metadata, r#"{"role":"assistant"}"#);
    let (s, _) = agent_request(
        &w,
        &token,
        "POST",
        &format!("/api/agent/lectures/{}/token", quiet["lectureId"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 404, "no assistant where it is switched off");

    // Captions: interim ones are only published; final ones are stored once.
    let caption = |text: &str, fin: bool, seg: &str, start: i64| {
        json!({"segmentId": seg, "speakerIdentity": "h_ada", "speakerName": "Ada", "text": text, "final": fin,
               "startMs": start, "endMs": start + 1500, "language": "en", "provider": "whisper"})
    };
    let path = format!("/api/agent/lectures/{id}/captions");
    let (s, r) = agent_request(&w, &token, "POST", &path, Some(caption("Plants convert", false, "s1", 1000))).await;
    assert_eq!((s, r["stored"].as_bool(), r["delivered"].as_bool()), (202, Some(false), Some(true)));
    let (_, r) = agent_request(
        &w,
        &token,
        "POST",
        &path,
        Some(caption("Plants convert sunlight into energy.", true, "s1", 1000)),
    )
    .await;
    assert_eq!(r["stored"], true);
    let (_, r) = agent_request(
        &w,
        &token,
        "POST",
        &path,
        Some(caption("Plants convert sunlight into energy.", true, "s1", 1000)),
    )
    .await;
    assert_eq!(r["stored"], false, "a retried final segment is stored once");
    agent_request(&w, &token, "POST", &path, Some(caption("Any questions about chlorophyll?", true, "s2", 4000))).await;
    let sent: Vec<Value> =
        w.lk.sent_data(&lk_name)
            .iter()
            .filter(|d| d.topic.as_deref() == Some("transcription"))
            .map(|d| serde_json::from_slice(&d.data).unwrap())
            .collect();
    assert_eq!(sent.len(), 4);
    let keys: Vec<&str> = sent[0].as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = ["segmentId", "speakerIdentity", "speakerName", "text", "final", "startMs", "endMs", "language"];
    expected.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, expected, "exactly the caption fields go to the room");
    assert_eq!(sent[0]["segmentId"], sent[1]["segmentId"], "interim and final share the segment id");
    for bad in [caption("x", true, "", 0), caption("x", true, "s9", -5), json!({"segmentId": "s"})] {
        let (s, _) = agent_request(&w, &token, "POST", &path, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}");
    }

    host.post(&format!("/api/rooms/{room_id}/chat"), json!({"text": "Slides are in the files panel."})).await;
    let (s, ctx) = agent_request(&w, &token, "GET", &format!("/api/agent/lectures/{id}/context"), None).await;
    assert_eq!(s, 200);
    let texts: Vec<&str> = ctx["segments"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Plants convert sunlight into energy.", "Any questions about chlorophyll?"]);
    assert_eq!(ctx["speakers"], json!(["Ada"]));
    assert_eq!((ctx["lecture"]["name"].as_str(), ctx["lecture"]["language"].as_str()), (Some("Biology"), Some("ru")));
    let mut keys: Vec<&str> = ctx.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["lecture", "segments", "settings", "speakers"], "no chat and no files for an agent token: {ctx}");
    assert!(!ctx.to_string().contains("Slides are in the files panel."), "{ctx}");

    // The lecture ends; the assistant hears it and writes the artifact.
    host.post(&format!("/api/rooms/{room_id}/end"), json!({})).await;
    let (name, ended) = stream.next().await.unwrap();
    assert_eq!((name.as_str(), ended["lectureId"].as_str()), ("lecture_ended", Some(id.as_str())));
    let (s, _) = agent_request(&w, &token, "POST", &format!("/api/agent/lectures/{id}/token"), None).await;
    assert_eq!(s, 410);
    let artifact = json!({
        "transcriptText": "[00:01] Ada: Plants convert sunlight into energy.\n",
        "transcriptVtt": "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n<v Ada>Plants convert sunlight into energy.\n",
        "summary": {"abstract": "Photosynthesis.", "keyTopics": [{"text": "photosynthesis", "startMs": 1000}], "actionItems": [], "qa": []},
        "summaryKind": "extractive", "provider": "confctl", "model": "extractive-v1", "status": "complete"
    });
    let (s, saved) =
        agent_request(&w, &token, "PUT", &format!("/api/agent/lectures/{id}/artifact"), Some(artifact)).await;
    assert_eq!(s, 200, "{saved}");
    assert_eq!(saved["summaryKind"], "extractive");
    assert!(saved["transcriptVtt"].as_str().unwrap().starts_with("WEBVTT"), "read back from object storage");
    let stored = w.t.app.storage().get_text(&format!("lectures/{id}/transcript.txt")).await.unwrap();
    assert!(stored.contains("sunlight"));

    let failed =
        json!({"transcriptText": "t", "transcriptVtt": "WEBVTT\n", "status": "failed", "error": "LLM quota exceeded"});
    let (_, replaced) =
        agent_request(&w, &token, "PUT", &format!("/api/agent/lectures/{id}/artifact"), Some(failed)).await;
    assert_eq!((replaced["status"].as_str(), replaced["error"].as_str()), (Some("failed"), Some("LLM quota exceeded")));
    let (s, _) = agent_request(
        &w,
        &token,
        "PUT",
        &format!("/api/agent/lectures/{id}/artifact"),
        Some(json!({"transcriptText": "t", "transcriptVtt": "", "status": "done"})),
    )
    .await;
    assert_eq!(s, 400);
}
