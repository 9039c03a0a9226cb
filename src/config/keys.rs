//! The table of every configuration key: the one source for defaults, environment parsing, the commented
//! example config (`confctl admin default-config`) and `docs/configuration.md`.

/// How a key's value is written in the file and parsed from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Integer,
    /// A list of strings; in the environment, comma-separated.
    List,
    /// Text that must never be printed; also readable from `<VAR>_FILE`.
    Secret,
}

/// One configuration key.
#[derive(Debug)]
pub struct Key {
    /// Dotted path, e.g. `livekit.api_key`.
    pub path: &'static str,
    pub kind: Kind,
    /// The default as a TOML literal; `None` means unset.
    pub default: Option<&'static str>,
    /// What values are allowed, for error messages.
    pub allowed: &'static str,
    /// One or more lines of explanation for the example config and the docs.
    pub help: &'static str,
}

impl Key {
    /// The environment variable that sets this key: `CONFCTL_` + path upper-cased, sections joined by `__`.
    pub fn env_var(&self) -> String {
        format!("CONFCTL_{}", self.path.replace('.', "__").to_ascii_uppercase())
    }
    /// The section (`livekit`) or `""` for top-level keys.
    pub fn section(&self) -> &'static str {
        self.path.rsplit_once('.').map(|(s, _)| s).unwrap_or("")
    }
    /// The name within its section.
    pub fn name(&self) -> &'static str {
        self.path.rsplit_once('.').map(|(_, n)| n).unwrap_or(self.path)
    }
}

const fn key(
    path: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    allowed: &'static str,
    help: &'static str,
) -> Key {
    Key { path, kind, default, allowed, help }
}

use Kind::*;

/// Section headings, in the order the example config shows them.
pub const SECTIONS: &[(&str, &str)] = &[
    ("", "General settings."),
    ("auth", "Accounts and sign-in sessions."),
    ("rate_limits", "Brute-force protection. Exceeding a limit answers 429 with Retry-After."),
    ("livekit", "The LiveKit media server (LiveKit Cloud or self-hosted)."),
];

/// Every key confctl understands. Top-level keys first, then one block per section.
pub const KEYS: &[Key] = &[
    key(
        "data_dir",
        Text,
        Some("\"./confctl-data\""),
        "a directory path",
        "Where confctl keeps its SQLite database and local files. Created if missing.",
    ),
    key(
        "listen",
        Text,
        Some("\"127.0.0.1:8080\""),
        "an address and port such as 127.0.0.1:8080 or [::]:8080",
        "Address and port for plain HTTP.",
    ),
    key(
        "database_url",
        Secret,
        None,
        "sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
        "Database to use. Unset: SQLite at <data_dir>/confctl.db. Use postgres://… so several\n\
         `confctl serve` replicas can share one database.",
    ),
    key(
        "public_url",
        Text,
        None,
        "an absolute http:// or https:// URL",
        "The address people type in their browser, e.g. https://lectures.example.edu. Used for links and\n\
         to check the Origin of browser requests.",
    ),
    key(
        "domains",
        List,
        Some("[]"),
        "a list of DNS names",
        "Public DNS names this server answers for. When set, the first registration needs the one-time\n\
         setup code printed by `confctl serve` (and `confctl admin setup-code`).",
    ),
    key(
        "log_format",
        Text,
        Some("\"human\""),
        "human or json",
        "Log line format: human-readable or one JSON object per line.",
    ),
    key(
        "log_level",
        Text,
        Some("\"info\""),
        "a tracing filter such as info, debug or confctl=debug,info",
        "Which log lines to write.",
    ),
    key(
        "trusted_proxies",
        List,
        Some("[]"),
        "a list of IP networks such as 10.0.0.0/8",
        "Reverse proxies whose X-Forwarded-For header is believed. Empty: the socket address is the client.",
    ),
    key(
        "allowed_ips",
        List,
        Some("[]"),
        "a list of IP networks such as 192.0.2.0/24",
        "When not empty, only clients from these networks are served (health endpoints stay open).",
    ),
    key(
        "dev_access_key",
        Secret,
        None,
        "any text",
        "Protects a development instance without a domain: every browser must open a URL with ?key=…\n\
         once (then a cookie remembers it). Ignored when `domains` is set.",
    ),
    key(
        "max_body_bytes",
        Integer,
        Some("65536"),
        "a number of bytes between 1024 and 16777216",
        "Largest JSON request body accepted.",
    ),
    key(
        "auth.registration",
        Text,
        Some("\"open\""),
        "open or closed",
        "open: anyone may register a host account. closed: only admins create accounts\n\
         (the very first account can always be registered, to set the instance up).",
    ),
    key(
        "auth.session_idle_timeout",
        Text,
        Some("\"12h\""),
        "a duration such as 30m, 12h or 7d",
        "A sign-in session unused for this long ends.",
    ),
    key(
        "auth.session_lifetime",
        Text,
        Some("\"7d\""),
        "a duration such as 12h or 30d",
        "A sign-in session ends this long after login, however active.",
    ),
    key(
        "rate_limits.login_per_ip_per_minute",
        Integer,
        Some("20"),
        "a number from 1 to 100000",
        "Login attempts per client IP per minute.",
    ),
    key(
        "rate_limits.login_per_account_per_minute",
        Integer,
        Some("5"),
        "a number from 1 to 100000",
        "Login attempts per email address per minute.",
    ),
    key(
        "rate_limits.register_per_ip_per_hour",
        Integer,
        Some("10"),
        "a number from 1 to 100000",
        "Registrations per client IP per hour.",
    ),
    key(
        "livekit.url",
        Text,
        Some("\"ws://127.0.0.1:7880\""),
        "a ws://, wss://, http:// or https:// URL",
        "How confctl reaches LiveKit's server API. The default is a local `livekit-server --dev`.",
    ),
    key(
        "livekit.public_url",
        Text,
        None,
        "a ws:// or wss:// URL",
        "How browsers reach LiveKit, when different from `url` (e.g. wss://livekit.example.edu).",
    ),
    key(
        "livekit.api_key",
        Text,
        Some("\"devkey\""),
        "the API key from LiveKit",
        "API key for tokens, server API calls and webhook verification. The default is LiveKit's\n\
         development key: change it for any real deployment.",
    ),
    key(
        "livekit.api_secret",
        Secret,
        Some("\"secret\""),
        "the API secret from LiveKit",
        "API secret matching `api_key`. Prefer CONFCTL_LIVEKIT__API_SECRET_FILE over writing it here.",
    ),
];

/// Looks a key up by dotted path.
pub fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}
