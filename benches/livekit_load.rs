//! Load on a confctl-managed lecture, the way `lk perf load-test` (livekit-cli) would put it there: simulated
//! publishers and subscribers in one room of the real `livekit-server`, while this measures what it costs
//! **confctl** — the process CPU time and resident memory of the release `confctl serve` that issued the
//! tokens and receives LiveKit's signed webhooks (participant_joined/left, track_published, room_started/
//! finished → lecture lifecycle and attendance), and with `--captions` the in-process assistant's audio
//! subscription and caption traffic too. LiveKit's own view (participants and published tracks, from its
//! server API), the SFU's and the load generator's CPU are printed beside it, so the reader sees where the
//! machine's time went. A benchmark, not a test: it asserts nothing about speed.
//!
//! livekit-cli cannot be built here (the Go module proxy answers 403 for `github.com/livekit/livekit-cli/v2`),
//! so the participants are LiveKit's Python real-time SDK (PyPI `livekit`, libwebrtc), all in one process
//! (`benches/livekit_load.py`), as the API tests' participants are.
//!
//! The flow is the product's: the host registers and creates a room (lobby off) through confctl's API, gets
//! the host token from `POST /api/rooms/{id}/token` and joins as the first publisher; every other participant
//! is a guest who joins through `POST /api/rooms/{id}/join` with the invite code and uses the LiveKit token
//! confctl answers with. After the steady window everyone leaves, confctl is left to record the departures,
//! and the host ends the lecture (`POST /api/rooms/{id}/end`, LiveKit then sends room_finished).
//!
//! Run: `cargo build --release --bin confctl && cargo bench --bench livekit_load [-- --publishers N]
//! [--subscribers M] [--seconds D] [--video] [--churn S] [--connect-at-once K] [--captions STT_URL]`
//! (defaults: 4 publishers counting the host, 16 subscribers, 30 s, audio only, no churn, 4 connections
//! at a time). `--churn S`: one subscriber after another leaves and rejoins every S seconds during the
//! window, so webhooks keep arriving. `--captions STT_URL`: `serve --with-agent` with the room's assistant
//! on and the publishers speaking an espeak-ng clip, transcribed by the OpenAI-compatible server at STT_URL
//! (`scripts/stt-server start`). Needs `scripts/livekit-server install` and `scripts/livekit-server python`
//! (or `TEST_LIVEKIT_SERVER_BIN` / `TEST_LIVEKIT_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confctl_doubles::livekit_server;
use livekit_api::services::room::RoomClient;
use livekit_protocol::TrackType;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const API_KEY: &str = "APIloadbench";
const API_SECRET: &str = "load-bench-secret-that-is-long-enough-0";

/// Clock ticks per second for /proc/PID/stat (100 on Linux).
const TICKS: f64 = 100.0;

/// Two free loopback ports, distinct (both are held while the second is chosen; a port just released can be
/// handed out again at once).
fn two_free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

/// What `scripts/livekit-server <what>` prints (the server binary, or the venv's python), unless `env` names it.
fn livekit_tool(env: &str, what: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/livekit-server");
    let out = Command::new(&script).arg(what).stderr(Stdio::inherit()).output().unwrap();
    if !out.status.success() {
        eprintln!("`scripts/livekit-server {what}` failed (or set {env})");
        std::process::exit(2);
    }
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// CPU time (user + system) of a process so far, in seconds; 0 once it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) as f64 / TICKS
}

/// A `/proc/PID/status` field in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// livekit-server on free loopback ports (the API tests' configuration), webhooks to `webhook_url`.
struct LiveKit {
    child: std::process::Child,
    http_url: String,
    ws_url: String,
    log: PathBuf,
}

