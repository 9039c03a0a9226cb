//! Global AI settings (`confctl admin settings`, the admin page's assistant section): whether new rooms get the
//! assistant, the caption language of rooms that set none, whether lectures are summarised, by which summariser
//! and with which chat model. A value stored here overrides its default from the `[agent]` section of the
//! configuration; a reset removes the stored value and the default applies again. API keys are not settings:
//! they stay in the config file.
//!
//! The assistant learns the values through the agent API it already uses — each room it is sent carries its
//! language, the summary context carries the summary settings — so a change applies from the next lecture (or
//! summary) on, without restarting `confctl agent` or `serve --with-agent`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::rooms::present;

/// Which summariser writes lecture summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SummariserKind {
    /// The chat model behind `[agent] llm_url`.
    Llm,
    /// The built-in extractive summariser (offline).
    Extractive,
}

impl SummariserKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Extractive => "extractive",
        }
    }
}

/// The settings in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AiSettings {
    /// Whether a new room has the assistant on when its host does not say.
    pub assistant_default: bool,
    /// Captions and summary language of rooms that set none.
    pub default_language: String,
    /// Whether the assistant summarises a lecture once it ends (the transcript is written either way).
    pub summaries: bool,
    pub summariser: SummariserKind,
    /// The chat model the LLM summariser asks for.
    pub llm_model: String,
}

/// What the database holds: each value overrides its default; `None` follows the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub assistant_default: Option<bool>,
    pub default_language: Option<String>,
    pub summaries: Option<bool>,
    pub summariser: Option<SummariserKind>,
    pub llm_model: Option<String>,
}

/// The settings, which of them are stored, and the defaults the others follow.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub settings: AiSettings,
    pub stored: Stored,
    pub defaults: AiSettings,
}

/// What the assistant needs to summarise a lecture, as the summary context carries it. `summariser` and
/// `llm_model` are `None` unless an admin set them: a `confctl agent` on another machine then follows its own
/// `[agent]` configuration, as it did before these settings existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummarySettings {
    pub enabled: bool,
    #[serde(default)]
    pub summariser: Option<SummariserKind>,
    #[serde(default)]
    pub llm_model: Option<String>,
}

impl Default for SummarySettings {
    /// A server that sends no settings: summaries on, the assistant's own configuration.
    fn default() -> Self {
        Self { enabled: true, summariser: None, llm_model: None }
    }
}

impl SettingsView {
    pub fn for_summary(&self) -> SummarySettings {
        SummarySettings {
            enabled: self.settings.summaries,
            summariser: self.stored.summariser,
            llm_model: self.stored.llm_model.clone(),
        }
    }
}

/// One setting: its name in the API, the CLI and the audit log, and its row in `instance_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    AssistantDefault,
    DefaultLanguage,
    Summaries,
    Summariser,
    LlmModel,
}

impl Setting {
    pub const ALL: [Self; 5] =
        [Self::AssistantDefault, Self::DefaultLanguage, Self::Summaries, Self::Summariser, Self::LlmModel];

    /// The name in JSON, on the command line and in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::AssistantDefault => "assistantDefault",
            Self::DefaultLanguage => "defaultLanguage",
            Self::Summaries => "summaries",
            Self::Summariser => "summariser",
            Self::LlmModel => "llmModel",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::AssistantDefault => "ai.assistant_default",
            Self::DefaultLanguage => "ai.default_language",
            Self::Summaries => "ai.summaries",
            Self::Summariser => "ai.summariser",
            Self::LlmModel => "ai.llm_model",
        }
    }

    /// A setting by its name; the command line may also spell it in kebab case (`default-language`).
    pub fn parse(name: &str) -> Result<Self> {
        let folded: String = name.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
        Self::ALL.into_iter().find(|s| s.name().to_lowercase() == folded).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|s| s.name()).collect();
            Error::invalid(
                "unknown_setting",
                format!("there is no setting {name:?}; the settings are {}", names.join(", ")),
            )
        })
    }

    fn is_flag(self) -> bool {
        matches!(self, Self::AssistantDefault | Self::Summaries)
    }
}

