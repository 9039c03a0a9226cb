//! `confctl admin monitor` end to end: the real binary in a tmux pane against a real `confctl serve` (with
//! the LiveKit double). A guest joins through the API and shows up in the lobby; keys open the room, approve
//! and confirm; the API then has the guest admitted; killing and restarting `serve` shows the reconnect; and
//! `--readonly` offers no action.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use confctl_doubles::services::{Service, require};
use serde_json::{Value, json};

use crate::support::Served;

/// The server and the tmux server the monitor runs in, both ended even when an assertion fails.
struct Fixture {
    served: Served,
    tmux_socket: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.tmux_socket, "kill-server"]).stderr(Stdio::null()).status();
    }
}

impl Fixture {
    fn base(&self) -> String {
        self.served.base()
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.tmux_socket).args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the monitor in a new 100×30 tmux session.
    fn monitor(&self, session: &str, extra: &str, token_file: &Path) {
        let command = format!(
            "env -u CONFCTL_CONFIG CONFCTL_MONITOR_URL={} CONFCTL_MONITOR_TOKEN_FILE={} TERM=xterm-256color {} admin monitor {extra}; sleep 30",
            self.base(),
            token_file.display(),
            env!("CARGO_BIN_EXE_confctl"),
        );
        self.tmux(&["new-session", "-d", "-s", session, "-x", "100", "-y", "30", &command]);
    }

