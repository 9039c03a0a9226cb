//! The global AI settings on SQLite and PostgreSQL: who may read and change them (sessions and admin API
//! tokens), values checked field by field (all or nothing), the audit entry under the admin's name, new rooms
//! and the new-room form following the defaults, the assistant's lecture list and summary context carrying them,
//! and secrets never leaving the configuration file.
use crate::support::{Db, Sse, TestApp, WithLiveKit, error_code, with_token};
use confctl::admin::tokens;
use confctl::audit::Actor;
use confctl::store::ApiTokenScope;
use confctl_doubles::webhook::events;
use serde_json::{Value, json};

on_both_databases!(
    admins_and_tokens_read_and_change_the_settings,
    bad_values_are_refused_naming_the_field,
    rooms_and_the_assistant_follow_the_settings,
);

const SECRET: &str = "sk-live-never-show-this-0123456789";

async fn admins_and_tokens_read_and_change_the_settings(db: Db) {
    let t = TestApp::spawn(db, &[("agent.llm_api_key", SECRET), ("agent.llm_model", "llama3.1:8b")]).await;
    let admin = t.client();
    admin.register("root@uni.edu", "Root").await;
    let host = t.client();
    host.register("ada@uni.edu", "Ada").await;

    let (s, view) = admin.get("/api/admin/settings").await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(
        view["settings"],
        json!({"assistantDefault": true, "defaultLanguage": "en", "summaries": true, "summariser": "extractive",
               "llmModel": "llama3.1:8b"}),
        "the defaults come from [agent]; no llm_url means the extractive summariser"
    );
    assert_eq!(view["settings"], view["defaults"]);
    assert!(view["stored"].as_object().unwrap().values().all(Value::is_null), "{view}");
    assert!(!view.to_string().contains(SECRET), "API keys stay in the configuration file");

    let (s, body) = host.get("/api/admin/settings").await;
    assert_eq!((s, error_code(&body)), (403, "admin_only"));
    let (s, body) = host.patch("/api/admin/settings", json!({"summaries": false})).await;
    assert_eq!((s, error_code(&body)), (403, "admin_only"));

    // A read token looks; an admin token changes, audited under the token's name.
    let (_, read) = tokens::create(&t.app, &Actor::cli(), "dashboard", ApiTokenScope::Read, None).await.unwrap();
    let (_, full) = tokens::create(&t.app, &Actor::cli(), "ops", ApiTokenScope::Admin, None).await.unwrap();
    let (s, _) = with_token(&t.base, &read, "GET", "/api/admin/settings", None).await;
    assert_eq!(s, 200);
    let change = json!({"summaries": false});
    let (s, body) = with_token(&t.base, &read, "PATCH", "/api/admin/settings", Some(change.clone())).await;
    assert_eq!((s, error_code(&body)), (403, "read_only_token"));
    let (s, body) = with_token(&t.base, &full, "PATCH", "/api/admin/settings", Some(change)).await;
    assert_eq!(
        (s, body["settings"]["summaries"].as_bool(), body["stored"]["summaries"].as_bool()),
        (200, Some(false), Some(false))
    );

    // An admin's session: several at once, and a reset back to the default.
    let (s, view) = admin
        .patch("/api/admin/settings", json!({"defaultLanguage": " ru ", "summariser": "llm", "llmModel": "gpt-4o"}))
        .await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(
        (view["settings"]["defaultLanguage"].as_str(), view["settings"]["summariser"].as_str()),
        (Some("ru"), Some("llm"))
    );
    let (_, view) = admin.patch("/api/admin/settings", json!({"llmModel": null, "summaries": null})).await;
    assert_eq!(
        (view["settings"]["llmModel"].as_str(), view["stored"]["llmModel"].clone()),
        (Some("llama3.1:8b"), Value::Null)
    );
    assert_eq!(view["settings"]["summaries"], true);

    let (_, audit) = admin.get("/api/admin/audit?action=settings.update").await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    assert_eq!(entries[2]["actorLabel"], "token:ops");
    assert_eq!(entries[1]["actorLabel"], "root@uni.edu");
    assert_eq!(entries[1]["details"]["defaultLanguage"], json!({"from": "en", "to": "ru", "default": false}));
    assert_eq!(entries[0]["details"]["llmModel"], json!({"from": "gpt-4o", "to": "llama3.1:8b", "default": true}));
    assert!(!audit.to_string().contains(SECRET));
}

