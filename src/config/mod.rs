//! Typed configuration, layered: built-in defaults < config file < `CONFCTL_*` environment < command-line flags.

pub mod example;
pub mod keys;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::{Table, Value};

use crate::secret::Secret;
use keys::{KEYS, Kind};

/// The configuration file read when `--config` is not given (skipped silently when absent).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/confctl/confctl.toml";

/// LiveKit's `--dev` credentials: fine on a laptop, a vulnerability anywhere else.
pub const LIVEKIT_DEV_KEY: &str = "devkey";
pub const LIVEKIT_DEV_SECRET: &str = "secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    Open,
    Closed,
}

/// The whole configuration, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: Option<Secret>,
    pub public_url: Option<url::Url>,
    pub domains: Vec<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub trusted_proxies: Vec<IpNet>,
    pub allowed_ips: Vec<IpNet>,
    pub dev_access_key: Option<Secret>,
    pub max_body_bytes: usize,
    pub auth: AuthConfig,
    pub rate_limits: RateLimitConfig,
    pub livekit: LiveKitConfig,
    pub files: FilesConfig,
    pub agent: AgentConfig,
    /// Every setting after layering, by dotted key: lets a reload tell which keys changed.
    #[serde(skip)]
    pub layered: Layered,
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub registration: RegistrationPolicy,
    #[serde(deserialize_with = "de_duration")]
    pub session_idle_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub session_lifetime: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub login_per_ip_per_minute: u32,
    pub login_per_account_per_minute: u32,
    pub register_per_ip_per_hour: u32,
    pub joins_per_ip_per_minute: u32,
    pub pin_failures_per_ip_per_minute: u32,
    pub pin_failures_per_guest_per_minute: u32,
    pub lobby_streams_per_ip: u32,
    pub invite_lookups_per_ip_per_minute: u32,
    pub chat_messages_per_minute: u32,
}

/// The AI assistant's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub default_language: String,
    pub server_url: url::Url,
    pub token: Option<Secret>,
    pub stt_provider: SttProvider,
    pub stt_url: url::Url,
    pub stt_model: String,
    pub stt_api_key: Option<Secret>,
    pub deepgram_url: url::Url,
    pub deepgram_model: String,
    pub deepgram_api_key: Option<Secret>,
    pub llm_url: Option<url::Url>,
    pub llm_model: String,
    pub llm_api_key: Option<Secret>,
    pub webrtc_udp_addr: SocketAddr,
    pub shard: String,
}

/// Which speech-to-text service the assistant uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SttProvider {
    Whisper,
    Deepgram,
}

impl AgentConfig {
    /// This worker's share of rooms, (K, N) from `shard = "K/N"`.
    pub fn shard(&self) -> Option<(u32, u32)> {
        let (k, n) = self.shard.trim().split_once('/')?;
        let (k, n): (u32, u32) = (k.trim().parse().ok()?, n.trim().parse().ok()?);
        (1..=n).contains(&k).then_some((k, n))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    pub backend: StorageBackend,
    pub local_dir: Option<PathBuf>,
    pub s3_endpoint: Option<url::Url>,
    pub s3_region: String,
    pub s3_bucket: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret,
    pub s3_path_style: bool,
    pub max_size_bytes: u64,
    pub room_quota_bytes: u64,
    pub allowed_extensions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveKitConfig {
    pub url: url::Url,
    pub public_url: Option<url::Url>,
    pub api_key: String,
    pub api_secret: Secret,
    #[serde(deserialize_with = "de_duration")]
    pub reconcile_interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub empty_room_grace: Duration,
}

/// HTTPS served by confctl itself (see `src/tls`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    /// `None`: no plain-HTTP redirect listener (`off`).
    #[serde(deserialize_with = "de_listen_or_off")]
    pub redirect_listen: Option<SocketAddr>,
    pub acme_email: Option<String>,
    pub acme_directory: Option<url::Url>,
    pub acme_staging: bool,
    pub acme_ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// True when confctl terminates TLS itself (ACME or certificate files).
    pub fn enabled(&self) -> bool {
        self.acme_email.is_some() || self.cert_file.is_some()
    }
}

fn de_listen_or_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("`{text}` is not an address")))
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::time::parse_duration(&text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a duration")))
}

