//! The layered configuration: defaults, file, environment and flags in order, secrets kept out of Debug,
//! and errors that name the key, the value and where it came from.

use super::*;
use std::io::Write;
use toml::Value;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn zero_config_defaults() {
    let c = Config::defaults().unwrap();
    assert_eq!(c.data_dir, PathBuf::from("./confctl-data"));
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert!(c.database_url.is_none());
    assert_eq!(c.effective_database_url().expose(), "sqlite://./confctl-data/confctl.db");
    assert_eq!(c.livekit.url.as_str(), "ws://127.0.0.1:7880/");
    assert!(c.uses_livekit_dev_credentials());
    assert_eq!(c.auth.registration, RegistrationPolicy::Open);
    assert_eq!(c.log_format, LogFormat::Human);
}

#[test]
fn layers_apply_in_order_file_env_flag() {
    let f =
        file_with("listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/file\"\n[livekit]\nurl = \"wss://lk.example.edu\"\n");
    let sources = Sources {
        file: Some(f.path().to_owned()),
        env: env(&[("CONFCTL_DATA_DIR", "/srv/env"), ("CONFCTL_LIVEKIT__API_KEY", "APIxyz")]),
        flags: vec![("data_dir".into(), Value::String("/srv/flag".into()), "--data-dir".into())],
        read_default_file: false,
    };
    let c = load(&sources).unwrap();
    assert_eq!(c.listen.port(), 9000, "file beats default");
    assert_eq!(c.livekit.url.as_str(), "wss://lk.example.edu/", "nested file key");
    assert_eq!(c.livekit.api_key, "APIxyz", "nested env key with __");
    assert_eq!(c.data_dir, PathBuf::from("/srv/flag"), "flag beats env beats file");
}

#[test]
fn secrets_come_from_file_variables_and_never_show_in_debug() {
    let secret = file_with("s3cr3t-value\n");
    let sources = Sources {
        env: env(&[("CONFCTL_LIVEKIT__API_SECRET_FILE", secret.path().to_str().unwrap())]),
        ..Sources::default()
    };
    let c = load(&sources).unwrap();
    assert_eq!(c.livekit.api_secret.expose(), "s3cr3t-value");
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t-value"), "{debug}");
}

#[test]
fn both_value_and_file_variable_is_an_error() {
    let sources = Sources {
        env: env(&[("CONFCTL_LIVEKIT__API_SECRET", "a"), ("CONFCTL_LIVEKIT__API_SECRET_FILE", "/x")]),
        ..Sources::default()
    };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("CONFCTL_LIVEKIT__API_SECRET_FILE"), "{err}");
}

#[test]
fn invalid_values_name_key_value_source_and_allowed() {
    let sources = Sources { env: env(&[("CONFCTL_LISTEN", "not-an-address")]), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("`listen`") && err.contains("not-an-address") && err.contains("CONFCTL_LISTEN"), "{err}");
    assert!(err.contains("127.0.0.1:8080"), "names what is allowed: {err}");
    assert!(!err.contains('\n'));

    let f = file_with("log_format = \"xml\"\n");
    let sources = Sources { file: Some(f.path().to_owned()), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("log_format") && err.contains("xml") && err.contains("human or json"), "{err}");

    let sources =
        Sources { env: env(&[("CONFCTL_RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE", "lots")]), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("rate_limits.login_per_ip_per_minute") && err.contains("lots"), "{err}");

    let sources = Sources { env: env(&[("CONFCTL_DATABASE_URL", "mysql://u:pw@h/db")]), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("database_url") && !err.contains("pw"), "secret parts stay hidden: {err}");

    let sources = Sources { env: env(&[("CONFCTL_AUTH__SESSION_LIFETIME", "forever")]), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("auth.session_lifetime") && err.contains("forever"), "{err}");
}

#[test]
fn unknown_file_keys_are_rejected() {
    let f = file_with("[livekit]\nuri = \"ws://x\"\n");
    let sources = Sources { file: Some(f.path().to_owned()), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("livekit.uri"), "{err}");
}

#[test]
fn lists_from_env_are_comma_separated() {
    let sources = Sources {
        env: env(&[
            ("CONFCTL_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1/32"),
            ("CONFCTL_DOMAINS", "lectures.example.edu"),
        ]),
        ..Sources::default()
    };
    let c = load(&sources).unwrap();
    assert_eq!(c.trusted_proxies.len(), 2);
    assert!(c.is_public());
}

#[test]
fn empty_env_value_unsets_optional_key() {
    let f = file_with("public_url = \"https://a.example.edu\"\n");
    let sources =
        Sources { file: Some(f.path().to_owned()), env: env(&[("CONFCTL_PUBLIC_URL", "")]), ..Sources::default() };
    assert!(load(&sources).unwrap().public_url.is_none());
}

#[test]
fn example_config_parses_to_the_defaults_and_uncommented_too() {
    let text = example::example_toml(false);
    let f = file_with(&text);
    let c = load(&Sources { file: Some(f.path().to_owned()), ..Sources::default() }).unwrap();
    assert_eq!(c.listen, Config::defaults().unwrap().listen);

    // Uncommenting every key that has a default must still give a valid config: the shown defaults are real.
    let uncommented: String = text
        .lines()
        .map(|l| if l.starts_with('#') && !l.starts_with("# ") && !l.contains("unset;") { &l[1..] } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let f = file_with(&uncommented);
    load(&Sources { file: Some(f.path().to_owned()), ..Sources::default() }).unwrap();
}

#[test]
fn packaged_example_points_at_the_state_directory() {
    let f = file_with(&example::example_toml(true));
    let c = load(&Sources { file: Some(f.path().to_owned()), ..Sources::default() }).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/confctl"));
}

#[test]
fn every_key_has_a_section_and_env_name() {
    for key in keys::KEYS {
        assert!(section_exists(key.section()), "{} has no section heading", key.path);
        assert!(key.env_var().starts_with("CONFCTL_"));
    }
}

fn section_exists(section: &str) -> bool {
    keys::SECTIONS.iter().any(|(s, _)| *s == section)
}

#[test]
fn livekit_browser_url_uses_websocket_scheme() {
    let sources = Sources { env: env(&[("CONFCTL_LIVEKIT__URL", "https://lk.example.edu")]), ..Sources::default() };
    assert_eq!(load(&sources).unwrap().livekit_browser_url(), "wss://lk.example.edu");
}

#[test]
fn google_drive_needs_both_halves_of_the_oauth_client() {
    let c = Config::defaults().unwrap();
    assert!(!c.google.drive_configured(), "off by default");
    assert_eq!(c.google.token_url.as_str(), "https://oauth2.googleapis.com/token");

    let sources =
        Sources { env: env(&[("CONFCTL_GOOGLE__CLIENT_ID", "abc.apps.googleusercontent.com")]), ..Sources::default() };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("google.client_secret") && err.contains("CONFCTL_GOOGLE__CLIENT_ID"), "{err}");

    let secret = file_with("drive-client-secret\n");
    let sources = Sources {
        env: env(&[
            ("CONFCTL_GOOGLE__CLIENT_ID", "abc.apps.googleusercontent.com"),
            ("CONFCTL_GOOGLE__CLIENT_SECRET_FILE", secret.path().to_str().unwrap()),
        ]),
        ..Sources::default()
    };
    let c = load(&sources).unwrap();
    assert!(c.google.drive_configured());
    assert!(!format!("{c:?}").contains("drive-client-secret"), "the secret never shows in Debug");
}