/// A change: a field left out stays as it is, `null` returns it to its default.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, deserialize_with = "present")]
    pub assistant_default: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub default_language: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub summaries: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub summariser: Option<Option<SummariserKind>>,
    #[serde(default, deserialize_with = "present")]
    pub llm_model: Option<Option<String>>,
}

impl SettingsPatch {
    /// One setting given as text (`confctl admin settings set NAME VALUE`): `on`/`off` (or true/false, yes/no)
    /// for the switches; `None` is a reset.
    pub fn from_text(setting: Setting, value: Option<&str>) -> Result<Self> {
        let value = match value.map(str::trim) {
            None => Value::Null,
            Some(text) if setting.is_flag() => match text.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" => Value::Bool(true),
                "off" | "false" | "no" => Value::Bool(false),
                _ => return Err(Error::invalid("invalid_body", format!("{} must be on or off", setting.name()))),
            },
            Some(text) => Value::String(text.to_owned()),
        };
        serde_json::from_value(json!({ setting.name(): value }))
            .map_err(|e| Error::invalid("invalid_body", format!("{}: {e}", setting.name())))
    }

    /// The stored value of each setting the patch touches (`None`: remove it), checked.
    fn rows(self) -> Result<Vec<(Setting, Option<String>)>> {
        let mut rows = Vec::new();
        let flag = |v: bool| v.to_string();
        if let Some(v) = self.assistant_default {
            rows.push((Setting::AssistantDefault, v.map(flag)));
        }
        if let Some(v) = self.default_language {
            rows.push((Setting::DefaultLanguage, v.as_deref().map(check_language).transpose()?));
        }
        if let Some(v) = self.summaries {
            rows.push((Setting::Summaries, v.map(flag)));
        }
        if let Some(v) = self.summariser {
            rows.push((Setting::Summariser, v.map(|k| k.as_str().to_owned())));
        }
        if let Some(v) = self.llm_model {
            rows.push((Setting::LlmModel, v.as_deref().map(check_model).transpose()?));
        }
        Ok(rows)
    }
}

fn check_language(code: &str) -> Result<String> {
    let code = code.trim();
    if !crate::config::is_language_code(code) {
        return Err(Error::invalid("invalid_language", "defaultLanguage must be a language code such as en or ru"));
    }
    Ok(code.to_owned())
}

fn check_model(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "invalid_llm_model",
            "llmModel must be a model name of 1 to 200 characters without spaces, such as gpt-4o-mini",
        ));
    }
    Ok(name.to_owned())
}

/// The defaults: the `[agent]` section of this server's configuration (the summariser is the LLM when
/// `llm_url` is set), and "on" for the two switches, which have no configuration key.
fn defaults(app: &App) -> AiSettings {
    let agent = &app.config().agent;
    AiSettings {
        assistant_default: true,
        default_language: agent.default_language.clone(),
        summaries: true,
        summariser: if agent.llm_url.is_some() { SummariserKind::Llm } else { SummariserKind::Extractive },
        llm_model: agent.llm_model.clone(),
    }
}

fn parse_stored(rows: Vec<(String, String)>) -> Stored {
    let mut stored = Stored::default();
    for (key, value) in rows {
        let Some(setting) = Setting::ALL.into_iter().find(|s| s.key() == key) else { continue };
        // Values are checked before they are written, so a value that does not parse was written by hand (or
        // by a later version): it is ignored, and the default applies.
        let ok = match setting {
            Setting::AssistantDefault => value.parse().map(|v| stored.assistant_default = Some(v)).is_ok(),
            Setting::Summaries => value.parse().map(|v| stored.summaries = Some(v)).is_ok(),
            Setting::DefaultLanguage => check_language(&value).map(|v| stored.default_language = Some(v)).is_ok(),
            Setting::LlmModel => check_model(&value).map(|v| stored.llm_model = Some(v)).is_ok(),
            Setting::Summariser => {
                serde_json::from_value(Value::String(value.clone())).map(|v| stored.summariser = Some(v)).is_ok()
            }
        };
        if !ok {
            tracing::warn!(key, value, "ignoring an unreadable AI setting in the database");
        }
    }
    stored
}

