//! Running the `confctl` binary under test, isolated from the developer's environment and `/etc`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary with no `CONFCTL_*` variable (nor systemd's `NOTIFY_SOCKET`) inherited, and no stdin.
pub fn isolated() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confctl"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFCTL_") || key == "NOTIFY_SOCKET" {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// [`isolated`] on its own data directory (created when missing) with an empty configuration file in it, so
/// only the embedded defaults and what the test sets apply; logging at `warn`.
pub fn confctl(data_dir: &Path) -> Command {
    let empty_config = data_dir.join("empty.toml");
    if !empty_config.exists() {
        std::fs::create_dir_all(data_dir).unwrap();
        std::fs::write(&empty_config, "").unwrap();
    }
    let mut cmd = isolated();
    cmd.env("CONFCTL_DATA_DIR", data_dir).env("CONFCTL_CONFIG", empty_config).env("CONFCTL_LOG_LEVEL", "warn");
    cmd
}

/// Runs `cmd` to the end and returns what it printed.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file of the repository, by its path from the root.
pub fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