    fn pane(&self, session: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", session])
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until the pane shows `text` (generous deadline; the screen normally changes at once).
    async fn wait_for(&self, session: &str, text: &str) -> Duration {
        let started = Instant::now();
        loop {
            let pane = self.pane(session);
            if pane.contains(text) {
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(15), "the monitor never showed {text:?}:\n{pane}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_admits_a_guest_and_survives_a_server_restart() {
    if !require(&[Service::Tmux]) {
        return;
    }
    let mut f = Fixture {
        served: Served::start(None).await,
        tmux_socket: format!("confctl-monitor-test-{}", std::process::id()),
    };

    // An admin (the first account), a host and their room.
    let admin = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let host = reqwest::Client::builder().cookie_store(true).build().unwrap();
    for (who, email) in [(&admin, "root@uni.edu"), (&host, "ada@uni.edu")] {
        let (s, body) = post(
            who,
            format!("{}/api/auth/register", f.base()),
            json!({"email": email, "password": "correct horse battery", "name": email}),
        )
        .await;
        assert_eq!(s, 201, "{body}");
    }
    let (s, room) = post(&host, format!("{}/api/rooms", f.base()), json!({"name": "Quantum Optics"})).await;
    assert_eq!(s, 201, "{room}");
    let room_id = room["id"].as_str().unwrap().to_owned();
    let invite = room["inviteCode"].as_str().unwrap().to_owned();

    // An admin token, as an operator would make one.
    let out = f
        .served
        .confctl()
        .args(["admin", "api-token", "create", "--name", "e2e", "--scope", "admin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = stdout.lines().find_map(|l| l.strip_prefix("token: ")).unwrap().to_owned();
    let token_file: PathBuf = f.served.data.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();

    // On the server itself, with no flags: the listen address from the configuration and a token minted in
    // the database. `--once --json` for scripts, `--once` as a table.
    let local = |extra: &[&str]| {
        let mut cmd = f.served.confctl();
        cmd.env("CONFCTL_LISTEN", format!("127.0.0.1:{}", f.served.port)).env("HOME", f.served.data.path());
        cmd.args(["admin", "monitor", "--once"]).args(extra).output().unwrap()
    };
    let once = local(&["--json"]);
    assert!(once.status.success(), "{}", String::from_utf8_lossy(&once.stderr));
    let snap: Value = serde_json::from_slice(&once.stdout).unwrap();
    assert_eq!(snap["rooms"][0]["name"], "Quantum Optics", "{snap}");
    let table = String::from_utf8_lossy(&local(&[]).stdout).into_owned();
    assert!(table.contains("Quantum Optics") && table.contains("LOBBY"), "{table}");
    let bad = f
        .served
        .confctl()
        .env("CONFCTL_MONITOR_URL", f.base())
        .env("CONFCTL_MONITOR_TOKEN_FILE", f.served.data.path().join("missing"))
        .args(["admin", "monitor", "--once"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read the token file"));

    f.monitor("mon", "", &token_file);
    f.wait_for("mon", "Quantum Optics").await;
    f.wait_for("mon", "0 waiting").await;

    // A guest joins through the API: the lobby count changes on the screen.
    let guest = reqwest::Client::new();
    let (s, joined) = post(
        &guest,
        format!("{}/api/rooms/{room_id}/join", f.base()),
        json!({"displayName": "Grace Hopper", "sessionFingerprint": "fp-grace-0123456789abcdef", "inviteCode": invite}),
    )
    .await;
    assert_eq!((s, joined["status"].as_str()), (201, Some("PENDING")), "{joined}");
    let session = joined["sessionId"].as_str().unwrap().to_owned();
    let shown_after = f.wait_for("mon", "1 waiting").await;
    eprintln!("the guest appeared on the monitor after {shown_after:?}");

    // Enter opens the room; a approves the selected guest; y confirms.
    f.keys("mon", &["Enter"]);
    f.wait_for("mon", "Grace Hopper").await;
    f.wait_for("mon", "Lobby (1)").await;
    f.keys("mon", &["a"]);
    f.wait_for("mon", "Let Grace Hopper into Quantum Optics?").await;
    f.keys("mon", &["y"]);
    f.wait_for("mon", "Lobby (0)").await;
    let r = guest
        .post(format!("{}/api/rooms/{room_id}/guest-token", f.base()))
        .header("x-confctl-session", &session)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!((status, body["status"].as_str()), (200, Some("APPROVED")), "the API has the guest admitted: {body}");
    let audit: Value = admin
        .get(format!("{}/api/admin/audit?action=lobby.approve", f.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["actorLabel"], "token:e2e", "{audit}");

    // The server goes away and comes back: the monitor says so, reconnects, and stays in the room.
    f.served.kill();
    f.wait_for("mon", "disconnected — retrying").await;
    f.served.restart().await;
    f.wait_for("mon", " connected ").await;
    let pane = f.pane("mon");
    assert!(pane.contains("Lobby (0)") && pane.contains("Quantum Optics"), "back in the same room:\n{pane}");

    // Read-only: the same room, and no action offered.
    f.monitor("ro", "--readonly", &token_file);
    f.wait_for("ro", "[read-only]").await;
    // The header comes before the rooms: Enter only opens a room once the list shows it.
    f.wait_for("ro", "Quantum Optics").await;
    f.keys("ro", &["Enter"]);
    f.wait_for("ro", "Lobby (0)").await;
    f.keys("ro", &["x"]);
    f.keys("ro", &["?"]);
    f.wait_for("ro", "Keys (? or Esc closes)").await;
    let pane = f.pane("ro");
    assert!(!pane.contains("end the lecture") && !pane.contains("Confirm"), "read-only offers no action:\n{pane}");
    assert!(!f.pane("ro").contains("a approve"));

    // q quits and the terminal is back (the shell's `sleep` keeps the pane). The deadline is as generous as
    // the other waits': one CI run on a busy machine took longer than 10 s. Should it fail, the message says
    // whether the monitor had exited (the pane then runs `sleep`) or was still running.
    f.keys("mon", &["q"]);
    let started = Instant::now();
    while f.pane("mon").contains("Quantum Optics") {
        if started.elapsed() > Duration::from_secs(30) {
            let running = f.tmux(&["display-message", "-p", "-t", "mon", "#{pane_current_command}"]);
            panic!("q did not quit (the pane runs {:?}):\n{}", running.trim(), f.pane("mon"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("q quit the monitor after {:?}", started.elapsed());
}
