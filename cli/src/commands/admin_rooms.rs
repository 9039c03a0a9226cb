//! `confctl admin api-token …`, `confctl admin room …` and `confctl admin ban …`: admin API tokens and the
//! monitor's room actions as plain commands for scripts. Same domain functions and audit entries as the API.

use clap::{Subcommand, ValueEnum};
use confctl::admin::snapshot::{self, RoomRow, RoomState};
use confctl::admin::tokens;
use confctl::app::App;
use confctl::artifacts::health::AssistantState;
use confctl::audit::Actor;
use confctl::store::ApiTokenScope;

use super::{CmdResult, Failure, print_json, when};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Look only: snapshots, the event stream, lists.
    Read,
    /// Look and act: approve, kick, ban, lock, end.
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Create a token for `/api/admin/*` (printed once, stored hashed).
    #[command(
        after_help = "Examples:\n  confctl admin api-token create --name laptop-monitor --scope admin --expires 90d\n  \
                            confctl admin api-token create --name grafana --scope read --expires never"
    )]
    Create {
        /// What the token is for, e.g. the laptop or script that uses it.
        #[arg(long)]
        name: String,
        /// `read` may look; `admin` may also act.
        #[arg(long, value_enum, default_value = "read")]
        scope: ScopeArg,
        /// How long the token is valid: NUMBER with d, h or m, or `never`.
        #[arg(long, default_value = "90d", value_name = "DURATION")]
        expires: String,
    },
    /// List tokens (never the tokens themselves) with their scope, expiry and last use.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once (its next request gets 401).
    Revoke {
        /// Token id (from `list`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

pub async fn api_token(app: &App, cmd: ApiTokenCommand) -> CmdResult {
    let actor = Actor::cli();
    match cmd {
        ApiTokenCommand::Create { name, scope, expires } => {
            let scope = match scope {
                ScopeArg::Read => ApiTokenScope::Read,
                ScopeArg::Admin => ApiTokenScope::Admin,
            };
            let expiry = tokens::parse_expiry(&expires).map_err(|e| Failure::usage(e.to_string()))?;
            let (record, token) = tokens::create(app, &actor, &name, scope, expiry).await?;
            println!(
                "created {} API token {} ({}), expires {}",
                scope.as_str(),
                record.id,
                record.name,
                when(record.expires_at, "never")
            );
            println!("token: {token}");
            println!(
                "(shown once; e.g. save it to a file and run `CONFCTL_MONITOR_TOKEN_FILE=FILE confctl admin monitor`)"
            );
        }
        ApiTokenCommand::List { json } => {
            let list = tokens::list(app).await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<22}  {:<28}  {:<5}  {:<16}  {:<16}  {:<16}  STATUS",
                "ID", "NAME", "SCOPE", "CREATED", "EXPIRES", "LAST USED"
            );
            let now = confctl::time::now_ms();
            for t in &list {
                let status = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|at| at <= now) {
                    "expired"
                } else {
                    "active"
                };
                let name: String = t.name.chars().take(28).collect();
                println!(
                    "{:<22}  {:<28}  {:<5}  {:<16}  {:<16}  {:<16}  {status}",
                    t.id,
                    name,
                    t.scope.as_str(),
                    when(Some(t.created_at), ""),
                    when(t.expires_at, "never"),
                    when(t.last_used_at, "never"),
                );
            }
            if list.is_empty() {
                println!("(no API tokens: create one with `confctl admin api-token create --name NAME`)");
            }
        }
        ApiTokenCommand::Revoke { id } => {
            tokens::revoke(app, &actor, &id).await?;
            println!("revoked API token {id}");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    /// Not ended (ready or active).
    Live,
    /// Created; nobody in the media room yet.
    Ready,
    Active,
    /// Ended in the last 24 hours.
    Recent,
    /// Every ended room.
    Archived,
    All,
}

