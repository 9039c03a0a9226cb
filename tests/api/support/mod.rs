//! Test harness: the real application on port 0 with a fresh database per test — a SQLite file in a
//! temporary data directory, or a new database on the PostgreSQL server named by `TEST_DATABASE_URL`.

pub mod agent;
pub mod livekit;
pub mod speech;
pub mod tls;

pub use confctl_doubles::services::{Service, fresh_postgres_url, require};
pub use confctl_doubles::sse::Sse;

use std::net::SocketAddr;

use confctl::app::App;
use confctl::config::{self, Config, Sources};
use confctl::server::{ServeOptions, Server};
use serde_json::Value;
use tokio::sync::oneshot;

/// Waits until no other real-time media test runs, and holds that turn until the guard is dropped. Tests
/// that play lectures through WebRTC or the Whisper server wait in real time for captions and media; two at
/// once, beside the rest of the suite on a 2-core machine, starve each other past their deadlines.
async fn media_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// [`require`]s the services, then waits for the [`media_turn`]; `None` (the test returns) when one is missing.
pub async fn media_turn_with(services: &[Service]) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    if !require(services) {
        return None;
    }
    Some(media_turn().await)
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running test instance.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub app: App,
    pub data_dir: std::sync::Arc<tempfile::TempDir>,
    /// The configuration it was started with (for restarts).
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A test instance wired to an in-process LiveKit double (API calls and webhooks both ways).
pub struct WithLiveKit {
    pub t: TestApp,
    pub lk: confctl_doubles::LiveKitDouble,
}

impl WithLiveKit {
    pub async fn spawn(db: Db, overrides: &[(&str, &str)]) -> Self {
        let lk = confctl_doubles::LiveKitDouble::start(confctl_doubles::LiveKitDoubleConfig::new(
            "APItestkey",
            "test-secret-that-is-long-enough",
        ))
        .await
        .unwrap();
        let url = lk.url();
        let mut all: Vec<(&str, &str)> = vec![
            ("livekit.url", url.as_str()),
            ("livekit.api_key", "APItestkey"),
            ("livekit.api_secret", "test-secret-that-is-long-enough"),
        ];
        all.extend_from_slice(overrides);
        let t = TestApp::spawn(db, &all).await;
        Self { t, lk }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/api/webhooks/livekit", self.t.base)
    }
}

impl TestApp {
    /// A room's current invite code (empty for an unknown room), which every join must present.
    pub async fn invite_code(&self, room_id: &str) -> String {
        invite_code(&self.app, room_id).await
    }

    /// Starts an instance with default configuration plus `env`-style overrides (`("auth.registration", "closed")`).
    pub async fn spawn(db: Db, overrides: &[(&str, &str)]) -> Self {
        Self::spawn_with(db, overrides, |_| {}).await
    }

    pub async fn spawn_with(db: Db, overrides: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> Self {
        confctl::telemetry::init(config::LogFormat::Human, "error");
        let data_dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("CONFCTL_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("CONFCTL_LISTEN".into(), "127.0.0.1:0".into()),
        ];
        if db == Db::Postgres {
            env.push(("CONFCTL_DATABASE_URL".into(), fresh_postgres_url().await));
        }
        for (key, value) in overrides {
            let var = format!("CONFCTL_{}", key.replace('.', "__").to_ascii_uppercase());
            env.push((var, (*value).to_owned()));
        }
        let mut config = config::load(&Sources { env, ..Sources::default() }).unwrap();
        tweak(&mut config);
        Self::start(config, std::sync::Arc::new(data_dir)).await
    }

    /// Starts an instance with this configuration on existing data (see `restart`).
    pub async fn start(config: Config, data_dir: std::sync::Arc<tempfile::TempDir>) -> Self {
        let server = Server::bind(config.clone(), &ServeOptions::default()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let app = server.app().clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        let base = format!("http://{addr}");
        let test_app = Self { addr, base, app, data_dir, config, stop: Some(tx), task: Some(task) };
        test_app.wait_ready().await;
        test_app
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
        panic!("the test server never became ready");
    }

    /// A client with its own cookie jar (one browser).
    pub fn client(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder().cookie_store(true).build().unwrap(),
            base: self.base.clone(),
            app: self.app.clone(),
        }
    }

    /// Stops the server and starts a new one on the same data and database (a new port).
    pub async fn restart(self) -> Self {
        let config = self.config.clone();
        let data_dir = self.data_dir.clone();
        self.stop().await;
        Self::start(config, data_dir).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// One browser: a cookie jar and helpers returning (status, JSON body).
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    /// The instance behind `base`, for reading what a real guest would have been given (an invite link).
    pub app: App,
}

impl Browser {
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        read(r).await
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        read(r).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.put(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        read(r).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.patch(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        read(r).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(format!("{}{path}", self.base)).send().await.unwrap();
        read(r).await
    }
    /// Registers and signs in; returns the user JSON.
    pub async fn register(&self, email: &str, name: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/auth/register",
                serde_json::json!({"email": email, "password": "correct horse battery", "name": name}),
            )
            .await;
        assert_eq!(status, 201, "register {email}: {body}");
        body["user"].clone()
    }
}

/// Decodes a LiveKit JWT's claims without checking the signature (tests check it separately).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// One request presenting `Authorization: Bearer TOKEN` (an admin API token or an agent token), with an optional
/// JSON body; returns (status, JSON body).
pub async fn with_token(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{base}{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req.send().await.unwrap()).await
}

pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Asserts the uniform error shape and returns its code.
pub fn error_code(body: &Value) -> &str {
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"));
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {body}");
    code
}

/// Runs each listed `async fn(Db)` as two tests: one on SQLite, one on PostgreSQL (skipped, saying so, when
/// no PostgreSQL server is configured: see [`require`]).
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::support::Db::Sqlite).await }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !$crate::support::require(&[$crate::support::Service::Postgres]) {
                        return;
                    }
                    super::$name($crate::support::Db::Postgres).await
                }
            )+
        }
    };
}

/// The audit entries recording `action` (in one room, or anywhere), newest first, at most `limit` of them.
pub async fn audit_of(app: &App, room_id: Option<&str>, action: &str, limit: i64) -> Vec<confctl::store::AuditEntry> {
    let filter = confctl::store::AuditFilter {
        room_id: room_id.map(str::to_owned),
        action: Some(action.into()),
        limit,
        ..Default::default()
    };
    app.store().list_audit(&filter).await.unwrap()
}

/// A room's current invite code (empty for an unknown room).
pub async fn invite_code(app: &App, room_id: &str) -> String {
    app.store().room_by_id(room_id).await.map(|r| r.invite_code).unwrap_or_default()
}
