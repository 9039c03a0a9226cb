//! `confctl admin api-token`, `room`, `ban` and `settings` as scripts use them: tables, `--json`, exit status 1
//! with a clear message for an unknown id, and 2 for a setting or value the command line got wrong.

use std::path::Path;
use std::process::Output;

use crate::support::{confctl, run, stderr, stdout};

/// Runs `confctl ARGS` on `data_dir` to the end.
fn confctl_in(data_dir: &Path, args: &[&str]) -> Output {
    run(confctl(data_dir).args(args))
}

#[test]
fn tokens_rooms_and_bans_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let created = confctl_in(d, &["admin", "api-token", "create", "--name", "grafana", "--expires", "30d"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let text = stdout(&created);
    assert!(text.contains("created read API token") && text.contains("token: cfm_"), "{text}");
    let id = text.split_whitespace().nth(4).unwrap().to_owned();
    let listed = confctl_in(d, &["admin", "api-token", "list", "--json"]);
    let tokens: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!((tokens[0]["id"].as_str(), tokens[0]["scope"].as_str()), (Some(id.as_str()), Some("read")));
    assert!(tokens[0]["expiresAt"].as_i64().is_some());
    let bad = confctl_in(d, &["admin", "api-token", "create", "--name", "x", "--expires", "soon"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("90d"), "{}", stderr(&bad));
    assert!(confctl_in(d, &["admin", "api-token", "revoke", &id]).status.success());
    let table = stdout(&confctl_in(d, &["admin", "api-token", "list"]));
    assert!(table.contains("grafana") && table.contains("revoked"), "{table}");

    let rooms = confctl_in(d, &["admin", "room", "list", "--json"]);
    assert!(rooms.status.success(), "{}", stderr(&rooms));
    assert_eq!(stdout(&rooms).trim(), "[]");
    assert!(
        stdout(&confctl_in(d, &["admin", "room", "list", "--state", "archived"])).contains("(no rooms in this state)")
    );
    for args in [["room", "show"], ["room", "end"], ["room", "lock"], ["ban", "lift"]] {
        let o = confctl_in(d, &["admin", args[0], args[1], "nope"]);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains("nope"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(stdout(&confctl_in(d, &["admin", "ban", "list", "--json"])).trim(), "[]");
}

#[test]
fn ai_settings_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = stdout(&confctl_in(d, &["admin", "settings", "get"]));
    assert!(table.contains("defaultLanguage") && table.contains("default ([agent] default_language)"), "{table}");

    let set = confctl_in(d, &["admin", "settings", "set", "default-language", "ru"]);
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(stdout(&set).trim(), "defaultLanguage is now ru");
    assert_eq!(
        stdout(&confctl_in(d, &["admin", "settings", "set", "summaries", "off"])).trim(),
        "summaries is now off"
    );
    let view: serde_json::Value =
        serde_json::from_str(&stdout(&confctl_in(d, &["admin", "settings", "get", "--json"]))).unwrap();
    assert_eq!(
        (view["settings"]["defaultLanguage"].as_str(), view["stored"]["summaries"].as_bool()),
        (Some("ru"), Some(false))
    );
    assert!(stdout(&confctl_in(d, &["admin", "settings", "get"])).contains("database (default en)"));

    for (args, says) in [
        (["set", "apiKey", "sk-1"], "there is no setting \"apiKey\""),
        (["set", "summaries", "maybe"], "summaries must be on or off"),
        (["set", "defaultLanguage", "English"], "defaultLanguage must be a language code"),
        (["set", "summariser", "gpt"], "unknown variant `gpt`"),
    ] {
        let o = confctl_in(d, &[&["admin", "settings"][..], &args[..]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // A reset removes the stored value: the default applies again.
    let reset = confctl_in(d, &["admin", "settings", "reset", "defaultLanguage"]);
    assert_eq!(stdout(&reset).trim(), "defaultLanguage is now en");
    let view: serde_json::Value =
        serde_json::from_str(&stdout(&confctl_in(d, &["admin", "settings", "get", "--json"]))).unwrap();
    assert!(view["stored"]["defaultLanguage"].is_null(), "{view}");
}
