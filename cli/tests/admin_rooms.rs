//! `confctl admin api-token`, `room` and `ban` as scripts use them: tables, `--json`, and exit status 1 with a
//! clear message for an unknown id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn confctl(data_dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confctl"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFCTL_") {
            cmd.env_remove(key);
        }
    }
    let empty = data_dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    cmd.env("CONFCTL_DATA_DIR", data_dir).env("CONFCTL_CONFIG", empty).env("CONFCTL_LOG_LEVEL", "warn");
    cmd.args(args).output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tokens_rooms_and_bans_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let created = confctl(d, &["admin", "api-token", "create", "--name", "grafana", "--expires", "30d"]);
    assert!(created.status.success(), "{}", err(&created));
    let text = out(&created);
    assert!(text.contains("created read API token") && text.contains("token: cfm_"), "{text}");
    let id = text.split_whitespace().nth(4).unwrap().to_owned();
    let listed = confctl(d, &["admin", "api-token", "list", "--json"]);
    let tokens: serde_json::Value = serde_json::from_str(&out(&listed)).unwrap();
    assert_eq!((tokens[0]["id"].as_str(), tokens[0]["scope"].as_str()), (Some(id.as_str()), Some("read")));
    assert!(tokens[0]["expiresAt"].as_i64().is_some());
    let bad = confctl(d, &["admin", "api-token", "create", "--name", "x", "--expires", "soon"]);
    assert_eq!(bad.status.code(), Some(2), "{}", err(&bad));
    assert!(err(&bad).contains("90d"), "{}", err(&bad));
    assert!(confctl(d, &["admin", "api-token", "revoke", &id]).status.success());
    let table = out(&confctl(d, &["admin", "api-token", "list"]));
    assert!(table.contains("grafana") && table.contains("revoked"), "{table}");

    let rooms = confctl(d, &["admin", "room", "list", "--json"]);
    assert!(rooms.status.success(), "{}", err(&rooms));
    assert_eq!(out(&rooms).trim(), "[]");
    assert!(out(&confctl(d, &["admin", "room", "list", "--state", "archived"])).contains("(no rooms in this state)"));
    for args in [["room", "show"], ["room", "end"], ["room", "lock"], ["ban", "lift"]] {
        let o = confctl(d, &["admin", args[0], args[1], "nope"]);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(err(&o).contains("nope"), "{args:?}: {}", err(&o));
    }
    assert_eq!(out(&confctl(d, &["admin", "ban", "list", "--json"])).trim(), "[]");
}
