//! `confctl admin`: user management, the setup code, and configuration helpers. Works directly on the
//! configured database; every change lands in the audit log.

use std::io::Read;

use clap::{Subcommand, ValueEnum};
use confctl::accounts::{self, Role, User};
use confctl::app::App;
use confctl::audit::Actor;

use super::{CmdResult, Failure, Global, init_logging, print_json, when};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Print a fully commented example configuration file.
    DefaultConfig {
        /// The variant the Debian package installs (data_dir set to /var/lib/confctl).
        #[arg(long)]
        packaged: bool,
    },
    /// Print the configuration reference (docs/configuration.md) in Markdown.
    ConfigReference,
    /// Show the one-time code needed to register the first account of a public instance.
    SetupCode,
    /// Manage host and admin accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a backup archive (database snapshot, local files, certificates) while the server runs.
    #[command(after_help = "Example:\n  confctl admin backup --out /var/backups/confctl-$(date +%F).tar.gz")]
    Backup {
        /// Where to write the archive (.tar.gz).
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Restore a backup archive into an empty data directory (use --data-dir to choose it).
    Restore {
        /// The archive written by `confctl admin backup`.
        archive: std::path::PathBuf,
    },
    /// Manage the tokens `confctl agent` uses to reach this server.
    #[command(subcommand)]
    AgentToken(AgentTokenCommand),
    /// Lecture artifacts: transcripts and summaries.
    #[command(subcommand)]
    Lecture(LectureCommand),
    /// Manage the bearer tokens of the admin API (`confctl admin monitor`, scripts).
    #[command(subcommand)]
    ApiToken(super::admin_rooms::ApiTokenCommand),
    /// A live terminal view of every room: lobby, participants, events; approve, kick, lock, end.
    Monitor(super::monitor::Args),
    /// Rooms across the instance: list, show, end, lock, unlock.
    #[command(subcommand)]
    Room(super::admin_rooms::RoomCommand),
    /// Bans across the instance: list, lift.
    #[command(subcommand)]
    Ban(super::admin_rooms::BanCommand),
    /// Global AI settings: the assistant in new rooms, the default language, summaries and the summariser.
    #[command(subcommand)]
    Settings(super::settings::SettingsCommand),
    /// Google Drive export: the key that seals hosts' refresh tokens.
    #[command(subcommand)]
    Drive(DriveCommand),
}

