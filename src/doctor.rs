//! `confctl doctor`: checks an installation piece by piece — configuration, database, the `serve` replicas
//! running on it, file storage, LiveKit, webhooks, certificates, free disk — each with a one-line verdict
//! and a hint.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, StorageBackend};

/// How a check came out. A warning does not fail the run; it points at something to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, verdict: Verdict::Ok, message: message.into(), hint: None }
    }
    fn warn(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { name, verdict: Verdict::Warn, message: message.into(), hint: Some(hint.into()) }
    }
    fn fail(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { name, verdict: Verdict::Fail, message: message.into(), hint: Some(hint.into()) }
    }
}

/// The result of reading the configuration, as `doctor` reports it (a broken config is a failed check,
/// not an early exit).
pub fn config_check(result: &Result<Config, crate::config::ConfigError>) -> Check {
    match result {
        Ok(_) => Check::ok("config", "configuration parses and validates"),
        Err(err) => {
            Check::fail("config", err.0.clone(), "fix the named key; `confctl admin default-config` lists every key")
        }
    }
}

/// Runs every check that needs a valid configuration.
pub async fn run(config: &Config) -> Vec<Check> {
    crate::tls_provider();
    let mut checks = Vec::new();
    let store = match crate::store::Store::connect(&config.effective_database_url()).await {
        Ok(store) => {
            checks.push(database_check(&store).await);
            checks.push(replicas_check(&store, config).await);
            Some(store)
        }
        Err(err) => {
            checks.push(Check::fail(
                "database",
                format!("{err:#}"),
                "check database_url, that the server runs and accepts this user",
            ));
            None
        }
    };
    checks.push(storage_check(config).await);
    checks.push(livekit_check(config).await);
    checks.push(webhook_check(config));
    checks.push(certificate_check(config));
    checks.push(disk_check(config));
    // Speech to text matters where an assistant runs from this configuration; the LLM wherever one is set.
    if config.agent.token.is_some() {
        checks.push(stt_check(config).await);
    }
    if config.agent.llm_url.is_some() {
        checks.push(llm_check(config).await);
    }
    if let Some(store) = store {
        store.close().await;
    }
    checks
}

async fn database_check(store: &crate::store::Store) -> Check {
    match store.migration_status().await {
        Ok(status) if !status.unknown.is_empty() => Check::fail(
            "database",
            format!("{} database is newer than this confctl", status.dialect.name()),
            "upgrade confctl to the version that migrated this database",
        ),
        Ok(status) if status.pending() > 0 => Check::fail(
            "database",
            format!("{} reachable; {} migration(s) pending", status.dialect.name(), status.pending()),
            "run `confctl migrate` (or start `confctl serve`, which migrates)",
        ),
        Ok(status) => Check::ok(
            "database",
            format!(
                "{} reachable, schema version {} (current)",
                status.dialect.name(),
                crate::store::migrations::latest_version()
            ),
        ),
        Err(err) => {
            Check::fail("database", format!("cannot read the schema: {err:#}"), "check the database user's rights")
        }
    }
}

/// The `confctl serve` processes that wrote a heartbeat in the last minute: a warning when they run
/// different versions or disagree on settings that must be the same everywhere, or when none of several
/// on PostgreSQL leads.
async fn replicas_check(store: &crate::store::Store, config: &Config) -> Check {
    let now = crate::time::now_ms();
    let since = now.saturating_sub(i64::try_from(crate::replicas::SEEN_WITHIN.as_millis()).unwrap_or(i64::MAX));
    match store.replicas_seen_since(since).await {
        Ok(rows) => {
            // Each running replica keeps a marker object in its file storage: one this machine's storage does
            // not have is a replica whose files this one cannot serve. (A storage that does not answer at all
            // is the storage check's business.)
            let mut unseen = Vec::new();
            if let Ok(storage) = crate::storage::Storage::from_config(config) {
                for row in &rows {
                    if let Ok(None) = storage.size(&crate::replicas::storage_marker(&row.id)).await {
                        unseen.push(row.id.chars().take(8).collect::<String>());
                    }
                }
            }
            replicas_verdict(&rows, &unseen, now)
        }
        Err(err) => Check::warn(
            "replicas",
            format!("cannot read the replicas' heartbeats: {err}"),
            "run `confctl migrate` if migrations are pending",
        ),
    }
}

