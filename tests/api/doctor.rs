//! `confctl doctor`'s checks against real parts: a database before and after migration, the local file
//! store, LiveKit (the double) and the configuration advice.

use confctl::doctor::{self, Verdict};

use crate::support::{Db, WithLiveKit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_report_each_part_with_hints() {
    let w = WithLiveKit::spawn(Db::Sqlite, &[("public_url", "https://lectures.example.edu")]).await;
    let checks = doctor::run(&w.t.config).await;
    let by_name = |n: &str| checks.iter().find(|c| c.name == n).unwrap_or_else(|| panic!("no {n} check"));
    assert_eq!(by_name("database").verdict, Verdict::Ok, "{:?}", by_name("database"));
    assert_eq!(by_name("storage").verdict, Verdict::Ok, "{:?}", by_name("storage"));
    assert_eq!(by_name("livekit").verdict, Verdict::Ok, "{:?}", by_name("livekit"));
    assert!(by_name("webhook").message.contains("https://lectures.example.edu/api/webhooks/livekit"));
    assert_eq!(by_name("certificate").verdict, Verdict::Ok);
    assert!(by_name("disk").message.contains("GiB free"));
    assert!(w.lk.calls_for("ListRooms").iter().any(|c| c.grants.room_list), "LiveKit was really asked");

    // A wrong secret, an unreachable store and a fresh database each fail with a hint.
    let mut broken = w.t.config.clone();
    broken.livekit.api_secret = confctl::secret::Secret::new("wrong-secret");
    broken.database_url =
        Some(confctl::secret::Secret::new(format!("sqlite://{}/fresh.db", w.t.data_dir.path().display())));
    let checks = doctor::run(&broken).await;
    let by_name = |n: &str| checks.iter().find(|c| c.name == n).unwrap().clone();
    assert_eq!(by_name("livekit").verdict, Verdict::Fail);
    assert!(by_name("livekit").hint.is_some());
    assert_eq!(by_name("database").verdict, Verdict::Fail);
    assert!(by_name("database").message.contains("pending"));
    w.t.stop().await;
}

#[test]
fn a_broken_configuration_is_a_failed_check() {
    let result = confctl::config::load(&confctl::config::Sources {
        env: vec![("CONFCTL_LISTEN".into(), "nowhere".into())],
        ..Default::default()
    });
    let check = doctor::config_check(&result);
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(check.message.contains("listen") && check.hint.is_some());
    let json = serde_json::to_value(&check).unwrap();
    assert_eq!(json["verdict"], "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_providers_are_checked_when_configured() {
    // A stand-in LLM API that only accepts one key: enough to see doctor send it and read the answer.
    let app = axum::Router::new().route(
        "/v1/models",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer good-key") {
                (axum::http::StatusCode::OK, "{\"data\":[]}")
            } else {
                (axum::http::StatusCode::UNAUTHORIZED, "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();

    let w = WithLiveKit::spawn(
        Db::Sqlite,
        &[
            ("agent.llm_url", llm.as_str()),
            ("agent.llm_api_key", "good-key"),
            ("agent.token", "cfa_test"),
            ("agent.stt_url", &format!("http://{closed}/v1")),
        ],
    )
    .await;
    let checks = doctor::run(&w.t.config).await;
    let find = |n: &str| checks.iter().find(|c| c.name == n).unwrap().clone();
    assert_eq!(find("llm").verdict, Verdict::Ok, "{:?}", find("llm"));
    assert_eq!(find("stt").verdict, Verdict::Fail, "nothing listens at stt_url");
    assert!(find("stt").hint.unwrap().contains("stt_url"));

    let mut wrong = w.t.config.clone();
    wrong.agent.llm_api_key = Some(confctl::secret::Secret::new("bad"));
    let checks = doctor::run(&wrong).await;
    let llm_check = checks.iter().find(|c| c.name == "llm").unwrap();
    assert_eq!(llm_check.verdict, Verdict::Fail);
    assert!(llm_check.message.contains("rejects the key"));
    w.t.stop().await;
}
