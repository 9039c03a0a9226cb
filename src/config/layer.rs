//! Layering: built-in defaults, then the config file, then `CONFCTL_*` variables (and `…_FILE` secrets), then
//! command-line flags, each value remembered with where it came from so errors can say what to fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::keys::{self, KEYS, Kind};
use super::{Config, DEFAULT_CONFIG_PATH};

/// The layered settings as raw values. Its `Debug` shows nothing: the raw values include secrets.
#[derive(Clone, Default)]
pub struct Layered(Table);

impl Layered {
    /// The raw value of a dotted key, if set.
    pub fn get(&self, path: &str) -> Option<&Value> {
        get_path(&self.0, path)
    }
}

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
        let parsed = parse_env_value(key.kind, &value)
            .ok_or_else(|| not_allowed(key.path, &shown(key.kind, &value), &source))?;
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
            (Some(key), Some(value)) => not_allowed(key.path, &value.trim_matches('"'), &source),
            _ => ConfigError(format!("invalid configuration at `{path}`: {}", one_line(&err.inner().to_string()))),
        }
    })?;
    config.layered = Layered(table);
    config.validate(&origin)?;
    Ok(config)
}

/// The one way a value is reported as not allowed: key, value, where it was set, and what is allowed.
pub(super) fn not_allowed(key: &str, value: &dyn std::fmt::Display, source: &dyn std::fmt::Display) -> ConfigError {
    let allowed = keys::find(key).map_or_else(|| "a valid value".into(), |k| k.allowed());
    ConfigError(format!("invalid value `{value}` for `{key}` (set in {source}): expected {allowed}"))
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
