//! Typed configuration, layered: built-in defaults < config file < `CONFCTL_*` environment < command-line flags.

pub mod example;
pub mod keys;
mod layer;
pub mod live;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::secret::Secret;
use keys::KEYS;
pub use layer::{ConfigError, Layered, Source, Sources, load};
pub use live::{LiveSettings, Reload};
pub use validate::is_language_code;

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
    pub google: GoogleConfig,
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

/// Export to Google Drive (see `src/gdrive`): the OAuth client and the endpoints it talks to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub auth_url: url::Url,
    pub token_url: url::Url,
    pub revoke_url: url::Url,
    pub drive_url: url::Url,
}

impl GoogleConfig {
    /// True when hosts may connect Google Drive: both halves of the OAuth client are set.
    pub fn drive_configured(&self) -> bool {
        self.client_id.as_deref().is_some_and(|id| !id.trim().is_empty())
            && self.client_secret.as_ref().is_some_and(|s| !s.is_empty())
    }
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

impl Config {
    /// The configuration with no file, environment or flags: what `confctl serve` runs with out of the box.
    pub fn defaults() -> Result<Self, ConfigError> {
        load(&Sources::default())
    }

    /// Keys whose values differ between two configurations.
    pub fn changed_keys(&self, other: &Config) -> Vec<&'static str> {
        KEYS.iter().filter(|k| self.layered.get(k.path) != other.layered.get(k.path)).map(|k| k.path).collect()
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

#[cfg(test)]
mod tests;
