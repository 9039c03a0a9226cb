//! The real `confctl` binary: configuration errors, generated files, user administration, migrations, and
//! `serve` starting on its defaults and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::support::{confctl, repo_file, run, stderr, stdout};

#[test]
fn generated_files_match_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).args(["admin", "default-config", "--packaged"]));
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        repo_file("packaging/confctl.example.toml"),
        "regenerate with: confctl admin default-config --packaged > packaging/confctl.example.toml"
    );
    let out = run(confctl(dir.path()).args(["admin", "config-reference"]));
    assert_eq!(
        stdout(&out),
        repo_file("docs/configuration.md"),
        "regenerate with: confctl admin config-reference > docs/configuration.md"
    );
}

#[test]
fn invalid_configuration_is_one_clear_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).env("CONFCTL_LISTEN", "nowhere").args(["migrate", "--status"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("listen") && err.contains("nowhere") && err.contains("CONFCTL_LISTEN"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[auth]\nregistration = \"maybe\"\n").unwrap();
    let out = run(confctl(dir.path()).args(["--config", bad.to_str().unwrap(), "migrate"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("auth.registration") && err.contains("maybe") && err.contains("open or closed"), "{err}");

    let out = run(confctl(dir.path()).args(["--config", "/nonexistent/confctl.toml", "migrate"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/confctl.toml"));
}

#[test]
fn export_without_a_destination_says_so_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).args(["export", "--all"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--out DIR, or --to gdrive --as HOST_EMAIL"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "no fake output");
}

/// Ids are URL-safe base64, so one in 64 begins with `-`: every command that takes one must read it as the
/// id, not as an unknown option (the export test met such a lecture id by chance).
#[test]
fn ids_that_begin_with_a_hyphen_are_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 4] = [
        &["admin", "room", "show", "--json", "-zypK4mMpFWoNCiyOSYp-w"],
        &["admin", "room", "end", "-zypK4mMpFWoNCiyOSYp-w"],
        &["admin", "lecture", "resummarize", "-zypK4mMpFWoNCiyOSYp-w"],
        &["export", "--lecture", "-zypK4mMpFWoNCiyOSYp-w", "--room", "-abc", "--dry-run", "--json", "--out", "x"],
    ];
    for args in cases {
        let out = run(confctl(dir.path()).args(args));
        assert!(!out.status.success(), "{args:?}: there is no such object");
        assert!(!stderr(&out).contains("unexpected argument"), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("-zypK4mMpFWoNCiyOSYp-w") || stdout(&out).contains("-zypK4mMpFWoNCiyOSYp-w"),
            "{args:?} names the id it could not find: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn doctor_reports_a_broken_configuration_as_json_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).env("CONFCTL_LISTEN", "nowhere").args(["doctor", "--json"]));
    assert_eq!(out.status.code(), Some(1));
    let checks: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(checks[0]["name"], "config");
    assert_eq!(checks[0]["verdict"], "fail");
    assert!(checks[0]["message"].as_str().unwrap().contains("listen"));
}

#[test]
fn help_teaches() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).args(["serve", "--help"]));
    let text = stdout(&out);
    for flag in ["--config", "--data-dir", "--listen", "--database-url", "--log-format", "--no-migrate", "Examples"] {
        assert!(text.contains(flag), "serve --help lacks {flag}:\n{text}");
    }
}

#[test]
fn user_administration_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut create = confctl(dir.path());
    create
        .args(["admin", "user", "create", "--email", "prof@uni.edu", "--name", "Prof. Ada", "--role", "admin"])
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = create.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"a long passphrase\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("a long passphrase"), "a given password is never echoed");

    let out = run(confctl(dir.path()).args(["admin", "user", "create", "--email", "ta@uni.edu", "--name", "TA"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let generated = stdout(&out).lines().find_map(|l| l.strip_prefix("password: ").map(str::to_owned)).unwrap();
    assert!(generated.len() >= 16, "a generated password is printed once");

    let out = run(confctl(dir.path()).args(["admin", "user", "create", "--email", "TA@uni.edu", "--name", "Dup"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = run(confctl(dir.path()).args(["admin", "user", "set-role", "ta@uni.edu", "admin"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(confctl(dir.path()).args(["admin", "user", "disable", "ta@uni.edu"]));
    assert!(out.status.success());
    let out = run(confctl(dir.path()).args(["admin", "user", "list", "--json"]));
    let users: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ta = users.as_array().unwrap().iter().find(|u| u["email"] == "ta@uni.edu").unwrap();
    assert_eq!(ta["role"], "ADMIN");
    assert_eq!(ta["disabled"], true);
    let out = run(confctl(dir.path()).args(["admin", "user", "list"]));
    let table = stdout(&out);
    assert!(table.contains("prof@uni.edu") && table.contains("disabled"), "{table}");

    let out = run(confctl(dir.path()).args(["admin", "user", "set-password", "nobody@uni.edu"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nobody@uni.edu"));
    let out = run(confctl(dir.path()).args(["admin", "user", "revoke-sessions", "prof@uni.edu"]));
    assert!(out.status.success());
    assert!(stdout(&out).contains("0 session"));
}

#[test]
fn drive_key_rotation_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).args(["admin", "drive", "rotate-key", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let first: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(first, serde_json::json!({"version": 1, "resealed": 0, "unreadable": [], "removedVersions": []}));
    let out = run(confctl(dir.path()).args(["admin", "drive", "rotate-key"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "Google refresh tokens are now sealed with key version 2: 0 re-sealed, old versions [1] deleted."
    );
}

#[test]
fn migrate_status_then_apply() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(confctl(dir.path()).args(["migrate", "--status"]));
    assert_eq!(out.status.code(), Some(1), "pending migrations are reported with a non-zero status");
    assert!(stdout(&out).contains("pending"));
    let out = run(confctl(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(confctl(dir.path()).args(["migrate", "--status"]));
    assert!(out.status.success());
    assert!(!stdout(&out).contains("pending"));
}

/// Reads stderr lines until one contains `needle`; returns it.
fn wait_for_line(reader: &mut impl BufRead, needle: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the server exited before logging {needle:?}");
        if line.contains(needle) {
            return line;
        }
    }
}

/// Sends one whole HTTP/1.1 request and reads the answer to the end (the request asks the server to close).
fn exchange(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn http_get(addr: &str, path: &str) -> String {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"))
}

/// `confctl serve` on a free loopback port, logging JSON at info level to the pipe returned with it.
fn serve(mut command: Command) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut child = command
        .env("CONFCTL_LOG_LEVEL", "info")
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    (child, err)
}

#[test]
fn serve_runs_on_defaults_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, mut err) = serve(confctl(&data));
    let warning = wait_for_line(&mut err, "DEVELOPMENT credentials");
    assert!(serde_json::from_str::<serde_json::Value>(&warning).is_ok(), "json log lines: {warning}");
    let listening = wait_for_line(&mut err, "listening on http://");
    let line: serde_json::Value = serde_json::from_str(&listening).unwrap();
    let addr = line["addr"].as_str().unwrap().to_owned();

    let ready = http_get(&addr, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(data.join("confctl.db").exists(), "SQLite inside the data directory");

    let request_line = wait_for_line(&mut err, "\"path\":\"/readyz\"");
    assert!(request_line.contains("\"status\":200") && request_line.contains("latency_ms"), "{request_line}");

    // Connections a browser leaves behind do not hold the stop up: one kept alive after its answer, one
    // that has sent half a request.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
    let mut answer = [0u8; 512];
    let n = kept.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "kept alive after its answer");
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).unwrap();

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_for_line(&mut err, "stopped");
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
    assert_eq!(kept.read(&mut answer).unwrap(), 0, "the kept-alive connection was closed");
}

fn http_post_json(addr: &str, path: &str, body: &str) -> String {
    exchange(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn sighup_applies_live_settings_and_names_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("confctl.toml");
    std::fs::write(&config, "[auth]\nregistration = \"open\"\n").unwrap();
    let mut command = confctl(&data);
    command.env("CONFCTL_CONFIG", &config);
    let (mut child, mut err) = serve(command);
    let listening = wait_for_line(&mut err, "listening on http://");
    let addr = serde_json::from_str::<serde_json::Value>(&listening).unwrap()["addr"].as_str().unwrap().to_owned();
    let first =
        http_post_json(&addr, "/api/auth/register", r#"{"email":"a@uni.edu","password":"long enough","name":"A"}"#);
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");

    std::fs::write(&config, "max_body_bytes = 100000\n[auth]\nregistration = \"closed\"\n").unwrap();
    let hup = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let applied = wait_for_line(&mut err, "applied now");
    assert!(applied.contains("auth.registration"), "{applied}");
    let restart = wait_for_line(&mut err, "need a restart");
    assert!(restart.contains("max_body_bytes"), "{restart}");
    let second =
        http_post_json(&addr, "/api/auth/register", r#"{"email":"b@uni.edu","password":"long enough","name":"B"}"#);
    assert!(second.starts_with("HTTP/1.1 403") && second.contains("registration_closed"), "{second}");

    // A broken file is refused and the running settings stay.
    std::fs::write(&config, "[auth]\nregistration = \"sometimes\"\n").unwrap();
    Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    let refused = wait_for_line(&mut err, "reload refused");
    assert!(refused.contains("auth.registration"), "{refused}");

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
