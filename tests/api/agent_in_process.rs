//! `confctl serve --with-agent`: the assistant worker runs inside the server, with an agent token it makes
//! for itself (revoking the previous one at every start), and joins rooms like a separate `confctl agent`.

use std::time::{Duration, Instant};

use confctl::config::{self, Sources};
use confctl::server::{ServeOptions, Server};
use confctl_doubles::webhook::events;
use confctl_doubles::{LiveKitDouble, LiveKitDoubleConfig};
use serde_json::json;

use crate::support;

type Running =
    (String, confctl::app::App, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>);

async fn serve_with_agent(lk: &LiveKitDouble, data_dir: &std::path::Path) -> Running {
    serve_with_agent_on(lk, data_dir, None).await
}

/// `database_url`: PostgreSQL shared with other replicas; `None`: SQLite in `data_dir`.
async fn serve_with_agent_on(lk: &LiveKitDouble, data_dir: &std::path::Path, database_url: Option<&str>) -> Running {
    let mut env: Vec<(String, String)> = [
        ("CONFCTL_DATA_DIR", data_dir.display().to_string()),
        ("CONFCTL_LISTEN", "127.0.0.1:0".to_owned()),
        ("CONFCTL_LIVEKIT__URL", lk.url()),
        ("CONFCTL_LIVEKIT__API_KEY", lk.api_key().to_owned()),
        ("CONFCTL_LIVEKIT__API_SECRET", lk.api_secret().to_owned()),
        ("CONFCTL_AGENT__WEBRTC_UDP_ADDR", "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(url) = database_url {
        env.push(("CONFCTL_DATABASE_URL".to_owned(), url.to_owned()));
    }
    let config = config::load(&Sources { env, ..Sources::default() }).unwrap();
    let server = Server::bind(config, &ServeOptions { with_agent: true, ..ServeOptions::default() }).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let app = server.app().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (base, app, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_agent_joins_rooms_with_its_own_token() {
    confctl::telemetry::init(confctl::config::LogFormat::Human, "warn");
    let lk =
        LiveKitDouble::start(LiveKitDoubleConfig::new("APItestkey", "test-secret-that-is-long-enough")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, app, stop, task) = serve_with_agent(&lk, dir.path()).await;

    let host = support::Browser {
        http: reqwest::Client::builder().cookie_store(true).build().unwrap(),
        base: base.clone(),
        app: app.clone(),
    };
    host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Biology", "lobbyEnabled": false})).await;
    let lk_room = lk.add_room(room["livekitRoomName"].as_str().unwrap());
    lk.send_webhook(&format!("{base}/api/webhooks/livekit"), events::room_started(&lk_room)).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while !lk.rtc_sessions().iter().any(|s| s.identity == "confctl-assistant" && s.room == lk_room.name) {
        assert!(Instant::now() < deadline, "the in-process assistant never joined: {:?}", lk.rtc_sessions());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tokens = confctl::accounts::agent_tokens::list(&app).await.unwrap();
    let own: Vec<_> = tokens.iter().filter(|t| t.name == "serve --with-agent").collect();
    assert_eq!(own.len(), 1);
    assert!(own[0].revoked_at.is_none() && own[0].last_used_at.is_some(), "{own:?}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap().unwrap();

    // A restart makes a new token and revokes the old one.
    let (_, app, stop, task) = serve_with_agent(&lk, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tokens = confctl::accounts::agent_tokens::list(&app).await.unwrap();
        let own: Vec<_> = tokens.iter().filter(|t| t.name == "serve --with-agent").collect();
        if own.len() == 2 {
            assert_eq!(own.iter().filter(|t| t.revoked_at.is_none()).count(), 1, "{own:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{own:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_replicas_one_runs_the_assistant_and_another_takes_over() {
    if !support::require(&[support::Service::Postgres]) {
        return;
    }
    let lk =
        LiveKitDouble::start(LiveKitDoubleConfig::new("APItestkey", "test-secret-that-is-long-enough")).await.unwrap();
    let url = support::fresh_postgres_url().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve_with_agent_on(&lk, dir_a.path(), Some(&url)).await;
    let b = serve_with_agent_on(&lk, dir_b.path(), Some(&url)).await;
    let streams = |r: &Running| r.1.hub().agent_streams();

    // One assistant between the two replicas, on the leader, and it stays one.
    let deadline = Instant::now() + Duration::from_secs(15);
    while streams(&a) + streams(&b) == 0 {
        assert!(Instant::now() < deadline, "no in-process assistant connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        (streams(&a), streams(&b)),
        (usize::from(a.1.replica().is_leader()), usize::from(b.1.replica().is_leader()))
    );
    assert_eq!(streams(&a) + streams(&b), 1, "one assistant for two replicas");

    // The leader stops: the other replica leads and runs the assistant, with a token of its own.
    let (leader, follower) = if a.1.replica().is_leader() { (a, b) } else { (b, a) };
    let _ = leader.2.send(());
    tokio::time::timeout(Duration::from_secs(30), leader.3).await.unwrap().unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while streams(&follower) != 1 {
        assert!(Instant::now() < deadline, "the other replica's assistant never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens = confctl::accounts::agent_tokens::list(&follower.1).await.unwrap();
    let live: Vec<_> = tokens.iter().filter(|t| t.name == "serve --with-agent" && t.revoked_at.is_none()).collect();
    assert_eq!(live.len(), 1, "{tokens:?}");
    let _ = follower.2.send(());
    tokio::time::timeout(Duration::from_secs(30), follower.3).await.unwrap().unwrap().unwrap();
}
