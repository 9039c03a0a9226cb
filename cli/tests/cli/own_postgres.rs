//! A PostgreSQL cluster of a test's own — `initdb` in a temporary directory, on a port free at start — which
//! the test may stop and start again (the shared test server cannot be restarted under the other tests).
//! It uses the binaries of the server `scripts/test-services` installed; as root it runs them as `postgres`,
//! since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    /// A new cluster, started. `None` when no PostgreSQL binaries are installed.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .max()?;
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let chowned = Command::new("chown").arg("-R").arg("postgres").arg(dir.path()).status().unwrap();
            assert!(chowned.success(), "chown of the cluster's directory to postgres");
        }
        let pg = Self { port: crate::support::free_port(), dir, bin };
        pg.run(&format!("{} -D {} -A trust -U postgres", pg.tool("initdb"), pg.data().display()));
        pg.start_again();
        Some(pg)
    }

    /// Where clients connect (the `postgres` database).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the way an operator's restart does (`pg_ctl -m fast`: open connections are ended).
    pub fn stop(&self) {
        self.run(&format!("{} -D {} -m fast -w stop", self.tool("pg_ctl"), self.data().display()));
    }

    /// Starts the (stopped) server again on the same port and waits until it takes connections.
    pub fn start_again(&self) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        self.run(&format!(
            "{} -D {} -o '{options}' -l {} -w start",
            self.tool("pg_ctl"),
            self.data().display(),
            self.dir.path().join("log").display()
        ));
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    fn run(&self, command: &str) {
        let output = shell(command).output().unwrap();
        assert!(
            output.status.success(),
            "{command}: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = shell(&format!("{} -D {} -m immediate stop", self.tool("pg_ctl"), self.data().display())).output();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn shell(command: &str) -> Command {
    let mut cmd = if is_root() {
        let mut su = Command::new("su");
        su.args(["postgres", "-s", "/bin/sh", "-c", command]);
        su
    } else {
        let mut sh = Command::new("sh");
        sh.args(["-c", command]);
        sh
    };
    // The cluster's directory is the only place it writes; `su` keeps the test's working directory, which
    // `postgres` may not be allowed to enter.
    cmd.current_dir(Path::new("/"));
    cmd
}
