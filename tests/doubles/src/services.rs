//! The real servers and tools some tests need beyond what `cargo test` starts, and the one rule for a test
//! whose service is missing: [`require`].
//!
//! `scripts/test` starts every service (`scripts/test-services`) and sets `CONFCTL_TEST_REQUIRE_SERVICES=1`:
//! there a missing service fails the test, so a run meant to be complete cannot pass by skipping. A plain
//! `cargo test` on a fresh clone skips those tests instead and says so, once per service.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// Set to `1` (by `scripts/test`) to fail, rather than skip, the tests whose service is missing.
pub const REQUIRE_SERVICES: &str = "CONFCTL_TEST_REQUIRE_SERVICES";

/// Something a group of tests needs that `cargo test` alone does not provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// A PostgreSQL server for the PostgreSQL half of the suite.
    Postgres,
    /// An S3 server (SeaweedFS) for the files tests' S3 backend.
    S3,
    /// An ACME server (pebble) for the certificate tests.
    Acme,
    /// An OpenAI-compatible Whisper speech-to-text server.
    Whisper,
    /// `espeak-ng` and `sox`, which speak the lectures the assistant's tests transcribe.
    Speech,
    /// The real `livekit-server` and LiveKit's Python SDKs (real WebRTC participants).
    LiveKit,
    /// `tmux`, in which the monitor's end-to-end test drives the terminal UI.
    Tmux,
    /// poppler's `pdftotext` and `pdftoppm`, which read the lecture PDF back and draw its first page.
    Poppler,
}

impl Service {
    /// The tests it gates, as the skip line names them.
    fn tests(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL tests",
            Self::S3 => "S3 storage tests",
            Self::Acme => "ACME certificate tests",
            Self::Whisper => "Whisper speech-to-text tests",
            Self::Speech => "synthesised speech tests",
            Self::LiveKit => "real livekit-server tests",
            Self::Tmux => "terminal monitor tests",
            Self::Poppler => "lecture PDF read-back tests",
        }
    }

    /// The environment variables `scripts/test-services` exports for it, and the programs it needs on the
    /// PATH.
    fn needs(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Self::Postgres => (&["TEST_DATABASE_URL"], &[]),
            Self::S3 => (&["TEST_S3_ENDPOINT", "TEST_S3_BUCKET", "TEST_S3_ACCESS_KEY", "TEST_S3_SECRET_KEY"], &[]),
            Self::Acme => {
                (&["TEST_PEBBLE_DIRECTORY", "TEST_PEBBLE_CA", "TEST_PEBBLE_MANAGEMENT", "TEST_PEBBLE_TLS_PORT"], &[])
            }
            Self::Whisper => (&["TEST_STT_URL"], &[]),
            Self::Speech => (&[], &["espeak-ng", "sox"]),
            Self::LiveKit => (&["TEST_LIVEKIT_SERVER_BIN", "TEST_LIVEKIT_PYTHON"], &[]),
            Self::Tmux => (&[], &["tmux"]),
            Self::Poppler => (&[], &["pdftotext", "pdftoppm"]),
        }
    }

    /// What is missing, e.g. `TEST_DATABASE_URL unset`; `None` when the service is there.
    fn missing(self) -> Option<String> {
        let (vars, programs) = self.needs();
        let unset = vars.iter().find(|var| std::env::var_os(var).is_none_or(|v| v.is_empty()));
        if let Some(var) = unset {
            return Some(format!("{var} unset"));
        }
        programs.iter().find(|program| !on_path(program)).map(|program| format!("{program} not found on the PATH"))
    }
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file())
}

/// The services already reported as skipped, so each says so once per test binary.
static REPORTED: Mutex<Vec<Service>> = Mutex::new(Vec::new());

/// Whether a test needing `services` can run. True when every one is there. When one is missing: a panic
/// if [`REQUIRE_SERVICES`] is `1`; otherwise false, after a line on stderr (once per service) saying which
/// tests are skipped and how to run them. A test returns at once on false:
/// `if !require(&[Service::Postgres]) { return; }`.
#[must_use = "a test whose service is missing must return"]
pub fn require(services: &[Service]) -> bool {
    let missing: Vec<(Service, String)> =
        services.iter().filter_map(|&service| service.missing().map(|why| (service, why))).collect();
    if missing.is_empty() {
        return true;
    }
    let strict = std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v == "1");
    assert!(
        !strict,
        "{} cannot run while {REQUIRE_SERVICES}=1: start the services with scripts/test, or \
         `eval \"$(scripts/test-services start)\"`",
        missing.iter().map(|(service, why)| format!("{} ({why})", service.tests())).collect::<Vec<_>>().join(", ")
    );
    let mut reported = REPORTED.lock().unwrap_or_else(PoisonError::into_inner);
    for (service, why) in missing {
        if !reported.contains(&service) {
            reported.push(service);
            // Straight to stderr: the test harness captures `eprintln!` of passing tests, and this line is
            // meant for the person who ran `cargo test`.
            let line = format!("skipped: {} ({why}) — run scripts/test to start the services\n", service.tests());
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
    false
}

/// Creates a fresh, empty database on the PostgreSQL server named by `TEST_DATABASE_URL` and returns its URL.
/// Tests ask `require(&[Service::Postgres])` first; this fails loudly when they did not.
// A test fixture: panicking with the reason is how it reports a missing or broken test server.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub async fn fresh_postgres_url() -> String {
    let base = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL is not set: run the suite with scripts/test, which starts a PostgreSQL server");
    let name = format!("confctl_t_{}", crate::ids::guid("").to_lowercase());
    sqlx::any::install_default_drivers();
    let mut conn =
        <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await.expect("connect to TEST_DATABASE_URL");
    sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("TEST_DATABASE_URL has a database name");
    format!("{prefix}/{name}")
}
