//! `confctl admin monitor`: finds the server and a token (flags, environment, `~/.config/confctl/monitor.toml`,
//! or — on the server itself — the configuration and a short-lived token minted through the database), then
//! runs the terminal UI, or prints one snapshot with `--once`.

use std::path::{Path, PathBuf};

use crate::tui::client::Client;
use crate::tui::model::duration_text;
use crate::tui::wire::Snapshot;

use super::{CmdResult, Failure, Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Keys: ? help · / filter · s sort · Enter open · Esc back · e events · r reload · q quit.
Actions (not with --readonly), each asking for confirmation: A approve all, a/d approve/reject the selected
guest, K/B kick/ban, m/u mute/unmute all, l lock/unlock, x end the lecture.

Where the server and token come from, first found wins:
  --url / --token-file; CONFCTL_MONITOR_URL / CONFCTL_MONITOR_TOKEN_FILE;
  ~/.config/confctl/monitor.toml (url = \"https://…\", token_file = \"…\");
  on the server itself: the listen address of the configuration and a 12-hour token made in the database.

Examples:
  sudo confctl admin monitor                       # on the server VM, nothing to set up
  confctl admin api-token create --name laptop --scope admin > /dev/null   # then save the token in a file
  confctl admin monitor --url https://lectures.uni.edu --token-file ~/.config/confctl/token
  confctl admin monitor --readonly
  confctl admin monitor --once --json | jq '.rooms[] | {name, waiting: (.lobby | length)}'")]
pub struct Args {
    /// The server's base URL, e.g. https://lectures.uni.edu [env: CONFCTL_MONITOR_URL].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A file holding an admin API token (`confctl admin api-token create`) [env: CONFCTL_MONITOR_TOKEN_FILE].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Look only: no action keys.
    #[arg(long)]
    readonly: bool,
    /// Print one snapshot (a table, or JSON with --json) and exit.
    #[arg(long)]
    once: bool,
    /// With --once: print the snapshot as JSON.
    #[arg(long, requires = "once")]
    json: bool,
    /// With --once: which rooms (live, ready, active, recent, archived, all).
    #[arg(long, default_value = "live", requires = "once")]
    state: String,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorFile {
    url: Option<String>,
    token_file: Option<PathBuf>,
}

fn read_token(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        message: format!("cannot read the token file {}: {e}", path.display()),
        exit_code: 1,
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(Failure { message: format!("the token file {} is empty", path.display()), exit_code: 1 });
    }
    Ok(token)
}

fn monitor_file() -> Result<MonitorFile, Failure> {
    let Some(home) = std::env::var_os("HOME") else { return Ok(MonitorFile::default()) };
    let base = std::env::var_os("XDG_CONFIG_HOME").map_or_else(|| PathBuf::from(&home).join(".config"), PathBuf::from);
    let path = base.join("confctl").join("monitor.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| Failure::usage(format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MonitorFile::default()),
        Err(e) => Err(Failure::usage(format!("cannot read {}: {e}", path.display()))),
    }
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The server's own address, from its configuration: how the monitor finds a server on the same machine.
fn local_url(config: &confctl::config::Config) -> String {
    if config.tls.enabled() {
        if let Some(domain) = config.domains.first() {
            return format!("https://{domain}");
        }
    }
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

async fn resolve(global: &Global, args: &Args) -> Result<(String, String), Failure> {
    let file = monitor_file()?;
    let url =
        args.url.clone().or_else(|| std::env::var("CONFCTL_MONITOR_URL").ok().filter(|v| !v.is_empty())).or(file.url);
    let token_file = args.token_file.clone().or_else(|| env_path("CONFCTL_MONITOR_TOKEN_FILE")).or(file.token_file);
    match (url, token_file) {
        (Some(url), Some(path)) => Ok((url, read_token(&path)?)),
        (url, None) => {
            // On the server: its configuration says where it listens, and its database can make a token.
            let app = super::admin::open(global).await.map_err(|f| Failure {
                message: format!(
                    "no token given (--token-file or CONFCTL_MONITOR_TOKEN_FILE), and no local server to make one for: {}",
                    f.message
                ),
                exit_code: f.exit_code,
            })?;
            let minted = confctl::admin::tokens::mint_local(&app, &confctl::audit::Actor::cli()).await;
            app.store().close().await;
            Ok((url.unwrap_or_else(|| local_url(app.config())), minted?))
        }
        (None, Some(_)) => Err(Failure::usage(
            "a token file is set but no server URL: pass --url or set CONFCTL_MONITOR_URL".to_owned(),
        )),
    }
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    confctl::tls_provider();
    let (url, token) = resolve(global, &args).await?;
    let client = Client::new(&url, &token).map_err(|m| Failure { message: m, exit_code: 1 })?;
    if args.once {
        let value = client
            .snapshot_json(&args.state)
            .await
            .map_err(|e| Failure { message: format!("{url}: {e}"), exit_code: 1 })?;
        if args.json {
            print_json(&value)?;
        } else {
            let snap: Snapshot = serde_json::from_value(value).map_err(anyhow::Error::from)?;
            print_table(&snap);
        }
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(Failure::usage("the monitor needs a terminal; use --once (or --once --json) in scripts"));
    }
    crate::tui::run(client, args.readonly).await.map_err(|m| Failure { message: m, exit_code: 1 })
}

fn print_table(snap: &Snapshot) {
    let i = &snap.instance;
    println!(
        "confctl {} · {} · LiveKit {} · {} room(s) · {:.1} req/s",
        i.version,
        i.database,
        if i.livekit_reachable { "reachable" } else { "unreachable" },
        snap.rooms.len(),
        i.stats.requests_per_second
    );
    println!(
        "{:<22}  {:<24}  {:<16}  {:<7}  {:>6}  {:>6}  {:>5}  {:>6}  {:<10}  FLAGS",
        "ID", "NAME", "HOST", "STATE", "TIME", "PEOPLE", "LOBBY", "WAIT", "ASSISTANT"
    );
    let now = chrono::Utc::now();
    for r in &snap.rooms {
        let time = match (r.started_at, r.ended_at) {
            (Some(s), Some(e)) => duration_text((e - s).num_seconds()),
            (Some(s), None) => duration_text((now - s).num_seconds()),
            _ => "-".into(),
        };
        let wait =
            r.lobby.iter().map(|e| (now - e.waiting_since).num_seconds()).max().map_or("-".into(), duration_text);
        let mut flags = Vec::new();
        if r.locked {
            flags.push("locked");
        }
        if r.guests_muted {
            flags.push("muted");
        }
        println!(
            "{:<22}  {:<24}  {:<16}  {:<7}  {:>6}  {:>6}  {:>5}  {:>6}  {:<10}  {}",
            r.id,
            r.name.chars().take(24).collect::<String>(),
            r.host.chars().take(16).collect::<String>(),
            r.status,
            time,
            r.participants.map_or("?".into(), |n| n.to_string()),
            r.lobby.len(),
            wait,
            r.assistant,
            flags.join(",")
        );
        if let Some(problem) = &r.assistant_problem {
            println!("{:<22}  assistant failing: {problem}", "");
        }
    }
    if snap.rooms.is_empty() {
        println!("(no rooms in this state)");
    }
}