/// The verdict on the replicas seen (see [`replicas_check`]), as of `now_ms`; `unseen`: the (short) ids of
/// those whose storage marker this machine's file storage lacks.
pub fn replicas_verdict(rows: &[crate::store::ReplicaRecord], unseen: &[String], now_ms: i64) -> Check {
    if rows.is_empty() {
        return Check::ok("replicas", "no `confctl serve` has reported in the last minute");
    }
    let list = rows
        .iter()
        .map(|r| {
            let short: String = r.id.chars().take(8).collect();
            let up = Duration::from_secs(u64::try_from((now_ms - r.started_at).max(0) / 1000).unwrap_or(0));
            format!(
                "{short} on {} (version {}, settings {}{}, up {})",
                r.host,
                r.version,
                r.config_fingerprint,
                if r.leader { ", leader" } else { "" },
                uptime(up)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let count = rows.len();
    let message = format!("{count} replica(s) seen in the last minute: {list}");
    let distinct = |f: fn(&crate::store::ReplicaRecord) -> &str| {
        rows.iter().map(f).collect::<std::collections::BTreeSet<_>>().len()
    };
    if distinct(|r| r.version.as_str()) > 1 {
        Check::warn(
            "replicas",
            format!("replicas run different versions — {message}"),
            "finish the upgrade: replace the replicas one at a time until all run the same version",
        )
    } else if distinct(|r| r.config_fingerprint.as_str()) > 1 {
        Check::warn(
            "replicas",
            format!("replicas run with different settings — {message}"),
            "give every replica the same configuration; only data_dir, listen, log_*, files.local_dir, [tls] and \
             [agent] may differ (secrets are not compared: check them too)",
        )
    } else if !unseen.is_empty() {
        Check::warn(
            "replicas",
            format!("the file storage here does not hold what replica(s) {} write — {message}", unseen.join(", ")),
            "files uploaded through one replica must be readable by all: use S3, or mount one directory on every \
             replica as files.local_dir",
        )
    } else if !rows.iter().any(|r| r.leader) {
        Check::warn(
            "replicas",
            format!("no replica leads the background jobs — {message}"),
            "a new leader takes over within seconds; if this lasts, check the replicas' logs and database connections",
        )
    } else {
        Check::ok("replicas", message)
    }
}

/// `3d 4h`, `2h 5m`, `7m`, `40s`.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

async fn storage_check(config: &Config) -> Check {
    let what = match config.files.backend {
        StorageBackend::Local => "local directory".to_owned(),
        StorageBackend::S3 => format!("S3 bucket {}", config.files.s3_bucket),
    };
    let storage = match crate::storage::Storage::from_config(config) {
        Ok(s) => s,
        Err(err) => return Check::fail("storage", format!("{what}: {err:#}"), "check the [files] settings"),
    };
    match tokio::time::timeout(Duration::from_secs(10), storage.probe()).await {
        Ok(Ok(())) => Check::ok("storage", format!("{what} writable (write, read back, delete)")),
        Ok(Err(err)) => {
            Check::fail("storage", format!("{what}: {err}"), "check the endpoint, bucket, credentials and permissions")
        }
        Err(_) => {
            Check::fail("storage", format!("{what}: no answer within 10 s"), "check the S3 endpoint is reachable")
        }
    }
}

async fn livekit_check(config: &Config) -> Check {
    let livekit = crate::livekit::LiveKit::new(config);
    let dev = if config.uses_livekit_dev_credentials() { " (with the public development credentials!)" } else { "" };
    match tokio::time::timeout(Duration::from_secs(10), livekit.list_rooms()).await {
        Ok(Ok(rooms)) => {
            let skew = clock_skew(config).await;
            let message = format!(
                "{} answers ListRooms with the configured key ({} open rooms){dev}",
                config.livekit.url,
                rooms.len()
            );
            match skew {
                Some(skew) if skew.abs() > 30 => Check::warn(
                    "livekit",
                    format!("{message}; clocks differ by {skew} s"),
                    "synchronise time (chrony/systemd-timesyncd): tokens carry expiry times",
                ),
                _ if !dev.is_empty() => {
                    Check::warn("livekit", message, "set [livekit] api_key and api_secret for any real deployment")
                }
                _ => Check::ok("livekit", message),
            }
        }
        Ok(Err(err)) => Check::fail(
            "livekit",
            format!("{}: {err}", config.livekit.url),
            "check [livekit] url, api_key and api_secret",
        ),
        Err(_) => Check::fail(
            "livekit",
            format!("{}: no answer within 10 s", config.livekit.url),
            "check the URL and the firewall",
        ),
    }
}

/// LiveKit's clock minus ours, in seconds, from the `Date` header of its HTTP answer.
async fn clock_skew(config: &Config) -> Option<i64> {
    let mut url = config.livekit.url.clone();
    let scheme = if url.scheme() == "wss" {
        "https"
    } else if url.scheme() == "ws" {
        "http"
    } else {
        url.scheme()
    };
    let scheme = scheme.to_owned();
    url.set_scheme(&scheme).ok()?;
    let response = reqwest::Client::new().get(url).timeout(Duration::from_secs(5)).send().await.ok()?;
    let date = response.headers().get(reqwest::header::DATE)?.to_str().ok()?;
    let theirs = chrono::DateTime::parse_from_rfc2822(date).ok()?.timestamp();
    Some(theirs - chrono::Utc::now().timestamp())
}

fn webhook_check(config: &Config) -> Check {
    let base = match (&config.public_url, config.domains.first()) {
        (Some(url), _) => Some(url.as_str().trim_end_matches('/').to_owned()),
        (None, Some(domain)) => Some(format!("https://{domain}")),
        (None, None) => None,
    };
    match base {
        Some(base) => {
            Check::ok("webhook", format!("point LiveKit's webhook at {base}/api/webhooks/livekit (same API key)"))
        }
        None => Check::warn(
            "webhook",
            "no public address configured, so LiveKit cannot be told where to send webhooks",
            "set public_url (or --domain); rooms still end through reconciliation, only later",
        ),
    }
}

fn certificate_check(config: &Config) -> Check {
    match crate::tls::CertificateStatus::from_disk(config) {
        Ok(None) => Check::ok("certificate", "TLS is off (plain HTTP; put confctl behind HTTPS or use --domain)"),
        Ok(Some(status)) => {
            let Some(not_after) = status.not_after else {
                return Check::warn(
                    "certificate",
                    format!(
                        "{}: no certificate obtained yet{}",
                        status.source,
                        status.last_error.map(|e| format!(" (last error: {e})")).unwrap_or_default()
                    ),
                    "start `confctl serve` and make sure port 443 is reachable from the internet",
                );
            };
            let days = (not_after - chrono::Utc::now()).num_days();
            let summary = format!(
                "{} for {} from {}, expires {} ({days} days)",
                status.source,
                status.names_text(),
                status.issuer.as_deref().unwrap_or("?"),
                not_after.format("%Y-%m-%d")
            );
            match (days, status.last_error) {
                (d, _) if d < 0 => {
                    Check::fail("certificate", format!("{summary}: EXPIRED"), "check renewal errors in the log")
                }
                (_, Some(err)) => Check::warn(
                    "certificate",
                    format!("{summary}; last renewal error: {err}"),
                    "check port 443 and DNS",
                ),
                (d, None) if d < 14 => {
                    Check::warn("certificate", summary, "renewal should have happened; check the log")
                }
                _ => Check::ok("certificate", summary),
            }
        }
        Err(err) => {
            Check::fail("certificate", format!("{err:#}"), "check tls.cert_file/tls.key_file or the ACME cache")
        }
    }
}

/// Asks an HTTP API whether it answers (and accepts the key): 2xx is fine, 401/403 a rejected key.
async fn probe_http(url: String, auth: Option<String>) -> Result<u16, String> {
    let mut request = reqwest::Client::new().get(&url).timeout(Duration::from_secs(10));
    if let Some(auth) = auth {
        request = request.header(reqwest::header::AUTHORIZATION, auth);
    }
    request.send().await.map(|r| r.status().as_u16()).map_err(|e| format!("{url}: {e}"))
}

async fn stt_check(config: &Config) -> Check {
    let agent = &config.agent;
    match agent.stt_provider {
        crate::config::SttProvider::Whisper => {
            let url = format!("{}/models", agent.stt_url.as_str().trim_end_matches('/'));
            let auth = agent.stt_api_key.as_ref().map(|k| format!("Bearer {}", k.expose()));
            match probe_http(url, auth).await {
                Ok(401 | 403) => {
                    Check::fail("stt", format!("{} rejects the key", agent.stt_url), "check [agent] stt_api_key")
                }
                Ok(status) if status < 500 => {
                    Check::ok("stt", format!("transcription server {} answers", agent.stt_url))
                }
                Ok(status) => Check::fail(
                    "stt",
                    format!("{} answers {status}", agent.stt_url),
                    "check the transcription server's log",
                ),
                Err(err) => Check::fail("stt", err, "start the transcription server or fix [agent] stt_url"),
            }
        }
        crate::config::SttProvider::Deepgram => {
            let Some(key) = &agent.deepgram_api_key else {
                return Check::fail("stt", "Deepgram is chosen but no API key is set", "set [agent] deepgram_api_key");
            };
            let base = agent.deepgram_url.as_str().replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
            let url = format!("{}/v1/projects", base.trim_end_matches('/'));
            match probe_http(url, Some(format!("Token {}", key.expose()))).await {
                Ok(200) => Check::ok("stt", "Deepgram accepts the API key"),
                Ok(401 | 403) => Check::fail("stt", "Deepgram rejects the API key", "check [agent] deepgram_api_key"),
                Ok(status) => {
                    Check::warn("stt", format!("Deepgram answers {status}"), "check the Deepgram status page")
                }
                Err(err) => Check::fail("stt", err, "check outbound HTTPS to Deepgram"),
            }
        }
    }
}

async fn llm_check(config: &Config) -> Check {
    let Some(base) = &config.agent.llm_url else { return Check::ok("llm", "no LLM: extractive summaries") };
    let url = format!("{}/models", base.as_str().trim_end_matches('/'));
    let auth = config.agent.llm_api_key.as_ref().map(|k| format!("Bearer {}", k.expose()));
    match probe_http(url, auth).await {
        Ok(status) if (200..300).contains(&status) => {
            Check::ok("llm", format!("{base} answers (model {})", config.agent.llm_model))
        }
        Ok(401 | 403) => Check::fail("llm", format!("{base} rejects the key"), "check [agent] llm_api_key"),
        Ok(status) => Check::warn(
            "llm",
            format!("{base} answers {status} to /models"),
            "summaries may still work; check the server",
        ),
        Err(err) => {
            Check::fail("llm", err, "start the LLM server or unset [agent] llm_url to use extractive summaries")
        }
    }
}

fn disk_check(config: &Config) -> Check {
    let dir = if config.data_dir.exists() { config.data_dir.clone() } else { std::path::PathBuf::from(".") };
    match nix::sys::statvfs::statvfs(&dir) {
        Ok(stat) => {
            // The field types differ between platforms (u32 on some); the casts keep this portable.
            #[allow(clippy::unnecessary_cast)]
            let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
            let gib = free as f64 / (1024.0 * 1024.0 * 1024.0);
            let message = format!("{:.1} GiB free in {}", gib, dir.display());
            if gib < 1.0 {
                Check::fail("disk", message, "free space: the database and local files live here")
            } else if gib < 5.0 {
                Check::warn("disk", message, "less than 5 GiB left; transcripts and files will fill it")
            } else {
                Check::ok("disk", message)
            }
        }
        Err(err) => Check::fail(
            "disk",
            format!("cannot read free space of {}: {err}", dir.display()),
            "check the data_dir path",
        ),
    }
}