#[derive(Debug, Subcommand)]
enum DriveCommand {
    /// Seal every stored Google refresh token with a new key and delete the old key (hosts stay connected).
    #[command(after_help = "Example:\n  confctl admin drive rotate-key\n  confctl admin drive rotate-key --json")]
    RotateKey {
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LectureCommand {
    /// Summarise an ended lecture again from its stored transcript, with the summariser configured now
    /// ([agent] llm_url, or the extractive one), replacing its artifact. A failed attempt keeps a complete one.
    #[command(after_help = "Example:\n  confctl admin lecture resummarize 2L3nmKq0SuG1pXw8y0Zl1A")]
    Resummarize {
        /// Lecture id (a migrated room's first lecture has the room's id).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentTokenCommand {
    /// Create a token (printed once) for one assistant machine.
    #[command(
        after_help = "Example:\n  confctl admin agent-token create --name gpu-box\n  # then on that machine: CONFCTL_AGENT__TOKEN=cfa_… confctl agent"
    )]
    Create {
        /// What the token is for, e.g. the machine it runs on.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once.
    Revoke {
        /// Token id (from `list`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Host,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Host => Role::Host,
        }
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. Without --password-stdin a password is generated and printed once.
    #[command(
        after_help = "Example:\n  echo 'a long passphrase' | confctl admin user create --email prof@uni.edu --name 'Prof. Ada' --role host --password-stdin"
    )]
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "host")]
        role: RoleArg,
        /// Read the password from standard input (one line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change an account's role.
    SetRole {
        /// User id or email.
        user: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Disable an account and sign it out everywhere at once.
    Disable {
        /// User id or email.
        user: String,
    },
    /// Re-enable a disabled account.
    Enable {
        /// User id or email.
        user: String,
    },
    /// Set a new password (signs the user out everywhere). Without --password-stdin one is generated.
    SetPassword {
        /// User id or email.
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign a user out of every browser.
    RevokeSessions {
        /// User id or email.
        user: String,
    },
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    match args.command {
        AdminCommand::DefaultConfig { packaged } => {
            print!("{}", confctl::config::example::example_toml(packaged));
            Ok(())
        }
        AdminCommand::ConfigReference => {
            print!("{}", confctl::config::example::reference_markdown());
            Ok(())
        }
        AdminCommand::SetupCode => {
            let app = open(global).await?;
            let code = accounts::setup_code(&app).await?;
            app.store().close().await;
            match code {
                Some(code) => {
                    println!("{code}");
                    if !app.config().is_public() {
                        eprintln!("note: no domain is configured, so registration does not ask for this code");
                    }
                    Ok(())
                }
                None => {
                    Err(Failure { message: "an account already exists; no setup code is needed".into(), exit_code: 1 })
                }
            }
        }
        AdminCommand::Backup { out } => {
            let config = global.load(Vec::new())?;
            init_logging(&config);
            let report = confctl::backup::create(&config, &out, &|step| eprintln!("backup: {step}")).await?;
            let bytes: u64 = report.manifest.entries.iter().map(|e| e.size).sum();
            println!(
                "wrote {} ({} item(s), {:.1} MB before compression, schema version {})",
                out.display(),
                report.manifest.entries.len(),
                bytes as f64 / 1e6,
                report.manifest.schema_version
            );
            for note in report.notes {
                println!("note: {note}");
            }
            Ok(())
        }
        AdminCommand::Restore { archive } => {
            let config = global.load(Vec::new())?;
            init_logging(&config);
            let manifest = confctl::backup::restore(&config, &archive, &|step| eprintln!("restore: {step}"))?;
            println!(
                "restored {} item(s) from a backup of {} (schema version {}) into {}",
                manifest.entries.len(),
                manifest.created_at.format("%Y-%m-%d %H:%M UTC"),
                manifest.schema_version,
                config.data_dir.display()
            );
            if manifest.database == "postgres" {
                println!("note: the database itself was not in the archive: restore it with pg_restore");
            }
            Ok(())
        }
        AdminCommand::Lecture(LectureCommand::Resummarize { id }) => {
            let app = open(global).await?;
            let result = confctl::artifacts::resummarize(&app, &id).await;
            app.store().close().await;
            let artifact = match result {
                Err(confctl::Error::NotFound { .. }) => return Err(anyhow::anyhow!("no lecture with id {id}").into()),
                other => other?,
            };
            let kind = artifact.summary_kind.as_deref().unwrap_or("none");
            match &artifact.error {
                None => println!("summarised lecture {id} again ({kind}, {})", artifact.model.as_deref().unwrap_or("")),
                Some(error) => println!("lecture {id}: the summary failed, recorded on the artifact: {error}"),
            }
            Ok(())
        }
        AdminCommand::AgentToken(cmd) => {
            let app = open(global).await?;
            let result = agent_token(&app, cmd).await;
            app.store().close().await;
            result
        }
        AdminCommand::ApiToken(cmd) => {
            let app = open(global).await?;
            let result = super::admin_rooms::api_token(&app, cmd).await;
            app.store().close().await;
            result
        }
        AdminCommand::Drive(DriveCommand::RotateKey { json }) => {
            let app = open(global).await?;
            let result = confctl::gdrive::rotate_key(&app, &Actor::cli()).await;
            app.store().close().await;
            let rotation = result?;
            if json {
                println!("{}", serde_json::to_string(&rotation).unwrap_or_default());
            } else {
                println!(
                    "Google refresh tokens are now sealed with key version {}: {} re-sealed{}.",
                    rotation.version,
                    rotation.resealed,
                    match rotation.removed_versions.as_slice() {
                        [] => String::new(),
                        old => format!(", old versions {old:?} deleted"),
                    }
                );
            }
            if rotation.unreadable.is_empty() {
                Ok(())
            } else {
                Err(Failure {
                    message: format!(
                        "{} sealed token(s) could not be opened and were left as they were; those hosts must reconnect Google Drive",
                        rotation.unreadable.len()
                    ),
                    exit_code: 1,
                })
            }
        }
        AdminCommand::Monitor(args) => super::monitor::run(global, args).await,
        AdminCommand::Room(cmd) => {
            let app = open(global).await?;
            let result = super::admin_rooms::room(&app, cmd).await;
            app.store().close().await;
            result
        }
        AdminCommand::Ban(cmd) => {
            let app = open(global).await?;
            let result = super::admin_rooms::ban(&app, cmd).await;
            app.store().close().await;
            result
        }
        AdminCommand::Settings(cmd) => {
            let app = open(global).await?;
            let result = super::settings::run(&app, cmd).await;
            app.store().close().await;
            result
        }
        AdminCommand::User(cmd) => {
            let app = open(global).await?;
            let result = user(&app, cmd).await;
            app.store().close().await;
            result
        }
    }
}

pub(super) async fn open(global: &Global) -> Result<App, Failure> {
    let config = global.load(Vec::new())?;
    init_logging(&config);
    let store = confctl::server::open_store(&config, true).await?;
    Ok(App::new(config, store)?)
}

fn read_password_stdin() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure { message: format!("cannot read the password from standard input: {e}"), exit_code: 1 })?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    if line.is_empty() {
        return Err(Failure::usage("standard input was empty; pipe the password in, e.g. `echo … | confctl …`"));
    }
    Ok(line)
}

