//! Subcommand dispatch and what every subcommand shares: loading the configuration and exit codes.

pub mod admin;
pub mod admin_rooms;
pub mod agent;
pub mod doctor;
pub mod export;
pub mod generate;
pub mod migrate;
pub mod monitor;
pub mod render_worker;
pub mod serve;
pub mod settings;

use confctl::config::{self, Config, Sources};
use toml::Value;

use crate::{Cli, Command};

/// A failure to report: the message (one line) and the process exit status.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    /// Exit status 2: the command line or configuration is wrong, or the feature is not there.
    pub fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 2 }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self { message: format!("{err:#}"), exit_code: 1 }
    }
}

impl From<confctl::Error> for Failure {
    fn from(err: confctl::Error) -> Self {
        Self { message: err.to_string(), exit_code: 1 }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(err: config::ConfigError) -> Self {
        Self::usage(err.0)
    }
}

pub type CmdResult = Result<(), Failure>;

/// Prints `value` as pretty JSON: what every `--json` flag writes.
pub(crate) fn print_json(value: &impl serde::Serialize) -> CmdResult {
    println!("{}", serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?);
    Ok(())
}

/// A stored time for a table cell, to the minute; `none` where there is none.
pub(crate) fn when(ms: Option<i64>, none: &str) -> String {
    ms.map_or_else(|| none.to_owned(), |ms| confctl::time::to_datetime(ms).format("%Y-%m-%d %H:%M").to_string())
}

/// Options shared by all subcommands, as configuration overrides.
pub struct Global {
    file: Option<std::path::PathBuf>,
    flags: Vec<(String, Value, String)>,
}

impl Global {
    /// Loads the layered configuration with these flags (plus `extra` from the subcommand) on top.
    pub fn load(&self, extra: Vec<(String, Value, String)>) -> Result<Config, Failure> {
        Ok(self.try_load(extra)?)
    }

    /// Like [`Global::load`], keeping the configuration error as a value (for `doctor`).
    pub fn try_load(&self, extra: Vec<(String, Value, String)>) -> Result<Config, config::ConfigError> {
        config::load(&self.sources(extra))
    }

    /// Where the configuration comes from: the file, this process's environment, and these flags.
    pub fn sources(&self, extra: Vec<(String, Value, String)>) -> Sources {
        let mut flags = self.flags.clone();
        flags.extend(extra);
        Sources::from_process(self.file.clone(), flags)
    }
}

/// Starts logging as configured (stderr, so command output on stdout stays clean).
pub fn init_logging(config: &Config) {
    confctl::telemetry::init(config.log_format, &config.log_level);
}

pub async fn run(cli: Cli) -> CmdResult {
    let mut flags = Vec::new();
    if let Some(dir) = &cli.data_dir {
        flags.push(("data_dir".into(), Value::String(dir.display().to_string()), "--data-dir".into()));
    }
    if let Some(url) = &cli.database_url {
        flags.push(("database_url".into(), Value::String(url.clone()), "--database-url".into()));
    }
    if let Some(format) = cli.log_format {
        flags.push(("log_format".into(), Value::String(format), "--log-format".into()));
    }
    let global = Global { file: cli.config, flags };
    match cli.command {
        Command::Serve(args) => serve::run(&global, args).await,
        Command::Agent(args) => agent::run(&global, args).await,
        Command::Admin(args) => admin::run(&global, args).await,
        Command::Export(args) => export::run(&global, args).await,
        Command::Migrate(args) => migrate::run(&global, args).await,
        Command::Doctor(args) => doctor::run(&global, args).await,
        Command::Generate(args) => generate::run(args),
        // Dispatched in `main` before the async runtime starts.
        Command::RenderWorker => Ok(()),
    }
}
