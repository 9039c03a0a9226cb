//! The `confctl` command: parses arguments, calls the library, prints. One module per subcommand.

mod commands;
mod tui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Self-hosted video lectures around LiveKit: accounts, rooms, admission, moderation, chat, files, captions
/// and summaries.
///
/// Configuration comes from built-in defaults, then /etc/confctl/confctl.toml (or --config), then CONFCTL_*
/// environment variables, then flags. `confctl admin default-config` prints every key with its default.
#[derive(Debug, Parser)]
#[command(name = "confctl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (default: /etc/confctl/confctl.toml when it exists).
    #[arg(long, global = true, env = "CONFCTL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory for the SQLite database and local files [config: data_dir].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB [config: database_url].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log line format [config: log_format].
    // The text goes to the configuration layer, which owns the one LogFormat type; clap only lists the values.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["human", "json"])]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server: API, pages, event streams and LiveKit webhooks.
    Serve(commands::serve::Args),
    /// Run the AI assistant that captions and summarises lectures.
    Agent(commands::agent::Args),
    /// Administer users, the instance and its configuration.
    Admin(commands::admin::Args),
    /// Export ended lectures in bulk: PDF, Markdown, JSON, captions, attendance, shared files.
    Export(commands::export::Args),
    /// Apply database migrations, or list them with --status.
    Migrate(commands::migrate::Args),
    /// Check configuration, database, LiveKit, storage and certificates.
    Doctor(commands::doctor::Args),
    /// Write man pages or shell completion scripts (for packaging).
    Generate(commands::generate::Args),
    /// Typeset lectures sent by `confctl export` on standard input (started by it, not by people).
    #[command(hide = true)]
    RenderWorker,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::RenderWorker = cli.command {
        return commands::render_worker::run();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("confctl: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confctl: {}", err.message);
            ExitCode::from(err.exit_code)
        }
    }
}