async fn user(app: &App, cmd: UserCommand) -> CmdResult {
    let actor = Actor::cli();
    match cmd {
        UserCommand::Create { email, name, role, password_stdin } => {
            let (password, generated) =
                if password_stdin { (read_password_stdin()?, false) } else { (accounts::generate_password(), true) };
            let user = accounts::create_user(app, &actor, &email, &name, role.into(), password.clone()).await?;
            println!("created {} {} ({})", user.role.as_str().to_lowercase(), user.email, user.id);
            if generated {
                println!("password: {password}");
                println!("(shown once; the user can change it after signing in)");
            }
        }
        UserCommand::List { json } => {
            let users = accounts::list_users(app).await?;
            if json {
                print_json(&users)?;
            } else {
                print_table(&users);
            }
        }
        UserCommand::SetRole { user, role } => {
            let found = accounts::find_user(app, &user).await?;
            accounts::set_role(app, &actor, &found.id, role.into()).await?;
            println!("{} is now {}", found.email, Role::from(role).as_str().to_lowercase());
        }
        UserCommand::Disable { user } => {
            let found = accounts::find_user(app, &user).await?;
            accounts::set_disabled(app, &actor, &found.id, true).await?;
            println!("{} is disabled and signed out everywhere", found.email);
        }
        UserCommand::Enable { user } => {
            let found = accounts::find_user(app, &user).await?;
            accounts::set_disabled(app, &actor, &found.id, false).await?;
            println!("{} is enabled", found.email);
        }
        UserCommand::SetPassword { user, password_stdin } => {
            let found = accounts::find_user(app, &user).await?;
            let (password, generated) =
                if password_stdin { (read_password_stdin()?, false) } else { (accounts::generate_password(), true) };
            accounts::set_password(app, &actor, &found.id, password.clone()).await?;
            println!("password of {} changed; all their sessions ended", found.email);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::RevokeSessions { user } => {
            let found = accounts::find_user(app, &user).await?;
            let n = accounts::revoke_sessions(app, &actor, &found.id).await?;
            println!("ended {n} session(s) of {}", found.email);
        }
    }
    Ok(())
}

async fn agent_token(app: &App, cmd: AgentTokenCommand) -> CmdResult {
    use confctl::accounts::agent_tokens;
    let actor = Actor::cli();
    match cmd {
        AgentTokenCommand::Create { name } => {
            let (record, token) = agent_tokens::create(app, &actor, &name).await?;
            println!("created agent token {} ({})", record.id, record.name);
            println!("token: {token}");
            println!("(shown once; give it to the assistant as CONFCTL_AGENT__TOKEN or [agent] token)");
        }
        AgentTokenCommand::List { json } => {
            let tokens = agent_tokens::list(app).await?;
            if json {
                print_json(&tokens)?;
            } else {
                println!("{:<22}  {:<24}  {:<16}  {:<16}  STATUS", "ID", "NAME", "CREATED", "LAST USED");
                for t in &tokens {
                    let status = if t.revoked_at.is_some() { "revoked" } else { "active" };
                    println!(
                        "{:<22}  {:<24}  {:<16}  {:<16}  {status}",
                        t.id,
                        t.name,
                        when(Some(t.created_at), ""),
                        when(t.last_used_at, "never")
                    );
                }
                if tokens.is_empty() {
                    println!("(no agent tokens: create one with `confctl admin agent-token create --name NAME`)");
                }
            }
        }
        AgentTokenCommand::Revoke { id } => {
            agent_tokens::revoke(app, &actor, &id).await?;
            println!("revoked agent token {id}");
        }
    }
    Ok(())
}

fn print_table(users: &[User]) {
    let email_w = users.iter().map(|u| u.email.chars().count()).max().unwrap_or(5).max(5);
    let name_w = users.iter().map(|u| u.name.chars().count()).max().unwrap_or(4).clamp(4, 30);
    println!("{:<22}  {:<email_w$}  {:<name_w$}  {:<5}  {:<8}  CREATED", "ID", "EMAIL", "NAME", "ROLE", "STATUS");
    for u in users {
        let name: String = u.name.chars().take(name_w).collect();
        let status = if u.disabled { "disabled" } else { "active" };
        println!(
            "{:<22}  {:<email_w$}  {:<name_w$}  {:<5}  {:<8}  {}",
            u.id,
            u.email,
            name,
            u.role.as_str(),
            status,
            u.created_at.format("%Y-%m-%d %H:%M")
        );
    }
    if users.is_empty() {
        println!("(no accounts yet: register the first one in the browser, or use `confctl admin user create`)");
    }
}
