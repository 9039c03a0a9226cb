//! Renders the key table as the commented example config and as the configuration reference in Markdown.

use super::keys::{KEYS, Kind, SECTIONS};

/// The fully commented example configuration printed by `confctl admin default-config`. `packaged`: the
/// variant the Debian package installs as /etc/confctl/confctl.toml, where `data_dir` is set to the state
/// directory systemd manages, so the service and `sudo confctl admin …` use the same installation.
pub fn example_toml(packaged: bool) -> String {
    let mut out = String::from(
        "# confctl configuration file (/etc/confctl/confctl.toml).\n\
         #\n\
         # Every key is optional; the commented-out values are the built-in defaults.\n\
         # Precedence: built-in defaults < this file < CONFCTL_* environment variables < command-line flags.\n\
         # Environment names: CONFCTL_ + the key in capitals, sections joined by a double underscore,\n\
         # e.g. [livekit] url = CONFCTL_LIVEKIT__URL. Secrets can also come from a file named by\n\
         # <VARIABLE>_FILE, e.g. CONFCTL_LIVEKIT__API_SECRET_FILE=/run/credentials/livekit-secret.\n",
    );
    for (section, title) in SECTIONS {
        out.push('\n');
        if section.is_empty() {
            out.push_str(&format!("# {title}\n"));
        } else {
            out.push_str(&format!("# {title}\n[{section}]\n"));
        }
        for key in KEYS.iter().filter(|k| k.section() == *section) {
            out.push('\n');
            for line in key.help.lines() {
                out.push_str(&format!("# {}\n", line.trim()));
            }
            let mut env = format!("# Environment: {}", key.env_var());
            if key.kind == Kind::Secret {
                env.push_str(&format!(" or {}_FILE", key.env_var()));
            }
            out.push_str(&env);
            out.push('\n');
            match key.default {
                Some(_) if packaged && key.path == "data_dir" => {
                    out.push_str("data_dir = \"/var/lib/confctl\"   # set by the Debian package\n");
                }
                Some(default) => out.push_str(&format!("#{} = {default}\n", key.name())),
                None => out.push_str(&format!("#{} =   # unset; allowed: {}\n", key.name(), key.allowed())),
            }
        }
    }
    out
}

/// `docs/configuration.md`: every key with its default and meaning.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from src/config/keys.rs by `confctl admin config-reference`; a test keeps it in sync. -->\n\n\
         confctl reads, in increasing precedence: built-in defaults, the config file (`/etc/confctl/confctl.toml`\n\
         or `--config PATH`), `CONFCTL_*` environment variables, and command-line flags. Nested keys use a double\n\
         underscore in the environment: `[livekit] url` is `CONFCTL_LIVEKIT__URL`. Every secret can also be read\n\
         from a file named by the variable plus `_FILE`. An invalid value stops confctl with a one-line error\n\
         naming the key, the value, where it was set and what is allowed (exit status 2).\n\n\
         The global AI settings an administrator stores in the database (`confctl admin settings`, the admin\n\
         page) override `[agent] default_language`, `llm_model` and the choice of summariser: these keys are\n\
         their defaults (see the operator guide, \"Global AI settings\"). API keys stay in the file.\n",
    );
    for (section, title) in SECTIONS {
        let heading = if section.is_empty() { "Top level".to_owned() } else { format!("`[{section}]`") };
        out.push_str(&format!("\n## {heading}\n\n{title}\n\n"));
        out.push_str("| Key | Default | Environment | Meaning |\n|---|---|---|---|\n");
        for key in KEYS.iter().filter(|k| k.section() == *section) {
            let default = key.default.map(|d| format!("`{d}`")).unwrap_or_else(|| "unset".into());
            let mut env = format!("`{}`", key.env_var());
            if key.kind == Kind::Secret {
                env.push_str(&format!(" or `{}_FILE`", key.env_var()));
            }
            let help = key.help.lines().map(str::trim).collect::<Vec<_>>().join(" ");
            out.push_str(&format!(
                "| `{}` | {default} | {env} | {} Allowed: {}. |\n",
                key.name(),
                help.replace('|', "\\|"),
                key.allowed()
            ));
        }
    }
    out
}
