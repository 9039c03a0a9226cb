//! The real LiveKit server (`livekit-server`, built by `scripts/livekit-server`) for integration tests: one
//! server per test on free loopback ports with a generated config, its webhooks relayed to the test's
//! confctl, and real WebRTC participants on LiveKit's Python SDK (`tests/api/support/lk_participant.py`).
//!
//! LiveKit's `webhook.urls` is static configuration while each test's confctl gets a port of its own (and
//! a new one on restart), so LiveKit posts to a relay the test owns: a TCP forwarder to the current
//! confctl, byte for byte (signature and body untouched). Pointing it nowhere drops webhooks, as an
//! unreachable confctl would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confctl_doubles::livekit_server;
use livekit_api::services::room::RoomClient;
use livekit_protocol::{ParticipantInfo, TrackType};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Browser, Db, TestApp, jwt_claims, read};

pub const API_KEY: &str = "APIrealtest";
pub const API_SECRET: &str = "real-livekit-test-secret-long-enough-00";

/// How long the tests wait for something the server does asynchronously (webhooks, media, disconnects).
/// A generous bound for a loaded 2-core machine; nothing asserts how fast it happens.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The server binary. Tests ask `require(&[Service::LiveKit])` first (no silent fallback to the double).
pub fn server_bin() -> PathBuf {
    let bin = std::env::var("TEST_LIVEKIT_SERVER_BIN").expect(
        "TEST_LIVEKIT_SERVER_BIN is not set: run the suite with scripts/test, or \
         `eval \"$(scripts/test-services start)\"` first (it builds livekit-server once)",
    );
    assert!(Path::new(&bin).is_file(), "TEST_LIVEKIT_SERVER_BIN={bin} does not exist");
    bin.into()
}

/// The Python with LiveKit's SDKs (`scripts/livekit-server python`).
pub fn python() -> PathBuf {
    std::env::var("TEST_LIVEKIT_PYTHON")
        .expect("TEST_LIVEKIT_PYTHON is not set: run the suite with scripts/test (scripts/livekit-server python)")
        .into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Forwards every TCP connection to the current target; with no target, closes it at once.
pub struct WebhookRelay {
    pub addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookRelay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let current = target.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = *current.lock().unwrap() else { continue };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, target, task }
    }

    pub fn point_at(&self, to: Option<SocketAddr>) {
        *self.target.lock().unwrap() = to;
    }
}

impl Drop for WebhookRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One running livekit-server.
pub struct RealLiveKit {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (server API; confctl's `livekit.url`).
    pub http_url: String,
    /// `ws://127.0.0.1:PORT` (what participants connect to).
    pub ws_url: String,
    pub relay: WebhookRelay,
    dir: tempfile::TempDir,
}

impl RealLiveKit {
    /// Starts a server whose webhooks go to the relay (pointing nowhere until `relay.point_at`).
    pub async fn start() -> Self {
        confctl::tls_provider();
        let bin = server_bin();
        let relay = WebhookRelay::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut last_log = String::new();
        // A free port can be taken between choosing and binding it: then start again on other ports.
        for _ in 0..3 {
            let ports = livekit_server::Ports { api: free_port(), tcp: free_port(), udp: free_port() };
            let webhooks = format!("http://{}/api/webhooks/livekit", relay.addr);
            let config = livekit_server::config(ports, API_KEY, API_SECRET, &webhooks);
            match livekit_server::start(&bin, dir.path(), &config, ports.api).await {
                Ok(child) => {
                    let http_url = format!("http://127.0.0.1:{}", ports.api);
                    return Self { child, ws_url: http_url.replacen("http://", "ws://", 1), http_url, relay, dir };
                }
                Err(log) => last_log = log,
            }
        }
        panic!("livekit-server did not start:\n{last_log}");
    }

    /// LiveKit's own server API client, the judge of what the server holds.
    pub fn rooms(&self) -> RoomClient {
        RoomClient::with_api_key(&self.http_url, API_KEY, API_SECRET)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("livekit.log")).unwrap_or_default()
    }

