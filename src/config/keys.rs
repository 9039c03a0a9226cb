//! The table of every configuration key: the one source for defaults, environment parsing, the commented
//! example config (`confctl admin default-config`) and `docs/configuration.md`.
//! Long on purpose: one entry per key, in the order the example config shows them; split up, the table
//! would no longer be the one place to read what a setting does.

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
    /// What values are allowed, for error messages and the docs; for integers, what the number counts (the
    /// range is in `range`).
    allowed: &'static str,
    /// The inclusive range of an integer key, checked once for every key that has one.
    pub range: Option<(i64, i64)>,
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
    /// What values are allowed, as the docs and error messages say it.
    pub fn allowed(&self) -> std::borrow::Cow<'static, str> {
        match self.range {
            Some((min, max)) => format!("{} from {min} to {max}", self.allowed).into(),
            None => self.allowed.into(),
        }
    }
}

const fn key(
    path: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    allowed: &'static str,
    help: &'static str,
) -> Key {
    Key { path, kind, default, allowed, range: None, help }
}

/// An integer key: `what` the number counts (`a number`, `a number of bytes`) and its inclusive range.
const fn int(
    path: &'static str,
    default: Option<&'static str>,
    what: &'static str,
    min: i64,
    max: i64,
    help: &'static str,
) -> Key {
    Key { path, kind: Kind::Integer, default, allowed: what, range: Some((min, max)), help }
}

use Kind::*;