async fn bad_values_are_refused_naming_the_field(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let admin = t.client();
    admin.register("root@uni.edu", "Root").await;
    let cases = [
        (json!({"defaultLanguage": "English"}), "invalid_language", "defaultLanguage"),
        (json!({"llmModel": "llama 3"}), "invalid_llm_model", "llmModel"),
        (json!({"llmModel": ""}), "invalid_llm_model", "llmModel"),
        (json!({"summaries": "yes"}), "invalid_body", "summaries"),
        (json!({"summariser": "gpt"}), "invalid_body", "summariser"),
        (json!({"assistantDefault": 1}), "invalid_body", "assistantDefault"),
        (json!({"llmApiKey": "sk-x"}), "invalid_body", "llmApiKey"),
        // A good value beside a bad one: nothing is applied.
        (json!({"summaries": false, "defaultLanguage": "x"}), "invalid_language", "defaultLanguage"),
    ];
    for (body, code, field) in cases {
        let (s, answer) = admin.patch("/api/admin/settings", body.clone()).await;
        assert_eq!((s, error_code(&answer)), (400, code), "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: the message names {field}: {message}");
    }
    let (_, view) = admin.get("/api/admin/settings").await;
    assert!(view["stored"].as_object().unwrap().values().all(Value::is_null), "nothing stored: {view}");
    let (_, audit) = admin.get("/api/admin/audit?action=settings.update").await;
    assert_eq!(audit["entries"], json!([]));
    // An empty change changes nothing and is not audited.
    let (s, _) = admin.patch("/api/admin/settings", json!({})).await;
    assert_eq!(s, 200);
    let (_, audit) = admin.get("/api/admin/audit?action=settings.update").await;
    assert_eq!(audit["entries"], json!([]));
}

async fn rooms_and_the_assistant_follow_the_settings(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let t = &w.t;
    let admin = t.client();
    admin.register("root@uni.edu", "Root").await;
    let (_, agent) = confctl::accounts::agent_tokens::create(&t.app, &Actor::cli(), "gpu").await.unwrap();

    // The new-room form ticks the assistant box by default; with the default off it does not, and a room
    // created without saying has the assistant off.
    let form = |http: reqwest::Client| async move {
        http.get(format!("{}/rooms/new", t.base)).send().await.unwrap().text().await.unwrap()
    };
    assert!(form(admin.http.clone()).await.contains(r#"id="ai" checked"#));
    let (s, _) = admin.patch("/api/admin/settings", json!({"assistantDefault": false, "defaultLanguage": "ru"})).await;
    assert_eq!(s, 200);
    assert!(form(admin.http.clone()).await.contains(r#"id="ai">"#));
    let (_, quiet) = admin.post("/api/rooms", json!({"name": "Seminar"})).await;
    assert_eq!(quiet["aiAssistant"], false, "{quiet}");
    let (_, room) = admin.post("/api/rooms", json!({"name": "Biology", "aiAssistant": true})).await;
    assert_eq!((room["aiAssistant"].as_bool(), room["language"].clone()), (Some(true), Value::Null));
    let (room_id, lecture) = (room["id"].as_str().unwrap(), room["lectureId"].as_str().unwrap());

    // The assistant hears of the lecture with the default language as it is now, and reads the summary
    // settings with the context.
    let mut stream = Sse::open(
        &reqwest::Client::builder()
            .default_headers(
                [(reqwest::header::AUTHORIZATION, format!("Bearer {agent}").parse().unwrap())].into_iter().collect(),
            )
            .build()
            .unwrap(),
        &format!("{}/api/agent/lectures/stream", t.base),
    )
    .await;
    assert_eq!(stream.next().await.unwrap(), ("lectures".to_owned(), json!({"lectures": []})));
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_room)).await.unwrap();
    let (name, live) = stream.next().await.unwrap();
    assert_eq!((name.as_str(), live["language"].as_str()), ("lecture_live", Some("ru")), "{live}");

    let context = format!("/api/agent/lectures/{lecture}/context");
    let got = with_token(&t.base, &agent, "GET", &context, None).await.1;
    assert_eq!(got["lecture"]["language"], "ru");
    assert_eq!(got["settings"], json!({"enabled": true, "summariser": null, "llmModel": null}), "{got}");
    admin.patch("/api/admin/settings", json!({"summaries": false, "summariser": "extractive", "llmModel": "m1"})).await;
    let got = with_token(&t.base, &agent, "GET", &context, None).await.1;
    assert_eq!(got["settings"], json!({"enabled": false, "summariser": "extractive", "llmModel": "m1"}), "{got}");
    // A room's own language wins over the default.
    admin.patch(&format!("/api/rooms/{room_id}"), json!({"language": "de"})).await;
    assert_eq!(with_token(&t.base, &agent, "GET", &context, None).await.1["lecture"]["language"], "de");
}