    /// Waits up to `patience` until a line of the server's log contains every one of `parts` (LiveKit says
    /// what it did with each webhook: "sent webhook", "failed to send webhook" once its retries are spent,
    /// "dropped webhook").
    pub async fn wait_log(&self, parts: &[&str], patience: Duration) -> String {
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline {
            if let Some(line) = self.log().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("livekit-server never logged {parts:?}:\n{}", self.log());
    }

    /// Waits until LiveKit reports the participant in the room and `check` accepts it.
    pub async fn wait_participant(
        &self,
        room: &str,
        identity: &str,
        what: &str,
        check: impl Fn(&livekit_protocol::ParticipantInfo) -> bool,
    ) -> livekit_protocol::ParticipantInfo {
        let rooms = self.rooms();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            let list = rooms.list_participants(room).await.unwrap_or_default();
            if let Some(p) = list.into_iter().find(|p| p.identity == identity) {
                if check(&p) {
                    return p;
                }
                last = Some(p);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("LiveKit never reported {identity} in {room} {what}; last seen: {last:?}");
    }

    /// Waits until LiveKit no longer lists the participant.
    pub async fn wait_gone(&self, room: &str, identity: &str) {
        let rooms = self.rooms();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            match rooms.list_participants(room).await {
                Ok(list) if !list.iter().any(|p| p.identity == identity) => return,
                Err(_) => return, // the room itself is gone
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("LiveKit still lists {identity} in {room}");
    }
}

impl Drop for RealLiveKit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// confctl on port 0 wired to a real LiveKit server: API calls to it, its signed webhooks back.
pub struct WithRealLiveKit {
    pub t: TestApp,
    pub lk: RealLiveKit,
}

impl WithRealLiveKit {
    pub async fn spawn(db: Db, overrides: &[(&str, &str)]) -> Self {
        let lk = RealLiveKit::start().await;
        let mut all: Vec<(&str, &str)> = vec![
            ("livekit.url", lk.http_url.as_str()),
            ("livekit.api_key", API_KEY),
            ("livekit.api_secret", API_SECRET),
        ];
        all.extend_from_slice(overrides);
        let t = TestApp::spawn(db, &all).await;
        lk.relay.point_at(Some(t.addr));
        Self { t, lk }
    }

    /// Stops confctl; webhooks sent meanwhile fail, as they would against a confctl that is down.
    pub async fn stop_confctl(self) -> (RealLiveKit, std::sync::Arc<tempfile::TempDir>, confctl::config::Config) {
        self.lk.relay.point_at(None);
        let (data_dir, config) = (self.t.data_dir.clone(), self.t.config.clone());
        self.t.stop().await;
        (self.lk, data_dir, config)
    }

    /// Starts confctl again on the same data and database (a new port), webhooks following it.
    pub async fn resume(
        lk: RealLiveKit,
        data_dir: std::sync::Arc<tempfile::TempDir>,
        config: confctl::config::Config,
    ) -> Self {
        let t = TestApp::start(config, data_dir).await;
        lk.relay.point_at(Some(t.addr));
        Self { t, lk }
    }
}

/// A real WebRTC participant (LiveKit's Python real-time SDK) in a child process.
pub struct Participant {
    pub name: String,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    /// Every event seen so far, in order.
    pub seen: Vec<Value>,
}

impl Participant {
    /// Connects with `token`; `args` as for lk_participant.py (`--audio tone`, `--video`).
    pub async fn start(name: &str, ws_url: &str, token: &str, args: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/lk_participant.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(ws_url)
            .arg(token)
            .args(args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/api/support/lk_participant.py");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { name: name.to_owned(), child, stdin, lines, seen: Vec::new() }
    }

    /// Connects and waits until connected; panics if the server refuses.
    pub async fn join(name: &str, ws_url: &str, token: &str, args: &[&str]) -> Self {
        let mut p = Self::start(name, ws_url, token, args).await;
        let first = p.next_of(&["connected", "connect_failed"]).await;
        assert_eq!(first["event"], "connected", "{name} could not connect: {first}");
        p
    }

    /// The next event (waiting at most PATIENCE); `None` when the process has ended.
    pub async fn next(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no event within {PATIENCE:?}; seen {:?}", self.name, self.seen))
            .unwrap()?;
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{}: not JSON: {line}", self.name));
        self.seen.push(event.clone());
        Some(event)
    }

    /// Skips events until one named in `names` arrives.
    pub async fn next_of(&mut self, names: &[&str]) -> Value {
        loop {
            match self.next().await {
                Some(e) if names.iter().any(|n| e["event"] == *n) => return e,
                Some(_) => {}
                None => panic!("{} ended before any of {names:?}; seen {:?}", self.name, self.seen),
            }
        }
    }

    /// Skips events until `check` accepts one.
    pub async fn wait_for(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.next().await {
                Some(e) if check(&e) => return e,
                Some(_) => {}
                None => panic!("{} ended before {what}; seen {:?}", self.name, self.seen),
            }
        }
    }

    pub async fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Leaves the room and waits for the process to end.
    pub async fn leave(mut self) {
        self.command("leave").await;
        drop(self.stdin.take());
        let _ = tokio::time::timeout(PATIENCE, self.child.wait()).await;
    }
}

/// A lecture on the real server: the host signed in, the room created.
pub struct Lecture {
    pub w: WithRealLiveKit,
    pub host: Browser,
    pub id: String,
    /// The room's first lecture, the one this harness holds.
    pub lecture_id: String,
    /// Every join presents the room's invite code, as the invite link does.
    pub invite_code: String,
}

/// A guest admitted through the lobby, with their LiveKit token.
pub struct Admitted {
    pub browser: Browser,
    pub session: String,
    pub fingerprint: String,
    pub identity: String,
    pub token: String,
}

impl Lecture {
    pub async fn new(db: Db, settings: Value, overrides: &[(&str, &str)]) -> Self {
        let w = WithRealLiveKit::spawn(db, overrides).await;
        let host = w.t.client();
        host.register("ada@uni.edu", "Ada").await;
        let (s, room) = host.post("/api/rooms", settings).await;
        assert_eq!(s, 201, "{room}");
        let id = room["id"].as_str().unwrap().to_owned();
        let lecture_id = room["lectureId"].as_str().unwrap().to_owned();
        let invite_code = room["inviteCode"].as_str().unwrap().to_owned();
        Self { w, host, id, lecture_id, invite_code }
    }

    pub fn lk_room(&self) -> String {
        confctl::livekit::room_name(&self.lecture_id)
    }

    /// The lecture's own status (`OPEN`, `LIVE`, `ENDED`).
    pub async fn lecture_status(&self) -> String {
        let lecture = self.w.t.app.store().lecture_by_id(&self.lecture_id).await.unwrap();
        serde_json::to_value(lecture.status).unwrap().as_str().unwrap().to_owned()
    }

    /// Waits until the lecture has ended (webhook or reconciliation); the room is then ready for the next.
    pub async fn wait_lecture_ended(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if self.lecture_status().await == "ENDED" {
                assert_eq!(self.status().await, "READY", "the room is ready for its next lecture");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the lecture never ended; LiveKit log:\n{}", self.w.lk.log());
    }

    pub fn path(&self, rest: &str) -> String {
        format!("/api/rooms/{}{rest}", self.id)
    }

    pub async fn status(&self) -> String {
        self.host.get(&self.path("")).await.1["status"].as_str().unwrap().to_owned()
    }

    /// Waits until confctl's room reaches `status` (driven by webhooks or reconciliation).
    pub async fn wait_status(&self, status: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if self.status().await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("room never became {status} (is {}); LiveKit log:\n{}", self.status().await, self.w.lk.log());
    }

    /// The host's token from confctl and the host in the room as a real participant.
    pub async fn host_joins(&self, args: &[&str]) -> (Participant, String) {
        let (s, token) = self.host.post(&self.path("/token"), json!({})).await;
        assert_eq!(s, 200, "{token}");
        let url = token["livekitUrl"].as_str().unwrap();
        assert_eq!(url, self.w.lk.ws_url, "browsers are sent to the configured server");
        let p = Participant::join("host", url, token["token"].as_str().unwrap(), args).await;
        (p, token["identity"].as_str().unwrap().to_owned())
    }

    /// A guest joins through the lobby and the host approves; returns their token (not yet used).
    pub async fn admit(&self, name: &str) -> Admitted {
        let browser = self.w.t.client();
        let fingerprint = format!("fp-{name}-0123456789abcdef");
        let (s, joined) = browser
            .post(
                &self.path("/join"),
                json!({"displayName": name, "sessionFingerprint": fingerprint, "inviteCode": self.invite_code}),
            )
            .await;
        assert_eq!((s, joined["status"].as_str()), (201, Some("PENDING")), "{joined}");
        let session = joined["sessionId"].as_str().unwrap().to_owned();
        let (_, lobby) = self.host.get(&self.path("/lobby")).await;
        let entry = lobby["entries"].as_array().unwrap().iter().find(|e| e["displayName"] == name).unwrap();
        let (s, _) =
            self.host.post(&self.path(&format!("/lobby/{}/approve", entry["id"].as_str().unwrap())), json!({})).await;
        assert_eq!(s, 200);
        let (s, token) = self.as_guest(&browser, &session, "/guest-token").await;
        assert_eq!(s, 200, "{token}");
        let token = token["token"].as_str().unwrap().to_owned();
        let identity = jwt_claims(&token)["sub"].as_str().unwrap().to_owned();
        Admitted { browser, session, fingerprint, identity, token }
    }

    pub async fn as_guest(&self, browser: &Browser, session: &str, rest: &str) -> (u16, Value) {
        let r = browser
            .http
            .post(format!("{}{}", self.w.t.base, self.path(rest)))
            .header("x-confctl-session", session)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn guest_joins(&self, g: &Admitted, args: &[&str]) -> Participant {
        Participant::join(&g.identity, &self.w.lk.ws_url, &g.token, args).await
    }

    /// Waits until confctl's attendance record of `identity` satisfies `check`.
    pub async fn wait_attendance(
        &self,
        identity: &str,
        what: &str,
        check: impl Fn(&confctl::store::ParticipantRecord) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some(rec) = self.w.t.app.store().participant_by_identity(&self.lecture_id, identity).await.unwrap() {
                if check(&rec) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("attendance of {identity} never {what}");
    }
    /// Waits until LiveKit reports `identity` in the room and `check` accepts it.
    pub async fn judge(&self, identity: &str, what: &str, check: impl Fn(&ParticipantInfo) -> bool) -> ParticipantInfo {
        self.w.lk.wait_participant(&self.lk_room(), identity, what, check).await
    }
}

/// Whether `p` publishes an unmuted track of `kind`.
pub fn publishing(p: &ParticipantInfo, kind: TrackType) -> bool {
    p.tracks.iter().any(|t| t.r#type == kind as i32 && !t.muted)
}