impl From<StateArg> for RoomState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Live => RoomState::Live,
            StateArg::Ready => RoomState::Ready,
            StateArg::Active => RoomState::Active,
            StateArg::Recent => RoomState::Recent,
            StateArg::Archived => RoomState::Archived,
            StateArg::All => RoomState::All,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// List rooms with their live counts.
    #[command(after_help = "Examples:\n  confctl admin room list\n  confctl admin room list --state archived --json")]
    List {
        #[arg(long, value_enum, default_value = "live")]
        state: StateArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one room: participants, lobby, hands, bans.
    Show {
        /// Room id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End a lecture for everyone (closes the media room, turns away the waiting guests).
    End {
        /// Room id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Lock a room: nobody new can join; people inside stay.
    Lock {
        /// Room id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Unlock a room.
    Unlock {
        /// Room id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// Prints rooms as a table (the same columns `confctl admin monitor --once` shows).
pub fn print_rooms(rooms: &[RoomRow]) {
    println!(
        "{:<22}  {:<24}  {:<16}  {:<7}  {:>6}  {:>5}  {:>5}  FLAGS",
        "ID", "NAME", "HOST", "STATE", "PEOPLE", "LOBBY", "HANDS"
    );
    for r in rooms {
        let name: String = r.name.chars().take(24).collect();
        let host: String = r.host.chars().take(16).collect();
        let people = r.participants.map_or_else(|| "?".to_owned(), |n| n.to_string());
        let mut flags = Vec::new();
        if r.locked {
            flags.push("locked");
        }
        if r.guests_muted {
            flags.push("muted");
        }
        if r.assistant.state != AssistantState::Off {
            flags.push("assistant");
        }
        println!(
            "{:<22}  {:<24}  {:<16}  {:<7}  {:>6}  {:>5}  {:>5}  {}",
            r.id,
            name,
            host,
            r.status.as_str(),
            people,
            r.lobby.len(),
            r.hands,
            flags.join(",")
        );
    }
    if rooms.is_empty() {
        println!("(no rooms in this state)");
    }
}

pub async fn room(app: &App, cmd: RoomCommand) -> CmdResult {
    let actor = Actor::cli();
    match cmd {
        RoomCommand::List { state, json } => {
            let snap = snapshot::rooms(app, state.into()).await?;
            if json {
                return print_json(&snap.rooms);
            }
            print_rooms(&snap.rooms);
        }
        RoomCommand::Show { id, json } => {
            let detail = snapshot::room(app, &id).await?;
            if json {
                return print_json(&detail);
            }
            let r = &detail.room;
            println!("{} — {} ({})", r.name, r.status.as_str(), r.id);
            // This command reads the database: whether the assistant captions is known to the server only.
            let assistant = if r.assistant.state == AssistantState::Off { "off" } else { "on" };
            println!(
                "host: {}   locked: {}   guests muted: {}   assistant: {assistant}",
                r.host, r.locked, r.guests_muted
            );
            match &detail.participants {
                Some(list) => {
                    println!("participants ({}):", list.len());
                    let value = serde_json::to_value(list).map_err(anyhow::Error::from)?;
                    for p in value.as_array().into_iter().flatten() {
                        println!(
                            "  {:<30}  {:<9}  {}",
                            p["name"].as_str().unwrap_or_default(),
                            p["role"].as_str().unwrap_or("-"),
                            p["identity"].as_str().unwrap_or_default()
                        );
                    }
                }
                None => println!("participants: unknown (the media server did not answer)"),
            }
            println!("lobby ({} waiting):", r.lobby.len());
            for e in &r.lobby {
                println!("  {:<30}  waiting {}s  entry {}", e.display_name, e.waiting_seconds, e.id);
            }
            println!("hands raised: {}   bans: {}", detail.hands.len(), detail.bans.len());
        }
        RoomCommand::End { id } => {
            let room = snapshot::find_room(app, &id).await?;
            let closed = confctl::rooms::lifecycle::end(app, &room, &actor).await?;
            println!("ended {} ({id}){}", room.name, if closed { "" } else { "; the media server will be told later" });
        }
        RoomCommand::Lock { id } => {
            let room = snapshot::find_room(app, &id).await?;
            confctl::moderation::set_locked(app, &room, true, &actor).await?;
            println!("locked {} ({id})", room.name);
        }
        RoomCommand::Unlock { id } => {
            let room = snapshot::find_room(app, &id).await?;
            confctl::moderation::set_locked(app, &room, false, &actor).await?;
            println!("unlocked {} ({id})", room.name);
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// List bans: every one, or those that apply to a room.
    #[command(
        after_help = "Examples:\n  confctl admin ban list\n  confctl admin ban list --room 2L3nmKq0SuG1pXw8y0Zl1A --json"
    )]
    List {
        /// Only the bans that apply to this room (its own and its host's all-rooms bans).
        #[arg(long, value_name = "ID")]
        room: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lift a ban: the browser it covered may join again.
    Lift {
        /// Ban id (from `list`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

pub async fn ban(app: &App, cmd: BanCommand) -> CmdResult {
    match cmd {
        BanCommand::List { room, json } => {
            let bans = confctl::admin::bans::list(app, room.as_deref()).await?;
            if json {
                return print_json(&bans);
            }
            println!("{:<22}  {:<22}  {:<24}  {:<16}  REASON", "ID", "ROOM", "NAME", "CREATED");
            for b in &bans {
                println!(
                    "{:<22}  {:<22}  {:<24}  {:<16}  {}",
                    b.id,
                    b.room_id.as_deref().unwrap_or("(all host's rooms)"),
                    b.display_name.as_deref().unwrap_or("-").chars().take(24).collect::<String>(),
                    when(Some(b.created_at), ""),
                    b.reason.as_deref().unwrap_or("")
                );
            }
            if bans.is_empty() {
                println!("(no bans)");
            }
        }
        BanCommand::Lift { id } => {
            let ban = confctl::admin::bans::lift(app, &Actor::cli(), &id).await?;
            println!("lifted ban {id} ({})", ban.display_name.as_deref().unwrap_or("unnamed guest"));
        }
    }
    Ok(())
}
