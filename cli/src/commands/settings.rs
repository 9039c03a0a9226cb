//! `confctl admin settings get/set/reset`: the global AI settings on the configured database, as the admin
//! page and `PATCH /api/admin/settings` change them (same checks, same `settings.update` audit entry). The
//! running server and assistants follow a change from the next lecture on, without a restart.

use clap::Subcommand;
use confctl::admin::ai_settings::{self, Setting, SettingsPatch, SettingsView};
use confctl::app::App;
use confctl::audit::Actor;
use serde_json::{Value, json};

use super::{CmdResult, Failure, print_json};

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show every setting, its value and whether it is stored or follows its default.
    Get {
        /// Print JSON (`{settings, stored, defaults}`, as the API answers) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Store a setting. Switches take on/off.
    #[command(
        after_help = "Settings:\n  assistantDefault  on|off      the assistant is on in new rooms whose host does not say\n  \
                      defaultLanguage   CODE        captions and summaries of rooms that set no language (en, ru, …)\n  \
                      summaries         on|off      summarise lectures when they end\n  \
                      summariser        llm|extractive\n  \
                      llmModel          NAME        the chat model the LLM summariser asks for\n\
                      Kebab case works too (default-language).\n\n\
                      Examples:\n  confctl admin settings set defaultLanguage ru\n  confctl admin settings set summariser extractive"
    )]
    Set {
        /// The setting's name.
        name: String,
        /// Its new value.
        value: String,
    },
    /// Remove a stored setting: its default from the configuration applies again.
    #[command(after_help = "Example:\n  confctl admin settings reset llmModel")]
    Reset {
        /// The setting's name.
        name: String,
    },
}

pub async fn run(app: &App, cmd: SettingsCommand) -> CmdResult {
    let (name, value) = match cmd {
        SettingsCommand::Get { json } => {
            let view = ai_settings::view(app).await?;
            if json {
                print_json(&view)?;
            } else {
                print_table(&view);
            }
            return Ok(());
        }
        SettingsCommand::Set { name, value } => (name, Some(value)),
        SettingsCommand::Reset { name } => (name, None),
    };
    // A name or value the command line got wrong is a usage error (exit 2), like a bad flag.
    let usage = |e: confctl::Error| Failure::usage(e.to_string());
    let setting = Setting::parse(&name).map_err(usage)?;
    let patch = SettingsPatch::from_text(setting, value.as_deref()).map_err(usage)?;
    let view = ai_settings::update(app, &Actor::cli(), patch).await.map_err(|e| match e {
        confctl::Error::Invalid { message, .. } => Failure::usage(message),
        other => other.into(),
    })?;
    println!("{} is now {}", setting.name(), shown(&json!(view.settings)[setting.name()]));
    Ok(())
}

/// `on`/`off` for switches, the text for the rest.
fn shown(value: &Value) -> String {
    match value {
        Value::Bool(true) => "on".to_owned(),
        Value::Bool(false) => "off".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_table(view: &SettingsView) {
    let (settings, stored, defaults) = (json!(view.settings), json!(view.stored), json!(view.defaults));
    println!("{:<18}  {:<16}  SOURCE", "SETTING", "VALUE");
    for setting in Setting::ALL {
        let name = setting.name();
        let source = if stored[name].is_null() {
            format!("default ({})", default_source(setting))
        } else {
            format!("database (default {})", shown(&defaults[name]))
        };
        println!("{name:<18}  {:<16}  {source}", shown(&settings[name]));
    }
}

/// Where a setting's default comes from.
fn default_source(setting: Setting) -> &'static str {
    match setting {
        Setting::AssistantDefault | Setting::Summaries => "built in",
        Setting::DefaultLanguage => "[agent] default_language",
        Setting::Summariser => "llm when [agent] llm_url is set",
        Setting::LlmModel => "[agent] llm_model",
    }
}
