//! Checks on a layered configuration that types alone cannot express: value ranges (from the key table),
//! URL schemes, and combinations that cannot work. Each failure is one line naming the key, the value, where
//! it was set and what is allowed.

use std::collections::BTreeMap;

use super::keys::{KEYS, Kind};
use super::layer::{ConfigError, Source, not_allowed};
use super::{Config, StorageBackend};

impl Config {
    pub(super) fn validate(&self, origin: &BTreeMap<String, Source>) -> Result<(), ConfigError> {
        let bad = |key: &str, value: &dyn std::fmt::Display| invalid(key, value, origin);
        // Every integer key's range lives in the key table; checking the layered values keeps the help text
        // and the check from drifting apart.
        for key in KEYS.iter().filter(|k| k.kind == Kind::Integer) {
            let (Some((min, max)), Some(n)) = (key.range, self.layered.get(key.path).and_then(|v| v.as_integer()))
            else {
                continue;
            };
            if !(min..=max).contains(&n) {
                return Err(bad(key.path, &n));
            }
        }
        if let Some(url) = &self.database_url {
            let text = url.expose();
            if crate::store::Dialect::of_url(text).is_none() {
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
        if !is_language_code(&self.agent.default_language) {
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
        self.validate_google(origin)?;
        for (key, url) in [
            ("google.auth_url", &self.google.auth_url),
            ("google.token_url", &self.google.token_url),
            ("google.revoke_url", &self.google.revoke_url),
            ("google.drive_url", &self.google.drive_url),
        ] {
            if !matches!(url.scheme(), "http" | "https") {
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
                return Err(invalid("tls.acme_email", email, origin));
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
                return Err(invalid("tls.acme_directory", url, origin));
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
}

impl Config {
    /// Half an OAuth client cannot work: say which half is missing rather than quietly hiding Drive.
    fn validate_google(&self, origin: &BTreeMap<String, Source>) -> Result<(), ConfigError> {
        let from = |key: &str| origin.get(key).map(ToString::to_string).unwrap_or_default();
        let id = self.google.client_id.as_deref().is_some_and(|id| !id.trim().is_empty());
        let secret = self.google.client_secret.as_ref().is_some_and(|s| !s.is_empty());
        let (set, missing) = match (id, secret) {
            (true, false) => ("google.client_id", "google.client_secret"),
            (false, true) => ("google.client_secret", "google.client_id"),
            _ => return Ok(()),
        };
        Err(ConfigError(format!(
            "`{set}` is set (in {}) but `{missing}` is not: Google Drive export needs both",
            from(set)
        )))
    }
}

/// A value that is not allowed, with where it was set.
fn invalid(key: &str, value: &dyn std::fmt::Display, origin: &BTreeMap<String, Source>) -> ConfigError {
    let source = origin.get(key).map(ToString::to_string).unwrap_or_else(|| "the configuration".into());
    not_allowed(key, value, &source)
}

/// A short language code: `en`, `ru`, `pt-BR`.
pub fn is_language_code(code: &str) -> bool {
    let mut parts = code.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}
