//! Running the `confctl` binary under test, isolated from the developer's environment and `/etc`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary with no `CONFCTL_*` variable (nor systemd's `NOTIFY_SOCKET`) inherited, and no stdin.
pub fn isolated() -> Command {
    isolated_program(env!("CARGO_BIN_EXE_confctl"))
}

/// `program` (the binary, or a wrapper that runs it) isolated as [`isolated`] says.
pub fn isolated_program(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFCTL_") || key == "NOTIFY_SOCKET" {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// [`isolated`] on its own data directory (created when missing) with an empty configuration file in it, so
/// only the embedded defaults and what the test sets apply; logging at `warn`.
pub fn confctl(data_dir: &Path) -> Command {
    on_data_dir(isolated(), data_dir)
}

fn on_data_dir(mut cmd: Command, data_dir: &Path) -> Command {
    let empty_config = data_dir.join("empty.toml");
    if !empty_config.exists() {
        std::fs::create_dir_all(data_dir).unwrap();
        std::fs::write(&empty_config, "").unwrap();
    }
    cmd.env("CONFCTL_DATA_DIR", data_dir).env("CONFCTL_CONFIG", empty_config).env("CONFCTL_LOG_LEVEL", "warn");
    cmd
}

/// Runs `cmd` to the end and returns what it printed.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file of the repository, by its path from the root.
pub fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub const LIVEKIT_API_KEY: &str = "APItestkey";
pub const LIVEKIT_API_SECRET: &str = "test-secret-that-is-long-enough";

/// `confctl serve` as a process on a free port and its own data directory, wired to an in-process LiveKit
/// double for its API calls; the test sends the webhooks it wants (with the times it wants) itself. Killed
/// when dropped, even when an assertion fails.
pub struct Served {
    pub data: tempfile::TempDir,
    pub port: u16,
    /// `Some` to run on PostgreSQL instead of the data directory's SQLite file.
    pub database_url: Option<String>,
    pub lk: confctl_doubles::LiveKitDouble,
    /// Settings given to `serve` and every `confctl` command as `CONFCTL_*` variables, as an operator could.
    pub env: Vec<(String, String)>,
    child: Option<std::process::Child>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Served {
    /// Starts the LiveKit double and `confctl serve`, and waits until the server is ready.
    pub async fn start(database_url: Option<String>) -> Self {
        Self::start_with(database_url, &[]).await
    }

    /// [`Served::start`] with settings in the environment (`CONFCTL_…` variables).
    pub async fn start_with(database_url: Option<String>, env: &[(&str, &str)]) -> Self {
        let mut served = Self::prepare(database_url).await;
        served.env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        served.restart().await;
        served
    }

    /// The port, data directory and LiveKit double, but no `serve` yet: for settings that depend on the
    /// server's own address (a public URL, an OAuth redirect), put into `env` before [`Served::restart`].
    pub async fn prepare(database_url: Option<String>) -> Self {
        confctl_doubles::install_crypto_provider();
        let port = free_port();
        let lk = confctl_doubles::LiveKitDouble::start(confctl_doubles::LiveKitDoubleConfig::new(
            LIVEKIT_API_KEY,
            LIVEKIT_API_SECRET,
        ))
        .await
        .unwrap();
        Self { data: tempfile::tempdir().unwrap(), port, database_url, lk, env: Vec::new(), child: None }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The binary on this instance's data directory and database (for `confctl admin …`, `confctl export …`).
    pub fn confctl(&self) -> Command {
        self.program(env!("CARGO_BIN_EXE_confctl"))
    }

    /// `program` with the environment [`Served::confctl`] gives the binary (for wrappers such as `script`).
    pub fn program(&self, program: &str) -> Command {
        let mut cmd = on_data_dir(isolated_program(program), self.data.path());
        if let Some(url) = &self.database_url {
            cmd.env("CONFCTL_DATABASE_URL", url);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// (Re)starts `serve` and waits for `/readyz`.
    pub async fn restart(&mut self) {
        let child = self
            .confctl()
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .env("CONFCTL_LIVEKIT__URL", self.lk.url())
            .env("CONFCTL_LIVEKIT__API_KEY", LIVEKIT_API_KEY)
            .env("CONFCTL_LIVEKIT__API_SECRET", LIVEKIT_API_SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(std::time::Instant::now() < deadline, "confctl serve did not become ready");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A browser-like client with its own cookies.
    pub fn client(&self) -> Client {
        Client { http: reqwest::Client::builder().cookie_store(true).build().unwrap(), base: self.base() }
    }
}

/// An HTTP client of a [`Served`] instance: JSON in, status and JSON out.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Registers an account (the first one becomes the admin) and keeps its session cookie.
    pub async fn register(&self, email: &str, name: &str) {
        let (s, body) = self
            .post(
                "/api/auth/register",
                serde_json::json!({"email": email, "password": "correct horse battery", "name": name}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
}

/// The LiveKit identity inside a guest token (its JWT's `sub`).
pub fn identity_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&base64url(payload)).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

fn base64url(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let bits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    bits.chunks(4)
        .flat_map(|chunk| {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, v)| n | (u32::from(*v) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(chunk.len().saturating_sub(1))
        })
        .collect()
}