/// The layered settings as raw values. Its `Debug` shows nothing: the raw values include secrets.
#[derive(Clone, Default)]
pub struct Layered(Table);

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layered(..)")
    }
}

/// Where a setting came from, for error messages that tell the operator what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("the built-in default"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(v) => write!(f, "environment variable {v}"),
            Source::Flag(name) => write!(f, "command-line flag {name}"),
        }
    }
}

/// A configuration that cannot be used: one line naming the key, the value, where it was set and what is
/// allowed. The CLI prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// What to layer on top of the defaults.
#[derive(Default, Clone)]
pub struct Sources {
    /// An explicit config file (must exist). `None`: [`DEFAULT_CONFIG_PATH`] if it exists.
    pub file: Option<PathBuf>,
    /// Environment variables to consult (normally `std::env::vars()`; tests pass their own).
    pub env: Vec<(String, String)>,
    /// Command-line overrides: (dotted key, value, flag name).
    pub flags: Vec<(String, Value, String)>,
    /// Read [`DEFAULT_CONFIG_PATH`] when `file` is `None` and it exists (the CLI does; tests do not).
    pub read_default_file: bool,
}

impl std::fmt::Debug for Sources {
    // Environment values may be secrets: show only which variables there are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("file", &self.file)
            .field("env", &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("flags", &self.flags.iter().map(|(k, _, flag)| (k.as_str(), flag.as_str())).collect::<Vec<_>>())
            .field("read_default_file", &self.read_default_file)
            .finish()
    }
}

impl Sources {
    /// The process environment, the given file and flags.
    pub fn from_process(file: Option<PathBuf>, flags: Vec<(String, Value, String)>) -> Self {
        Self { file, env: std::env::vars().collect(), flags, read_default_file: true }
    }
}

/// Loads, layers and validates the configuration.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let mut table = Table::new();
    let mut origin: BTreeMap<String, Source> = BTreeMap::new();
    for key in KEYS {
        if let Some(literal) = key.default {
            let value = parse_literal(literal)
                .ok_or_else(|| ConfigError(format!("built-in default of `{}` is broken", key.path)))?;
            set_path(&mut table, key.path, value);
            origin.insert(key.path.to_owned(), Source::Default);
        }
    }

    let file = match &sources.file {
        Some(path) => Some(path.clone()),
        None if sources.read_default_file && Path::new(DEFAULT_CONFIG_PATH).exists() => {
            Some(PathBuf::from(DEFAULT_CONFIG_PATH))
        }
        None => None,
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let parsed: Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError(format!("config file {} is not valid TOML: {}", path.display(), one_line(&e.to_string())))
        })?;
        for (dotted, value) in flatten(&parsed) {
            if keys::find(&dotted).is_none() {
                return Err(ConfigError(format!(
                    "unknown key `{dotted}` in {} (see `confctl admin default-config` for every key)",
                    path.display()
                )));
            }
            set_path(&mut table, &dotted, value);
            origin.insert(dotted, Source::File(path.clone()));
        }
    }

    let env: BTreeMap<&str, &str> = sources.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for key in KEYS {
        let var = key.env_var();
        let file_var = format!("{var}_FILE");
        let (value, source) = match (env.get(var.as_str()), env.get(file_var.as_str())) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(format!("both {var} and {file_var} are set; set only one")));
            }
            (Some(v), None) => ((*v).to_owned(), Source::Env(var.clone())),
            (None, Some(path)) if key.kind == Kind::Secret => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {file_var}={path}: {e}")))?;
                (text.trim_end_matches(['\n', '\r']).to_owned(), Source::Env(file_var.clone()))
            }
            (None, Some(_)) => {
                return Err(ConfigError(format!("{file_var} is not supported: `{}` is not a secret", key.path)));
            }
            (None, None) => continue,
        };
        let parsed = parse_env_value(key.kind, &value).ok_or_else(|| {
            ConfigError(format!(
                "invalid value `{}` for `{}` (set in {source}): expected {}",
                shown(key.kind, &value),
                key.path,
                key.allowed
            ))
        })?;
        set_path(&mut table, key.path, parsed);
        origin.insert(key.path.to_owned(), source);
    }

    for (path, value, flag) in &sources.flags {
        set_path(&mut table, path, value.clone());
        origin.insert(path.clone(), Source::Flag(flag.clone()));
    }

    // An empty string means "unset" for optional keys, so `CONFCTL_PUBLIC_URL=` can clear a file setting.
    for key in KEYS.iter().filter(|k| k.default.is_none()) {
        if matches!(get_path(&table, key.path), Some(Value::String(s)) if s.is_empty()) {
            remove_path(&mut table, key.path);
        }
    }

    let mut config: Config = serde_path_to_error::deserialize(Value::Table(table.clone())).map_err(|err| {
        let path = err.path().to_string();
        let key_path = path.split('[').next().unwrap_or(&path).to_owned();
        let key = keys::find(&key_path);
        let value = get_path(&table, &key_path).map(|v| shown(key.map_or(Kind::Text, |k| k.kind), &v.to_string()));
        let source = origin.get(&key_path).map(ToString::to_string).unwrap_or_else(|| "the configuration".into());
        match (key, value) {
            (Some(key), Some(value)) => ConfigError(format!(
                "invalid value {value} for `{}` (set in {source}): expected {}",
                key.path, key.allowed
            )),
            _ => ConfigError(format!("invalid configuration at `{path}`: {}", one_line(&err.inner().to_string()))),
        }
    })?;
    config.validate(&origin)?;
    config.layered = Layered(table);
    Ok(config)
}

