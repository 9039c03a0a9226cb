//! What the load scripts share: the release `confctl` binary started as an operator starts it (its own data
//! directory, SQLite or a fresh PostgreSQL database), a host account and room, HTTP clients bound to chosen
//! loopback addresses (so a storm comes from many students, not one), the waiting room's event stream, and
//! the server process's memory and CPU as the kernel counts them. [`serve_https`] starts it as deployed with
//! TLS on (a certificate of a CA made for the run): browsers then speak HTTP/2 to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test: `$CONFCTL_BIN`, else `confctl` in the same target directory as this script
/// (`cargo build --release --bin confctl` puts it there).
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("CONFCTL_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    // target/release/deps/<bench>-<hash> → target/release/confctl
    let bin = exe.parent().and_then(|deps| deps.parent()).map(|dir| dir.join("confctl")).unwrap();
    if !bin.exists() {
        eprintln!("{} is missing: run `cargo build --release --bin confctl` first (or set CONFCTL_BIN)", bin.display());
        std::process::exit(2);
    }
    bin
}

/// Which database the server under test uses.
pub enum Database {
    Sqlite,
    /// A fresh database per server, made on the PostgreSQL server named by `TEST_DATABASE_URL` and dropped
    /// when the server stops.
    Postgres {
        admin_url: String,
    },
}

impl Database {
    /// `--postgres` on the command line picks PostgreSQL (needs `TEST_DATABASE_URL`, e.g. from
    /// `eval "$(scripts/test-services start)"`); SQLite otherwise.
    pub fn from_args() -> Self {
        if !flag("--postgres") {
            return Self::Sqlite;
        }
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("--postgres needs TEST_DATABASE_URL: eval \"$(scripts/test-services start)\" first");
            std::process::exit(2);
        };
        Self::Postgres { admin_url }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres { .. } => "PostgreSQL",
        }
    }
}

async fn postgres(admin_url: &str, sql: String) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await.unwrap();
    sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql)).await.unwrap();
}

/// A running `confctl serve`.
pub struct Served {
    child: Child,
    /// The PostgreSQL server and the database made for this server.
    postgres: Option<(String, String)>,
    /// With TLS on: what a client needs to trust the run's CA (and to offer HTTP/2, as browsers do).
    tls: Option<rustls::ClientConfig>,
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
}

/// The name the HTTPS server's certificate is for; clients resolve it to the server's loopback address.
pub const TLS_NAME: &str = "storm.confctl.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the binary on a free loopback port with an empty configuration file, logging warnings only, and
/// `env` (`CONFCTL_*` variables) on top; returns once `/readyz` answers.
pub async fn serve(db: &Database, env: &[(&str, &str)]) -> Served {
    serve_with_args(db, env, &[]).await
}

/// As [`serve`], with more arguments to `confctl serve` (e.g. `--with-agent`).
pub async fn serve_with_args(db: &Database, env: &[(&str, &str)], args: &[&str]) -> Served {
    start(db, env, args, false).await
}

/// As [`serve`], with HTTPS on the port instead of plain HTTP: certificate files signed by a CA made for
/// this run (only [`Served::client_builder`]'s clients trust it), ALPN offering HTTP/2 first, no redirect
/// listener.
pub async fn serve_https(db: &Database, env: &[(&str, &str)]) -> Served {
    start(db, env, &[], true).await
}