/// The settings in effect, what is stored and the defaults.
pub async fn view(app: &App) -> Result<SettingsView> {
    let stored = parse_stored(app.store().instance_values("ai.").await?);
    let defaults = defaults(app);
    let settings = AiSettings {
        assistant_default: stored.assistant_default.unwrap_or(defaults.assistant_default),
        default_language: stored.default_language.clone().unwrap_or_else(|| defaults.default_language.clone()),
        summaries: stored.summaries.unwrap_or(defaults.summaries),
        summariser: stored.summariser.unwrap_or(defaults.summariser),
        llm_model: stored.llm_model.clone().unwrap_or_else(|| defaults.llm_model.clone()),
    };
    Ok(SettingsView { settings, stored, defaults })
}

/// The settings in effect.
pub async fn current(app: &App) -> Result<AiSettings> {
    Ok(view(app).await?.settings)
}

/// Applies a change (all of it or, when a value is invalid, none), audited as `settings.update` with each
/// changed setting's value before and after.
pub async fn update(app: &App, actor: &Actor, patch: SettingsPatch) -> Result<SettingsView> {
    let rows = patch.rows()?;
    if rows.is_empty() {
        return view(app).await;
    }
    let before = view(app).await?;
    let changes: Vec<(&str, Option<String>)> = rows.iter().map(|(s, v)| (s.key(), v.clone())).collect();
    app.store().set_instance_values(&changes).await?;
    let after = view(app).await?;
    let (old, new) = (json!(before.settings), json!(after.settings));
    let details: serde_json::Map<String, Value> = rows
        .iter()
        .map(|(s, stored)| {
            let name = s.name();
            (name.to_owned(), json!({ "from": old[name], "to": new[name], "default": stored.is_none() }))
        })
        .collect();
    audit::record(app, actor, "settings.update", Some(("settings", "ai")), None, Value::Object(details)).await;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_named_in_camel_or_kebab_case() {
        assert_eq!(Setting::parse("default-language").ok(), Some(Setting::DefaultLanguage));
        assert_eq!(Setting::parse("llmModel").ok(), Some(Setting::LlmModel));
        assert_eq!(Setting::parse("SUMMARIES").ok(), Some(Setting::Summaries));
        let err = Setting::parse("api-key").unwrap_err().to_string();
        assert!(err.contains("\"api-key\"") && err.contains("summariser"), "{err}");
    }

    #[test]
    fn text_values_become_a_patch_and_bad_ones_name_the_setting() {
        let patch = SettingsPatch::from_text(Setting::AssistantDefault, Some("off")).unwrap();
        assert_eq!(patch.assistant_default, Some(Some(false)));
        let patch = SettingsPatch::from_text(Setting::Summariser, None).unwrap();
        assert_eq!(patch.summariser, Some(None));
        let err = SettingsPatch::from_text(Setting::Summaries, Some("maybe")).unwrap_err().to_string();
        assert!(err.contains("summaries must be on or off"), "{err}");
        let err = SettingsPatch::from_text(Setting::Summariser, Some("gpt")).unwrap_err().to_string();
        assert!(err.starts_with("summariser: unknown variant `gpt`"), "{err}");
        let rows = SettingsPatch::from_text(Setting::DefaultLanguage, Some("xx-not a code")).unwrap().rows();
        assert!(rows.unwrap_err().to_string().contains("defaultLanguage"));
        let rows = SettingsPatch::from_text(Setting::LlmModel, Some("llama 3")).unwrap().rows();
        assert!(rows.unwrap_err().to_string().contains("llmModel"));
    }

    #[test]
    fn unreadable_stored_values_are_ignored() {
        let stored = parse_stored(vec![
            ("ai.summaries".into(), "false".into()),
            ("ai.summariser".into(), "markov".into()),
            ("ai.default_language".into(), "ru".into()),
            ("ai.unknown".into(), "x".into()),
        ]);
        assert_eq!(stored, Stored { summaries: Some(false), default_language: Some("ru".into()), ..Stored::default() });
    }
}
