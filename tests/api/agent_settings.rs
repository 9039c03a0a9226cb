//! The assistant follows the global AI settings without a restart: one worker (what `confctl agent` and
//! `serve --with-agent` run) summarises one lecture with its configured LLM, the next with the built-in
//! summariser in the new default language, then with another chat model, then not at all — each change made
//! through the admin API between lectures while the worker keeps running. While a lecture is live, the
//! worker's status reports make the room `captioning` in the monitor.
use std::time::{Duration, Instant};

use crate::support::agent::RunningAgent;
use crate::support::{Browser, Db, WithLiveKit, with_token};
use confctl::audit::Actor;
use confctl_doubles::webhook::events;
use confctl_doubles::{LlmDouble, LlmReply};
use serde_json::{Value, json};

const ANSWER: &str = r#"{"abstract": "Light bends in glass.",
  "keyTopics": [{"topic": "refraction", "segmentIds": ["s1", "s2"]}], "actionItems": [], "qa": []}"#;

/// Waits up to `secs` for `check` to give a value.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(secs: u64, what: &str, check: impl Fn() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One lecture from start to artifact: the room goes live, the in-process assistant joins and reports, two
/// captions arrive (as the assistant posts them), the host ends it; returns the artifact.
async fn lecture(w: &WithLiveKit, host: &Browser, agent: &str, name: &str) -> Value {
    let (_, room) = host.post("/api/rooms", json!({"name": name, "lobbyEnabled": false})).await;
    let (id, lecture) = (room["id"].as_str().unwrap(), room["lectureId"].as_str().unwrap());
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_room)).await.unwrap();
    let state = eventually(20, "the assistant never reported from the lecture", || async {
        let record = w.t.app.store().room_by_id(id).await.unwrap();
        let status = confctl::artifacts::assistant_status(&w.t.app, &record);
        (status.state != confctl::artifacts::health::AssistantState::Joining).then_some(status)
    })
    .await;
    assert_eq!(state.state, confctl::artifacts::health::AssistantState::Captioning, "{state:?}");
    for (n, text) in ["Light slows down in glass.", "So it bends at the surface."].iter().enumerate() {
        let start = i64::try_from(n).unwrap() * 3_000;
        let caption = json!({"segmentId": format!("s{n}"), "speakerIdentity": "h_ada", "speakerName": "Ada",
            "text": text, "final": true, "startMs": start, "endMs": start + 2_500, "language": "en"});
        let (s, _) =
            with_token(&w.t.base, agent, "POST", &format!("/api/agent/lectures/{lecture}/captions"), Some(caption))
                .await;
        assert_eq!(s, 202);
    }
    assert_eq!(host.post(&format!("/api/rooms/{id}/end"), json!({})).await.0, 200);
    let artifact = format!("/api/agent/lectures/{lecture}/artifact");
    eventually(30, "no artifact", || async {
        let (s, body) = with_token(&w.t.base, agent, "GET", &artifact, None).await;
        // "pending" until the worker's artifact arrives.
        (s == 200 && body["status"] != "pending").then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_assistant_follows_setting_changes_between_lectures() {
    let llm = LlmDouble::start(vec![LlmReply::Content(ANSWER.to_owned())]).await.unwrap();
    // The server's defaults as the worker's: the LLM at the double.
    let w = WithLiveKit::spawn(Db::Sqlite, &[("agent.llm_url", &llm.url())]).await;
    let worker = RunningAgent::with_llm(&w.t, &llm.url()).await;
    let admin = w.t.client();
    admin.register("root@uni.edu", "Root").await;
    let (_, agent) = confctl::accounts::agent_tokens::create(&w.t.app, &Actor::cli(), "captions").await.unwrap();

    // As configured: the LLM, its configured model, the configured language.
    let first = lecture(&w, &admin, &agent, "Optics 1").await;
    assert_eq!((first["summaryKind"].as_str(), first["model"].as_str()), (Some("llm"), Some("gpt-4o-mini")), "{first}");
    assert_eq!(first["summary"]["language"], "en");
    assert_eq!(llm.requests().len(), 1);

    // The built-in summariser and Russian from now on.
    let (s, _) = admin.patch("/api/admin/settings", json!({"summariser": "extractive", "defaultLanguage": "ru"})).await;
    assert_eq!(s, 200);
    let second = lecture(&w, &admin, &agent, "Optics 2").await;
    assert_eq!(
        (second["summaryKind"].as_str(), second["summary"]["language"].as_str()),
        (Some("extractive"), Some("ru")),
        "{second}"
    );
    assert_eq!(llm.requests().len(), 1, "the model was not asked");

    // The LLM again (the configured default), with another model.
    admin.patch("/api/admin/settings", json!({"summariser": null, "llmModel": "llama3.1:8b"})).await;
    let third = lecture(&w, &admin, &agent, "Optics 3").await;
    assert_eq!((third["summaryKind"].as_str(), third["model"].as_str()), (Some("llm"), Some("llama3.1:8b")), "{third}");
    assert_eq!(llm.requests().last().unwrap()["model"], "llama3.1:8b");

    // No summaries: the transcript is still written.
    admin.patch("/api/admin/settings", json!({"summaries": false})).await;
    let fourth = lecture(&w, &admin, &agent, "Optics 4").await;
    assert_eq!((fourth["status"].as_str(), fourth["summary"].clone()), (Some("complete"), Value::Null), "{fourth}");
    assert!(fourth["transcriptText"].as_str().unwrap().contains("bends at the surface"), "{fourth}");
    assert_eq!(llm.requests().len(), 2);
    worker.stop().await;
}