impl LiveKit {
    /// Starts the server on `port` (confctl already knows it); a media port taken between choosing and binding
    /// it means another try with others.
    async fn start(bin: &Path, dir: &Path, port: u16, webhook_url: &str) -> Self {
        let log = dir.join("livekit.log");
        for _ in 0..3 {
            let (tcp, udp) = two_free_ports();
            let ports = livekit_server::Ports { api: port, tcp, udp };
            let config = livekit_server::config(ports, API_KEY, API_SECRET, webhook_url);
            match livekit_server::start(bin, dir, &config, port).await {
                Ok(child) => {
                    let http_url = format!("http://127.0.0.1:{port}");
                    return Self { child, ws_url: http_url.replacen("http://", "ws://", 1), http_url, log };
                }
                // The API port itself: confctl was told it, so no other try helps.
                Err(log) if log.contains(&format!(":{port}: bind")) => break,
                Err(_) => {}
            }
        }
        // A panic, not an exit: unwinding stops confctl.
        panic!("livekit-server did not start (run again):\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rooms(&self) -> RoomClient {
        RoomClient::with_api_key(&self.http_url, API_KEY, API_SECRET)
    }

    /// Lines of LiveKit's log that contain `what`.
    fn log_count(&self, what: &str) -> usize {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().filter(|l| l.contains(what)).count()
    }
}

impl Drop for LiveKit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// LiveKit's view of the room: participants, and published audio and video tracks.
async fn livekit_view(rooms: &RoomClient, room: &str) -> (usize, usize, usize) {
    let list = rooms.list_participants(room).await.unwrap_or_default();
    let tracks = |kind: TrackType| list.iter().flat_map(|p| &p.tracks).filter(|t| t.r#type == kind as i32).count();
    (list.len(), tracks(TrackType::Audio), tracks(TrackType::Video))
}

/// confctl's own record, read from its SQLite database: webhooks applied (by event) and attendance rows.
struct Record {
    pool: sqlx::SqlitePool,
    lecture_id: String,
}

impl Record {
    async fn open(db: &Path, lecture_id: &str) -> Self {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        Self { pool, lecture_id: lecture_id.to_owned() }
    }

    async fn webhooks(&self) -> BTreeMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>("SELECT event, COUNT(*) FROM webhook_events GROUP BY event")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    /// Attendance rows of the lecture for `identities`, and how many of them are still open (joined, not yet
    /// left). The assistant, with `--captions`, has rows of its own and stays until the lecture ends.
    async fn attendance(&self, identities: &[String]) -> (usize, usize) {
        let rows =
            sqlx::query_as::<_, (String, Option<i64>)>("SELECT identity, left_at FROM attendance WHERE lecture_id = ?")
                .bind(&self.lecture_id)
                .fetch_all(&self.pool)
                .await
                .unwrap();
        let ours: Vec<_> = rows.iter().filter(|(identity, _)| identities.contains(identity)).collect();
        (ours.len(), ours.iter().filter(|(_, left)| left.is_none()).count())
    }

    /// Caption segments confctl stored for the lecture (the assistant's transcript).
    async fn segments(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM transcript_segments WHERE lecture_id = ?")
            .bind(&self.lecture_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn lecture_status(&self) -> String {
        sqlx::query_scalar::<_, String>("SELECT status FROM lectures WHERE id = ?")
            .bind(&self.lecture_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn total(webhooks: &BTreeMap<String, i64>) -> i64 {
    webhooks.values().sum()
}

fn delta(after: &BTreeMap<String, i64>, before: &BTreeMap<String, i64>) -> String {
    let parts: Vec<String> = after
        .iter()
        .filter_map(|(event, n)| {
            let d = n - before.get(event).copied().unwrap_or(0);
            (d > 0).then(|| format!("{event} {d}"))
        })
        .collect();
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

/// Resident memory of a process, sampled every 100 ms from now on.
struct RssSampler {
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
        let into = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                into.lock().unwrap().push((Instant::now(), status_kib(pid, "VmRSS:")));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { samples, task }
    }

    /// (min, mean, max) RSS in KiB of the samples taken between `from` and `to`.
    fn between(&self, from: Instant, to: Instant) -> (u64, u64, u64) {
        let samples = self.samples.lock().unwrap();
        let window: Vec<u64> = samples.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, k)| *k).collect();
        if window.is_empty() {
            return (0, 0, 0);
        }
        let mean = window.iter().sum::<u64>() / window.len() as u64;
        (*window.iter().min().unwrap(), mean, *window.iter().max().unwrap())
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// CPU seconds of the three processes at one moment.
#[derive(Clone, Copy)]
struct Cpu {
    at: Instant,
    confctl: f64,
    livekit: f64,
    load: f64,
}

impl Cpu {
    fn now(confctl: u32, livekit: u32, load: u32) -> Self {
        Self {
            at: Instant::now(),
            confctl: cpu_seconds(confctl),
            livekit: cpu_seconds(livekit),
            load: cpu_seconds(load),
        }
    }
}

/// A phase's row: wall time, each process's CPU (seconds, and as a share of one core when the phase is long
/// enough for that to mean something), confctl's RSS (min/mean/max of the 100 ms samples) and the webhooks
/// confctl applied (with the CPU per webhook, when they are all confctl does).
fn phase_row(
    with_agent: bool,
    name: &str,
    a: Cpu,
    b: Cpu,
    rss: (u64, u64, u64),
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) {
    let wall = (b.at - a.at).as_secs_f64();
    let share = |s: f64| if wall >= 1.0 { format!("{:>5.1} %", 100.0 * s / wall) } else { "  —   ".to_owned() };
    let confctl = b.confctl - a.confctl;
    let rss = if rss.2 == 0 {
        "        —        ".to_owned()
    } else {
        format!("{:>5.1}/{:>5.1}/{:>5.1}", mib(rss.0), mib(rss.1), mib(rss.2))
    };
    let webhooks = total(after) - total(before);
    // Only when webhooks are all confctl does (not the assistant's audio path), and enough of them for the
    // kernel's 10 ms ticks.
    let per_webhook = if webhooks >= 10 && !with_agent && confctl > 0.0 {
        format!(" ({:.2} ms CPU each)", 1000.0 * confctl / webhooks as f64)
    } else {
        String::new()
    };
    println!(
        "  {name:<7} {wall:>6.1} s | confctl {confctl:>5.2} s CPU {} | RSS {rss} MiB | livekit-server {} | \
         load generator {} | webhooks: {}{per_webhook}",
        share(confctl),
        share(b.livekit - a.livekit),
        share(b.load - a.load),
        delta(after, before),
    );
}

/// A guest joins through confctl (lobby off) and gets its LiveKit token in the answer.
async fn guest(served: &common::Served, room_id: &str, invite_code: &str, name: &str) -> String {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/rooms/{room_id}/join", served.base))
        .json(&json!({
            "displayName": name,
            "sessionFingerprint": format!("fp-{name}-0123456789abcdef"),
            "inviteCode": invite_code,
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!((status.as_u16(), body["status"].as_str()), (201, Some("APPROVED")), "join of {name}: {body}");
    body["token"].as_str().unwrap().to_owned()
}

/// The LiveKit identity a token is for (its `sub`): confctl chooses it, not the display name.
fn identity_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

/// An espeak-ng lecture sentence at 48 kHz mono (for `--captions`).
fn speech_clip(dir: &Path) -> PathBuf {
    let text = "Photosynthesis is how plants convert sunlight into chemical energy. The chlorophyll in the leaves \
                absorbs red and blue light and reflects green.";
    let (raw, out) = (dir.join("raw.wav"), dir.join("speech.wav"));
    let ok = Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&raw).arg(text).status();
    let ok = ok.is_ok_and(|s| s.success())
        && Command::new("sox")
            .arg(&raw)
            .args(["-r", "48000", "-c", "1", "-b", "16"])
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("--captions needs espeak-ng and sox (apt-get install espeak-ng sox)");
        std::process::exit(2);
    }
    out
}

#[tokio::main]
async fn main() {
    let publishers: usize = common::arg("--publishers").unwrap_or(4).max(1);
    let subscribers: usize = common::arg("--subscribers").unwrap_or(16);
    let seconds: u64 = common::arg("--seconds").unwrap_or(30);
    let churn: f64 = common::arg("--churn").unwrap_or(0.0);
    let at_once: usize = common::arg("--connect-at-once").unwrap_or(4);
    let video = common::flag("--video");
    let captions: Option<String> = common::arg("--captions");

    let livekit_bin = livekit_tool("TEST_LIVEKIT_SERVER_BIN", "install");
    let python = livekit_tool("TEST_LIVEKIT_PYTHON", "python");
    let work = tempfile::tempdir().unwrap();
    let audio = match &captions {
        Some(_) => speech_clip(work.path()).display().to_string(),
        None => "tone".to_owned(),
    };

    // confctl first (it must know LiveKit's URL), then LiveKit on the port chosen for it, its webhooks to
    // confctl. Every guest joins from 127.0.0.1, so the per-address join limit is raised, as an operator could.
    // The API port stays held while confctl chooses its own, so the two cannot be the same.
    let lk_hold = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lk_port = lk_hold.local_addr().unwrap().port();
    let lk_url = format!("http://127.0.0.1:{lk_port}");
    let mut env: Vec<(&str, &str)> = vec![
        ("CONFCTL_LIVEKIT__URL", &lk_url),
        ("CONFCTL_LIVEKIT__API_KEY", API_KEY),
        ("CONFCTL_LIVEKIT__API_SECRET", API_SECRET),
        ("CONFCTL_RATE_LIMITS__JOINS_PER_IP_PER_MINUTE", "100000"),
    ];
    if let Some(url) = &captions {
        env.push(("CONFCTL_AGENT__STT_URL", url));
    }
    let args: &[&str] = if captions.is_some() { &["--with-agent"] } else { &[] };
    let db = common::Database::Sqlite;
    let served = common::serve_with_args(&db, &env, args).await;
    drop(lk_hold);
    let livekit =
        LiveKit::start(&livekit_bin, work.path(), lk_port, &format!("{}/api/webhooks/livekit", served.base)).await;

    let host =
        common::Host::with_room(&served, json!({"lobbyEnabled": false, "aiAssistant": captions.is_some()})).await;
    let (_, room) = host.get(&format!("/api/rooms/{}", host.room_id)).await;
    let lecture_id = room["lectureId"].as_str().unwrap().to_owned();
    let lk_room = confctl::livekit::room_name(&lecture_id);
    let record = Record::open(&served.dir.path().join("data/confctl.db"), &lecture_id).await;

    // Tokens, as the product hands them out: the host's, then each guest's from its join.
    let (s, host_token) = host.post(&format!("/api/rooms/{}/token", host.room_id), json!({})).await;
    assert_eq!(s, 200, "host token: {host_token}");
    let ws_url = host_token["livekitUrl"].as_str().unwrap().to_owned();
    assert_eq!(ws_url, livekit.ws_url, "confctl sends participants to the server under test");
    let mut tokens = vec![(host_token["token"].as_str().unwrap().to_owned(), true)];
    for i in 0..publishers + subscribers - 1 {
        let publish = i + 1 < publishers;
        let name = if publish { format!("speaker-{i}") } else { format!("listener-{}", i + 1 - publishers) };
        tokens.push((guest(&served, &host.room_id, &host.invite_code, &name).await, publish));
    }
    let identities: Vec<String> = tokens.iter().map(|(t, _)| identity_of(t)).collect();
    let participants: Vec<Value> = tokens
        .iter()
        .zip(&identities)
        .map(|((token, publish), identity)| json!({"identity": identity, "token": token, "publish": publish}))
        .collect();
    let spec = work.path().join("spec.json");
    std::fs::write(
        &spec,
        serde_json::to_vec(&json!({
            "url": ws_url, "seconds": seconds, "video": video, "audio": audio, "connectAtOnce": at_once,
            "churnEvery": churn, "participants": participants,
        }))
        .unwrap(),
    )
    .unwrap();

    println!(
        "LiveKit load on a confctl lecture: real livekit-server ({}), confctl release ({}, SQLite{}), {publishers} \
         publisher(s) incl. the host ({}), {subscribers} subscriber(s), {seconds} s steady, churn {}, \
         {at_once} connection(s) at a time; load average before: {}",
        livekit_bin.file_name().unwrap().to_string_lossy(),
        common::binary().display(),
        if captions.is_some() { ", --with-agent" } else { "" },
        if video { "audio + 160x120 video at 10 fps" } else { "audio" },
        if churn > 0.0 { format!("one subscriber every {churn} s") } else { "none".to_owned() },
        common::load_average()
    );

    let confctl_pid = served.pid();
    let idle_cpu = cpu_seconds(confctl_pid);
    let idle_rss = status_kib(confctl_pid, "VmRSS:");
    let rss = RssSampler::start(confctl_pid);
    let mut load = tokio::process::Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/livekit_load.py"))
        .arg(&spec)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(work.path().join("load.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start benches/livekit_load.py");
    let load_pid = load.id().unwrap();
    let mut lines = BufReader::new(load.stdout.take().unwrap()).lines();
    let start = Cpu::now(confctl_pid, livekit.pid(), load_pid);
    let hooks_start = record.webhooks().await;

    // Each step of the generator within `patience` (a machine too loaded to connect everybody stops here).
    let patience = Duration::from_secs(seconds + 120);
    let mut next = async |want: &str| -> Value {
        loop {
            let Ok(line) = tokio::time::timeout(patience, lines.next_line()).await else {
                // A panic, not an exit: unwinding stops confctl, LiveKit and the generator.
                panic!("the load generator did not report `{want}` within {patience:?}");
            };
            let Some(line) = line.unwrap() else {
                let log = std::fs::read_to_string(work.path().join("load.log")).unwrap_or_default();
                panic!("the load generator ended before `{want}`:\n{log}");
            };
            let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if event["event"] == want {
                return event;
            }
        }
    };

    // Ramp: everybody connects and publishes.
    let ready = next("ready").await;
    let ready_cpu = Cpu::now(confctl_pid, livekit.pid(), load_pid);
    let hooks_ready = record.webhooks().await;
    let view_ready = livekit_view(&livekit.rooms(), &lk_room).await;
    let status_ready = record.lecture_status().await;
    // Printed at once: a run that stalls later still shows how far it got.
    println!(
        "  ramp: {} of {} connected in {:.1} s, {} track(s) published{}; lecture {status_ready}; LiveKit's view: \
         {} participants, {} audio / {} video tracks",
        ready["connected"],
        publishers + subscribers,
        (ready_cpu.at - start.at).as_secs_f64(),
        ready["published"],
        ready["failures"]
            .as_array()
            .filter(|f| !f.is_empty())
            .map(|f| format!(" (failures: {f:?})"))
            .unwrap_or_default(),
        view_ready.0,
        view_ready.1,
        view_ready.2,
    );

    // Steady window (the generator holds it for `seconds`); LiveKit's view halfway through.
    let halfway = {
        let rooms = livekit.rooms();
        let lk_room = lk_room.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds) / 2).await;
            livekit_view(&rooms, &lk_room).await
        })
    };
    let steady = next("steady_end").await;
    let steady_cpu = Cpu::now(confctl_pid, livekit.pid(), load_pid);
    let hooks_steady = record.webhooks().await;
    let attendance_steady = record.attendance(&identities).await;
    let segments_steady = record.segments().await;
    let view_half = halfway.await.unwrap();

    // Teardown: everyone leaves; wait until confctl has recorded every departure, then the host ends it.
    next("left").await;
    // The generator's CPU as it leaves (once it has exited, /proc no longer has it).
    let load_cpu_end = cpu_seconds(load_pid);
    let _ = load.wait().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while record.attendance(&identities).await.1 > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left_cpu = Cpu { load: load_cpu_end, ..Cpu::now(confctl_pid, livekit.pid(), load_pid) };
    let departures = (left_cpu.at - steady_cpu.at).as_secs_f64();
    let hooks_left = record.webhooks().await;
    let attendance_left = record.attendance(&identities).await;
    let (s, _) = host.post(&format!("/api/rooms/{}/end", host.room_id), json!({})).await;
    assert_eq!(s, 200, "end the lecture");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !record.webhooks().await.contains_key("room_finished") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end_cpu = Cpu { load: load_cpu_end, ..Cpu::now(confctl_pid, livekit.pid(), load_pid) };
    let hooks_end = record.webhooks().await;
    let status_end = record.lecture_status().await;
    let hwm = status_kib(confctl_pid, "VmHWM:");
    let segments_end = record.segments().await;
    let load_after = common::load_average();

    let expected_subscriptions = {
        let tracks_each = if video { 2 } else { 1 };
        // Each subscriber receives every publisher's tracks, each publisher every other publisher's.
        (subscribers * publishers + publishers * (publishers - 1)) * tracks_each
    };
    println!(
        "  steady: LiveKit halfway {} participants, {} audio / {} video tracks; subscriptions made {} (of {} \
         expected without churn); media received {:.1} MB in {} packets, {} lost; rejoins {}",
        view_half.0,
        view_half.1,
        view_half.2,
        steady["subscriptions"],
        expected_subscriptions,
        steady["receivedBytes"].as_f64().unwrap_or(0.0) / 1e6,
        steady["receivedPackets"],
        steady["lostPackets"],
        steady["churned"],
    );
    if captions.is_some() {
        println!(
            "  captions: {segments_steady} segment(s) stored by the end of the window ({segments_end} once the \
             lecture ended), {} caption packet(s) received by the participants in the window",
            steady["captions"]
        );
    }
    println!("  confctl before the load: {:.2} s CPU since start, RSS {:.1} MiB", idle_cpu, mib(idle_rss));
    phase_row(
        captions.is_some(),
        "ramp",
        start,
        ready_cpu,
        rss.between(start.at, ready_cpu.at),
        &hooks_start,
        &hooks_ready,
    );
    phase_row(
        captions.is_some(),
        "steady",
        ready_cpu,
        steady_cpu,
        rss.between(ready_cpu.at, steady_cpu.at),
        &hooks_ready,
        &hooks_steady,
    );
    phase_row(
        captions.is_some(),
        "leave",
        steady_cpu,
        left_cpu,
        rss.between(steady_cpu.at, left_cpu.at),
        &hooks_steady,
        &hooks_left,
    );
    phase_row(
        captions.is_some(),
        "end",
        left_cpu,
        end_cpu,
        rss.between(left_cpu.at, end_cpu.at),
        &hooks_left,
        &hooks_end,
    );
    let whole = (end_cpu.at - start.at).as_secs_f64();
    let per_webhook = if captions.is_some() { "with the assistant's audio path" } else { "everything else included" };
    let webhooks = total(&hooks_end) - total(&hooks_start);
    println!(
        "  whole run {whole:.1} s: confctl {:.2} s CPU ({:.1} % of a core), {webhooks} webhooks applied ({:.2} ms of \
         CPU per webhook, {per_webhook}); RSS at most {:.1} MiB while sampled, peak since start-up \
         (VmHWM) {:.1} MiB; livekit-server {:.1} s CPU; load generator {:.1} s CPU",
        end_cpu.confctl - start.confctl,
        100.0 * (end_cpu.confctl - start.confctl) / whole,
        1000.0 * (end_cpu.confctl - start.confctl) / webhooks.max(1) as f64,
        mib(rss.between(start.at, end_cpu.at).2),
        mib(hwm),
        end_cpu.livekit - start.livekit,
        load_cpu_end - start.load,
    );
    println!(
        "  LiveKit logged {} webhook(s) sent, {} failed; confctl recorded {} attendance row(s), {} still open \
         after everyone left ({departures:.1} s to record the departures; {} at steady end); lecture {status_end}",
        livekit.log_count("sent webhook"),
        livekit.log_count("failed to send webhook"),
        attendance_left.0,
        attendance_left.1,
        attendance_steady.0,
    );
    println!("  webhooks applied in all: {}; load average after: {load_after}", delta(&hooks_end, &BTreeMap::new()));
    drop(rss);
    drop(livekit);
    served.stop().await;
}