impl Config {
    /// The configuration with no file, environment or flags: what `confctl serve` runs with out of the box.
    pub fn defaults() -> Result<Self, ConfigError> {
        load(&Sources::default())
    }

    fn validate(&self, origin: &BTreeMap<String, Source>) -> Result<(), ConfigError> {
        let bad = |key: &str, value: &dyn std::fmt::Display| {
            let k = keys::find(key).map(|k| k.allowed).unwrap_or("a valid value");
            let source = origin.get(key).map(ToString::to_string).unwrap_or_default();
            ConfigError(format!("invalid value `{value}` for `{key}` (set in {source}): expected {k}"))
        };
        if let Some(url) = &self.database_url {
            let text = url.expose();
            if !(text.starts_with("sqlite:") || text.starts_with("postgres://") || text.starts_with("postgresql://")) {
                let scheme = text.split(':').next().unwrap_or_default();
                return Err(bad("database_url", &format!("{scheme}:…")));
            }
        }
        if let Some(url) = &self.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("public_url", url));
            }
        }
        if !matches!(self.livekit.url.scheme(), "ws" | "wss" | "http" | "https") {
            return Err(bad("livekit.url", &self.livekit.url));
        }
        if let Some(url) = &self.livekit.public_url {
            if !matches!(url.scheme(), "ws" | "wss") {
                return Err(bad("livekit.public_url", url));
            }
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(bad("max_body_bytes", &self.max_body_bytes));
        }
        for (key, n) in [
            ("rate_limits.login_per_ip_per_minute", self.rate_limits.login_per_ip_per_minute),
            ("rate_limits.login_per_account_per_minute", self.rate_limits.login_per_account_per_minute),
            ("rate_limits.register_per_ip_per_hour", self.rate_limits.register_per_ip_per_hour),
            ("rate_limits.joins_per_ip_per_minute", self.rate_limits.joins_per_ip_per_minute),
            ("rate_limits.pin_failures_per_ip_per_minute", self.rate_limits.pin_failures_per_ip_per_minute),
            ("rate_limits.pin_failures_per_guest_per_minute", self.rate_limits.pin_failures_per_guest_per_minute),
            ("rate_limits.lobby_streams_per_ip", self.rate_limits.lobby_streams_per_ip),
            ("rate_limits.invite_lookups_per_ip_per_minute", self.rate_limits.invite_lookups_per_ip_per_minute),
            ("rate_limits.chat_messages_per_minute", self.rate_limits.chat_messages_per_minute),
        ] {
            if !(1..=100_000).contains(&n) {
                return Err(bad(key, &n));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(bad("log_level", &self.log_level));
        }
        for domain in &self.domains {
            let valid = !domain.is_empty()
                && domain.len() <= 253
                && domain.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid {
                return Err(bad("domains", domain));
            }
        }
        self.validate_tls(origin)?;
        if !(1..=10 * 1024 * 1024 * 1024).contains(&self.files.max_size_bytes) {
            return Err(bad("files.max_size_bytes", &self.files.max_size_bytes));
        }
        if !(1..=1024 * 1024 * 1024 * 1024).contains(&self.files.room_quota_bytes) {
            return Err(bad("files.room_quota_bytes", &self.files.room_quota_bytes));
        }
        if self.files.backend == StorageBackend::S3 {
            if self.files.s3_bucket.trim().is_empty() {
                return Err(bad("files.s3_bucket", &"(empty)"));
            }
            if self.files.s3_access_key_id.trim().is_empty() {
                return Err(bad("files.s3_access_key_id", &"(empty)"));
            }
        }
        if let Some(url) = &self.files.s3_endpoint {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("files.s3_endpoint", url));
            }
        }
        if !crate::rooms::is_language_code(&self.agent.default_language) {
            return Err(bad("agent.default_language", &self.agent.default_language));
        }
        for (key, url, schemes) in [
            ("agent.server_url", Some(&self.agent.server_url), &["http", "https"][..]),
            ("agent.stt_url", Some(&self.agent.stt_url), &["http", "https"]),
            ("agent.deepgram_url", Some(&self.agent.deepgram_url), &["ws", "wss"]),
            ("agent.llm_url", self.agent.llm_url.as_ref(), &["http", "https"]),
        ] {
            if let Some(url) = url.filter(|u| !schemes.contains(&u.scheme())) {
                return Err(bad(key, url));
            }
        }
        if self.agent.shard().is_none() {
            return Err(bad("agent.shard", &self.agent.shard));
        }
        if self.livekit.api_key.trim().is_empty() {
            return Err(bad("livekit.api_key", &"(empty)"));
        }
        if self.livekit.api_secret.is_empty() {
            return Err(bad("livekit.api_secret", &"(empty)"));
        }
        Ok(())
    }

    /// The `[tls]` combinations that cannot work, named with where each setting came from.
    fn validate_tls(&self, origin: &BTreeMap<String, Source>) -> Result<(), ConfigError> {
        let tls = &self.tls;
        let from = |key: &str| origin.get(key).map(ToString::to_string).unwrap_or_default();
        let conflict = |a: &str, b: &str, why: &str| {
            ConfigError(format!("`{a}` (set in {}) and `{b}` (set in {}) {why}", from(a), from(b)))
        };
        if let Some(email) = &tls.acme_email {
            let valid = email.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !email.chars().any(|c| c.is_whitespace() || c == ',' || c == ':');
            if !valid {
                let allowed = keys::find("tls.acme_email").map(|k| k.allowed).unwrap_or_default();
                return Err(ConfigError(format!(
                    "invalid value `{email}` for `tls.acme_email` (set in {}): expected {allowed}",
                    from("tls.acme_email")
                )));
            }
            if self.domains.is_empty() {
                return Err(ConfigError(format!(
                    "`tls.acme_email` is set (in {}) but `domains` is empty: ACME needs the public DNS names to \
                     get a certificate for (--domain NAME, CONFCTL_DOMAINS or domains = [...])",
                    from("tls.acme_email")
                )));
            }
            if tls.cert_file.is_some() {
                return Err(conflict(
                    "tls.acme_email",
                    "tls.cert_file",
                    "are both set: use ACME or your own certificate, not both",
                ));
            }
        } else {
            for (key, set) in [
                ("tls.acme_directory", tls.acme_directory.is_some()),
                ("tls.acme_ca_file", tls.acme_ca_file.is_some()),
                ("tls.acme_staging", tls.acme_staging),
            ] {
                if set {
                    return Err(ConfigError(format!(
                        "`{key}` is set (in {}) but ACME is off: set `tls.acme_email` to turn it on",
                        from(key)
                    )));
                }
            }
        }
        if let Some(url) = &tls.acme_directory {
            if url.scheme() != "https" {
                let allowed = keys::find("tls.acme_directory").map(|k| k.allowed).unwrap_or_default();
                return Err(ConfigError(format!(
                    "invalid value `{url}` for `tls.acme_directory` (set in {}): expected {allowed}",
                    from("tls.acme_directory")
                )));
            }
            if tls.acme_staging {
                return Err(conflict(
                    "tls.acme_directory",
                    "tls.acme_staging",
                    "are both set: staging means Let's Encrypt's staging directory; set only one",
                ));
            }
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => {
                return Err(ConfigError(format!(
                    "`tls.cert_file` is set (in {}) but `tls.key_file` is not: both are needed",
                    from("tls.cert_file")
                )));
            }
            (None, Some(_)) => {
                return Err(ConfigError(format!(
                    "`tls.key_file` is set (in {}) but `tls.cert_file` is not: both are needed",
                    from("tls.key_file")
                )));
            }
            _ => {}
        }
        if tls.listen.port() != 0 && tls.redirect_listen == Some(tls.listen) {
            return Err(conflict(
                "tls.listen",
                "tls.redirect_listen",
                "are the same address; they need different ports",
            ));
        }
        Ok(())
    }

    /// Keys whose values differ between two configurations.
    pub fn changed_keys(&self, other: &Config) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| get_path(&self.layered.0, k.path) != get_path(&other.layered.0, k.path))
            .map(|k| k.path)
            .collect()
    }

    /// The database URL in effect: the configured one, or SQLite inside the data directory.
    pub fn effective_database_url(&self) -> Secret {
        match &self.database_url {
            Some(url) => url.clone(),
            None => Secret::new(format!("sqlite://{}", self.data_dir.join("confctl.db").display())),
        }
    }

    /// True when LiveKit is configured with its public development credentials.
    pub fn uses_livekit_dev_credentials(&self) -> bool {
        self.livekit.api_key == LIVEKIT_DEV_KEY && self.livekit.api_secret.expose() == LIVEKIT_DEV_SECRET
    }

    /// A public deployment: a domain is configured, so the instance is reachable by strangers.
    pub fn is_public(&self) -> bool {
        !self.domains.is_empty()
    }

    /// The dev access key, when it applies (only without a public domain).
    pub fn effective_dev_access_key(&self) -> Option<&Secret> {
        self.dev_access_key.as_ref().filter(|k| !k.is_empty() && !self.is_public())
    }

    /// The URL browsers use to reach LiveKit.
    pub fn livekit_browser_url(&self) -> String {
        let url = self.livekit.public_url.as_ref().unwrap_or(&self.livekit.url);
        let mut url = url.clone();
        let scheme = match url.scheme() {
            "http" => Some("ws"),
            "https" => Some("wss"),
            _ => None,
        };
        if let Some(s) = scheme {
            let _ = url.set_scheme(s);
        }
        url.as_str().trim_end_matches('/').to_owned()
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shown(kind: Kind, value: &str) -> String {
    if kind == Kind::Secret { "[redacted]".to_owned() } else { value.to_owned() }
}

fn parse_literal(literal: &str) -> Option<Value> {
    let doc: Table = format!("v = {literal}").parse().ok()?;
    doc.get("v").cloned()
}

fn parse_env_value(kind: Kind, text: &str) -> Option<Value> {
    match kind {
        Kind::Text | Kind::Secret => Some(Value::String(text.to_owned())),
        Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(Value::Boolean(true)),
            "0" | "false" | "no" | "off" => Some(Value::Boolean(false)),
            _ => None,
        },
        Kind::Integer => text.trim().parse::<i64>().ok().map(Value::Integer),
        Kind::List => Some(Value::Array(
            text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect(),
        )),
    }
}

fn flatten(table: &Table) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            Value::Table(inner) if keys::find(k).is_none() => {
                for (ik, iv) in flatten(inner) {
                    out.push((format!("{k}.{ik}"), iv));
                }
            }
            other => out.push((k.clone(), other.clone())),
        }
    }
    out
}

fn set_path(table: &mut Table, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_owned()).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_owned(), value);
}

fn get_path<'a>(table: &'a Table, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut value = table.get(first)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

fn remove_path(table: &mut Table, path: &str) {
    match path.split_once('.') {
        None => {
            table.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Table(inner)) = table.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests;