/// A CA made for one run and a certificate for [`TLS_NAME`] it signed, written as `cert.pem` and `key.pem`
/// into `dir`; returns the client configuration that trusts the CA (and offers HTTP/2, then HTTP/1.1).
pub fn certificate_files(dir: &std::path::Path) -> rustls::ClientConfig {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "confctl bench CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![TLS_NAME.to_owned()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

async fn start(db: &Database, env: &[(&str, &str)], args: &[&str], https: bool) -> Served {
    confctl::tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut cmd = Command::new(binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFCTL_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("CONFCTL_CONFIG", &config)
        .env("CONFCTL_DATA_DIR", dir.path().join("data"))
        .env("CONFCTL_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut postgres_db = None;
    if let Database::Postgres { admin_url } = db {
        let name = format!("confctl_bench_{}_{port}", std::process::id());
        postgres(admin_url, format!("CREATE DATABASE {name}")).await;
        let (prefix, _) = admin_url.rsplit_once('/').unwrap();
        cmd.env("CONFCTL_DATABASE_URL", format!("{prefix}/{name}"));
        postgres_db = Some((admin_url.clone(), name));
    }
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (tls, base) = if https {
        let config = certificate_files(dir.path());
        cmd.env("CONFCTL_TLS__CERT_FILE", dir.path().join("cert.pem"))
            .env("CONFCTL_TLS__KEY_FILE", dir.path().join("key.pem"))
            .env("CONFCTL_TLS__LISTEN", addr.to_string())
            // No `domains`: the first account then needs no setup code from the log.
            .env("CONFCTL_TLS__REDIRECT_LISTEN", "off");
        (Some(config), format!("https://{TLS_NAME}:{port}"))
    } else {
        (None, format!("http://{addr}"))
    };
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd.spawn().unwrap();
    let served = Served { child, postgres: postgres_db, tls, addr, base, dir };
    let http = served.client_builder().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", served.base)).send().await {
            if r.status().is_success() {
                return served;
            }
        }
        assert!(Instant::now() < deadline, "confctl serve did not become ready; see {}", served.log_path().display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Served {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client builder for this server: with TLS on, trusting the run's CA only and resolving
    /// [`TLS_NAME`] to the server.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        match &self.tls {
            Some(config) => builder.tls_backend_preconfigured(config.clone()).resolve(TLS_NAME, self.addr),
            None => builder,
        }
    }

    /// A client whose connections leave from `from`.
    pub fn client_from(&self, from: IpAddr) -> reqwest::Client {
        self.client_builder()
            .local_address(from)
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap()
    }

    /// The PostgreSQL database made for this server, when it runs on PostgreSQL.
    pub fn database_url(&self) -> Option<String> {
        let (admin_url, name) = self.postgres.as_ref()?;
        let (prefix, _) = admin_url.rsplit_once('/')?;
        Some(format!("{prefix}/{name}"))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    /// Of the resident memory now, in KiB: the anonymous part (heap, stacks) and the file-backed part (the
    /// binary's code and read-only data, mapped from disk: clean pages the kernel can drop and read again).
    pub fn rss_split_kib(&self) -> (u64, u64) {
        (status_field(self.pid(), "RssAnon:"), status_field(self.pid(), "RssFile:"))
    }

    /// CPU time used so far (user + system), in clock ticks (1/100 s on Linux).
    pub fn cpu_ticks(&self) -> u64 {
        let [user, system, ..] = cpu_fields(&self.pid().to_string());
        user + system
    }

    /// Stops the server (SIGKILL: nothing of its shutdown is measured) and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin_url, name)) = self.postgres.take() {
            postgres(&admin_url, format!("DROP DATABASE {name} WITH (FORCE)")).await;
        }
    }
}

/// A server left behind by a panic (a failed assertion) is stopped too.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `utime`, `stime`, `cutime`, `cstime` of `/proc/<pid>/stat` (`pid` may be `self`), in clock ticks (1/100 s
/// on Linux): the process's own CPU, then that of its children it has waited for.
fn cpu_fields(pid: &str) -> [u64; 4] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    [11, 12, 13, 14].map(|i| fields[i].parse::<u64>().unwrap())
}

/// CPU time of this process so far (user + system, all threads) and of the child processes it has waited
/// for (render workers once shut down).
pub fn own_and_children_cpu() -> (Duration, Duration) {
    let [user, system, child_user, child_system] = cpu_fields("self");
    (Duration::from_millis((user + system) * 10), Duration::from_millis((child_user + child_system) * 10))
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The machine's load average over the last minute, as `uptime` shows it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A signed-in host with one room.
pub struct Host {
    pub http: reqwest::Client,
    pub base: String,
    pub room_id: String,
    pub invite_code: String,
}

impl Host {
    /// Registers the first account (the administrator) and creates a room with `settings` (lobby on unless
    /// they say otherwise).
    pub async fn with_room(served: &Served, settings: Value) -> Self {
        let base = &served.base;
        let http = served.client_builder().cookie_store(true).build().unwrap();
        let r = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"email": "host@uni.edu", "password": "correct horse battery", "name": "Host"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "register: {}", r.text().await.unwrap_or_default());
        let mut body = json!({"name": "Storm"});
        if let (Some(b), Some(s)) = (body.as_object_mut(), settings.as_object()) {
            b.extend(s.clone());
        }
        let r = http.post(format!("{base}/api/rooms")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let room: Value = r.json().await.unwrap();
        Self {
            http,
            base: base.to_owned(),
            room_id: room["id"].as_str().unwrap().to_owned(),
            invite_code: room["inviteCode"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// `n` loopback addresses for clients to send from: 127.0.1.1, 127.0.1.2, … (all of 127.0.0.0/8 reaches the
/// local machine on Linux, and any of it can be bound).
pub fn source_addresses(n: usize) -> Vec<IpAddr> {
    (0..n).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8))).collect()
}

/// A waiting room's event stream, read event by event.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub async fn open(http: &reqwest::Client, url: &str) -> Result<Self, String> {
        let response = http.get(url).header("accept", "text/event-stream").send().await.map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("stream answered {}", response.status()));
        }
        Ok(Self { response, buffer: String::new() })
    }

    /// The next event's JSON data (heartbeats skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                if data.is_empty() {
                    continue;
                }
                return serde_json::from_str(&data).ok();
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The value at quantile `q` (0..=1) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The value after `--name` on the command line.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

/// Whether `--name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