/// Section headings, in the order the example config shows them.
pub const SECTIONS: &[(&str, &str)] = &[
    ("", "General settings."),
    ("auth", "Accounts and sign-in sessions."),
    ("rate_limits", "Brute-force protection. Exceeding a limit answers 429 with Retry-After."),
    ("livekit", "The LiveKit media server (LiveKit Cloud or self-hosted)."),
    ("files", "Files shared in lectures: where they are stored and what is accepted."),
    ("agent", "The AI assistant (`confctl agent`): captions and summaries."),
    ("tls", "HTTPS served by confctl itself: off unless `acme_email` (ACME) or `cert_file` (own certificate) is set."),
    ("google", "Export to Google Drive: off unless `client_id` and `client_secret` are set (see the operator guide)."),
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
        "Address and port for plain HTTP. Not used while [tls] is on (see `tls.listen`).",
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
    int("max_body_bytes", Some("65536"), "a number of bytes", 1024, 16777216, "Largest JSON request body accepted."),
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
    int(
        "rate_limits.login_per_ip_per_minute",
        Some("20"),
        "a number",
        1,
        100000,
        "Login attempts per client IP per minute.",
    ),
    int(
        "rate_limits.login_per_account_per_minute",
        Some("5"),
        "a number",
        1,
        100000,
        "Login attempts per email address per minute.",
    ),
    int(
        "rate_limits.register_per_ip_per_hour",
        Some("10"),
        "a number",
        1,
        100000,
        "Registrations per client IP per hour.",
    ),
    int(
        "rate_limits.joins_per_ip_per_minute",
        Some("600"),
        "a number",
        1,
        1000000,
        "Guest join attempts per client IP per minute: stops one machine from flooding a lobby, while a\n\
         lecture hall of students behind one NAT address still gets in.",
    ),
    int(
        "rate_limits.pin_failures_per_ip_per_minute",
        Some("5"),
        "a number",
        1,
        100000,
        "Wrong room PINs per client IP per minute before further tries get 429. Only failures count, so\n\
         a lecture hall behind one NAT address is not locked out by students who type the PIN right.",
    ),
    int(
        "rate_limits.pin_failures_per_guest_per_minute",
        Some("5"),
        "a number",
        1,
        100000,
        "Wrong room PINs per room and browser fingerprint per minute.",
    ),
    int(
        "rate_limits.lobby_streams_per_ip",
        Some("2000"),
        "a number",
        1,
        100000,
        "Waiting-room streams open at once from one client IP (each guest has one; a newer one replaces\n\
         the older). High enough for a lecture hall behind one NAT address.",
    ),
    int(
        "rate_limits.invite_lookups_per_ip_per_minute",
        Some("120"),
        "a number",
        1,
        100000,
        "Invite-code lookups per client IP per minute (slows down guessing codes).",
    ),
    int(
        "rate_limits.chat_messages_per_minute",
        Some("30"),
        "a number",
        1,
        100000,
        "Chat messages one person may send per room and minute.",
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
    key(
        "livekit.reconcile_interval",
        Text,
        Some("\"60s\""),
        "a duration such as 30s or 5m",
        "How often confctl compares its rooms with LiveKit's, so a lost webhook cannot leave a room\n\
         ACTIVE forever or a closed lecture open at LiveKit.",
    ),
    key(
        "livekit.empty_room_grace",
        Text,
        Some("\"2m\""),
        "a duration such as 90s or 5m",
        "An ACTIVE room is ended only after LiveKit has been without it this long, seen by reconciliation\n\
         (a restarting media server is not a finished lecture).",
    ),
    key(
        "tls.listen",
        Text,
        Some("\"[::]:443\""),
        "an address and port such as [::]:443 or 0.0.0.0:8443",
        "Address and port for HTTPS when TLS is on. The top-level `listen` is then not used: the\n\
         application is served only here, so nothing answers in plain HTTP except the redirect below.\n\
         Ports below 1024 need CAP_NET_BIND_SERVICE (the packaged systemd unit grants it).",
    ),
    key(
        "tls.redirect_listen",
        Text,
        Some("\"[::]:80\""),
        "an address and port such as [::]:80, or off",
        "Address and port of the plain-HTTP listener that only redirects to HTTPS when TLS is on.\n\
         off: no plain-HTTP listener.",
    ),
    key(
        "tls.acme_email",
        Text,
        None,
        "an email address such as ops@example.edu",
        "Contact address for the ACME account. Setting it turns on HTTPS with certificates obtained and\n\
         renewed automatically (TLS-ALPN-01 on `tls.listen`, which must be reachable as port 443 of every\n\
         name in `domains`). Certificates and the account key are kept in <data_dir>/acme.",
    ),
    key(
        "tls.acme_directory",
        Text,
        None,
        "an https:// URL of an ACME directory",
        "ACME directory to get certificates from. Unset: Let's Encrypt production (or staging with\n\
         `acme_staging`). Set it for a campus ACME server such as step-ca.",
    ),
    key(
        "tls.acme_staging",
        Bool,
        Some("false"),
        "true or false",
        "Use Let's Encrypt's staging directory: untrusted certificates, generous rate limits. For trying\n\
         a setup out.",
    ),
    key(
        "tls.acme_ca_file",
        Text,
        None,
        "a path to a PEM file of CA certificates",
        "CA certificates that sign the ACME directory's own HTTPS certificate, when that is not a public\n\
         web CA (e.g. a campus step-ca). Replaces the built-in web roots for ACME requests only.",
    ),
    key(
        "tls.cert_file",
        Text,
        None,
        "a path to a PEM file with the certificate chain, leaf first",
        "Serve HTTPS with this certificate instead of ACME (needs `key_file`). Re-read within seconds\n\
         when the file changes; a broken new file is logged and the previous certificate stays in use.",
    ),
    key(
        "tls.key_file",
        Text,
        None,
        "a path to a PEM file with the private key (PKCS#8, PKCS#1 or SEC1)",
        "Private key for `cert_file`; keep it readable by the confctl user only.",
    ),
    key(
        "files.backend",
        Text,
        Some("\"local\""),
        "local or s3",
        "local: a directory inside the data directory. s3: any S3-compatible store (MinIO, SeaweedFS, AWS).",
    ),
    key("files.local_dir", Text, None, "a directory path", "Directory for the local backend. Unset: <data_dir>/files."),
    key(
        "files.s3_endpoint",
        Text,
        None,
        "an http:// or https:// URL",
        "S3 endpoint, e.g. https://s3.example.edu or http://127.0.0.1:8333. Unset: AWS for the region.",
    ),
    key("files.s3_region", Text, Some("\"us-east-1\""), "an S3 region name", "S3 region."),
    key("files.s3_bucket", Text, Some("\"confctl\""), "an existing bucket name", "S3 bucket (must exist)."),
    key("files.s3_access_key_id", Text, Some("\"\""), "an access key id", "S3 access key id."),
    key(
        "files.s3_secret_access_key",
        Secret,
        Some("\"\""),
        "the secret key",
        "S3 secret access key. Prefer CONFCTL_FILES__S3_SECRET_ACCESS_KEY_FILE.",
    ),
    key(
        "files.s3_path_style",
        Bool,
        Some("true"),
        "true or false",
        "Path-style URLs (http://host/bucket/key), as MinIO and SeaweedFS expect; false for virtual-hosted style.",
    ),
    int(
        "files.max_size_bytes",
        Some("104857600"),
        "a number of bytes",
        1,
        10737418240,
        "Largest file one upload may be (default 100 MB).",
    ),
    int(
        "files.room_quota_bytes",
        Some("1073741824"),
        "a number of bytes",
        1,
        1099511627776,
        "Total size of the files shared in one room (default 1 GB).",
    ),
    key(
        "files.allowed_extensions",
        List,
        Some(
            "[\"pdf\", \"ppt\", \"pptx\", \"odp\", \"doc\", \"docx\", \"odt\", \"xls\", \"xlsx\", \"ods\", \"csv\", \"txt\", \"md\", \
             \"png\", \"jpg\", \"jpeg\", \"gif\", \"webp\", \"zip\", \"mp3\", \"mp4\", \"webm\", \"ipynb\", \"py\", \"r\", \"m\", \"tex\"]",
        ),
        "a list of file extensions without the dot",
        "File types that may be shared (by extension, case-insensitive).",
    ),
    key(
        "agent.default_language",
        Text,
        Some("\"en\""),
        "a language code such as en or ru",
        "Language of captions and summaries for rooms that do not set their own. A default: the\n\
         `defaultLanguage` AI setting (`confctl admin settings`, the admin page) overrides it, without a restart.",
    ),
    key(
        "agent.server_url",
        Text,
        Some("\"http://127.0.0.1:8080\""),
        "an http:// or https:// URL",
        "Where `confctl agent` reaches `confctl serve` (its /api/agent API). Not used by `serve --with-agent`.",
    ),
    key(
        "agent.token",
        Secret,
        None,
        "an agent token",
        "The agent token `confctl agent` presents, from `confctl admin agent-token create --name NAME`.\n\
         Prefer CONFCTL_AGENT__TOKEN_FILE. Not needed by `serve --with-agent`.",
    ),
    key(
        "agent.stt_provider",
        Text,
        Some("\"whisper\""),
        "whisper or deepgram",
        "Speech to text. whisper: any OpenAI-compatible transcription server at `stt_url` (OpenAI,\n\
         faster-whisper-server, speaches, whisper.cpp), one request per utterance. deepgram: Deepgram's\n\
         streaming API at `deepgram_url`, with interim captions.",
    ),
    key(
        "agent.stt_url",
        Text,
        Some("\"http://127.0.0.1:8000/v1\""),
        "an http:// or https:// URL including the API version, e.g. https://api.openai.com/v1",
        "Base URL of the OpenAI-compatible transcription API (`POST <stt_url>/audio/transcriptions`).",
    ),
    key("agent.stt_model", Text, Some("\"whisper-1\""), "a model name", "Transcription model to ask `stt_url` for."),
    key(
        "agent.stt_api_key",
        Secret,
        None,
        "an API key",
        "Bearer key for `stt_url`, if it needs one. Prefer CONFCTL_AGENT__STT_API_KEY_FILE.",
    ),
    key(
        "agent.deepgram_url",
        Text,
        Some("\"wss://api.deepgram.com\""),
        "a wss:// or ws:// URL",
        "Deepgram's streaming API (`<deepgram_url>/v1/listen`), or a self-hosted Deepgram.",
    ),
    key("agent.deepgram_model", Text, Some("\"nova-2\""), "a Deepgram model name", "Deepgram model."),
    key(
        "agent.deepgram_api_key",
        Secret,
        None,
        "a Deepgram API key",
        "Deepgram API key. Prefer CONFCTL_AGENT__DEEPGRAM_API_KEY_FILE.",
    ),
    key(
        "agent.llm_url",
        Text,
        None,
        "an http:// or https:// URL including the API version, e.g. http://127.0.0.1:11434/v1",
        "Base URL of an OpenAI-compatible chat-completions API (OpenAI, Ollama, vLLM, llama.cpp server)\n\
         that writes lecture summaries. Unset: the built-in extractive summariser (offline, labelled\n\
         `extractive`). The `summariser` and `summaries` AI settings can choose the extractive one or none.",
    ),
    key(
        "agent.llm_model",
        Text,
        Some("\"gpt-4o-mini\""),
        "a model name",
        "Chat model for summaries. A default: the `llmModel` AI setting overrides it.",
    ),
    key(
        "agent.llm_api_key",
        Secret,
        None,
        "an API key",
        "Bearer key for `llm_url`, if it needs one. Prefer CONFCTL_AGENT__LLM_API_KEY_FILE.",
    ),
    key(
        "agent.webrtc_udp_addr",
        Text,
        Some("\"0.0.0.0:0\""),
        "an IP address and port such as 0.0.0.0:0 or 192.0.2.10:50000 (port 0 picks a free port)",
        "Local UDP address for the assistant's media connections to LiveKit. A wildcard address offers\n\
         every interface except loopback; set 127.0.0.1:0 when LiveKit runs on the same host's loopback.",
    ),
    key(
        "agent.shard",
        Text,
        Some("\"1/1\""),
        "K/N with 1 <= K <= N, e.g. 2/3",
        "With several `confctl agent` workers, each takes the rooms whose id hashes to its share K of N.",
    ),
    key(
        "google.client_id",
        Text,
        None,
        "an OAuth client id such as 1234-abc.apps.googleusercontent.com",
        "The OAuth 2.0 client (type \"Web application\") created in the Google Cloud Console for this\n\
         instance. With `client_secret` it lets hosts connect their Google Drive and export lectures to it.\n\
         Its authorized redirect URI must be <public_url>/auth/google/callback.",
    ),
    key(
        "google.client_secret",
        Secret,
        None,
        "the client secret from the Google Cloud Console",
        "The secret of `client_id`. Prefer CONFCTL_GOOGLE__CLIENT_SECRET_FILE over writing it here.",
    ),
    key(
        "google.auth_url",
        Text,
        Some("\"https://accounts.google.com/o/oauth2/v2/auth\""),
        "an http:// or https:// URL",
        "Google's OAuth 2.0 authorization endpoint, where a host's browser is sent to give consent.\n\
         Change only to point at a test double.",
    ),
    key(
        "google.token_url",
        Text,
        Some("\"https://oauth2.googleapis.com/token\""),
        "an http:// or https:// URL",
        "Google's OAuth 2.0 token endpoint. Change only to point at a test double.",
    ),
    key(
        "google.revoke_url",
        Text,
        Some("\"https://oauth2.googleapis.com/revoke\""),
        "an http:// or https:// URL",
        "Google's OAuth 2.0 revocation endpoint, called when a host disconnects. Change only to point at\n\
         a test double.",
    ),
    key(
        "google.drive_url",
        Text,
        Some("\"https://www.googleapis.com\""),
        "an http:// or https:// URL",
        "Base URL of the Drive API (`<drive_url>/drive/v3/…`, uploads at `<drive_url>/upload/drive/v3/…`).\n\
         Change only to point at a test double.",
    ),
];

/// Looks a key up by dotted path.
pub fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}
