//! `confctl export` in bulk (issue: `confctl export`): N two-hour lectures (default 1,000; each ≈ 1,200
//! transcript segments, 300 chat lines and a summary) exported to a folder as PDF + JSON + VTT with the
//! default two jobs. Target: ≤ 2 minutes on the 2-core machine, memory bounded.
//!
//! Run: `cargo build --release --bin confctl && cargo bench --bench export_batch` (optionally `-- 200` for fewer lectures, `-- 1000 4` for four
//! jobs). The lectures are written into a fresh SQLite database first (untimed; one transaction), then the
//! export runs in a child process (this program again) through the same library calls `confctl export`
//! makes, so its peak RSS is the export's alone. A load script, not a test: it prints what it measured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/lectures.rs"]
mod lectures;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confctl::app::App;
use confctl::config::{self, Config, Sources};
use confctl::export::{Format, synthetic};
use confctl::lectures::batch::{self, Item, Options, Quiet, Selection, Target};
use confctl::lectures::workers::RenderWorkers;

/// Set in the child: the data directory to export from.
const CHILD: &str = "CONFCTL_BENCH_EXPORT_DATA";

/// Lectures per generated room (a course's semester).
const PER_ROOM: usize = 20;

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let lectures = numbers.first().copied().unwrap_or(1000);
    let jobs = numbers.get(1).copied().unwrap_or(2);
    if let Ok(data) = std::env::var(CHILD) {
        export(Path::new(&data), jobs).await;
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    generate(data.path(), lectures).await;
    println!("generated {lectures} two-hour lectures in {:.1} s (untimed)", started.elapsed().as_secs_f64());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([lectures.to_string(), jobs.to_string()])
        .env(CHILD, data.path())
        .status()
        .unwrap();
    assert!(status.success(), "the export child failed: {status}");
}

fn config_for(data: &Path) -> Config {
    let env = vec![("CONFCTL_DATA_DIR".to_owned(), data.display().to_string())];
    config::load(&Sources { env, ..Sources::default() }).unwrap()
}

/// One host, rooms of [`PER_ROOM`] ended lectures each, and per lecture the synthetic two-hour lecture's
/// transcript, chat and summary, written straight into the tables in one transaction.
async fn generate(data: &Path, lectures: usize) {
    let config = config_for(data);
    let store = confctl::server::open_store(&config, true).await.unwrap();
    store.close().await;
    sqlx::any::install_default_drivers();
    let url = config.effective_database_url();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url.expose()).await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let t0 = 1_772_704_800_000i64; // 2026-03-05 10:00 UTC
    sqlx::query(
        "INSERT INTO users (id, email, email_lower, display_name, password_hash, role, created_at, updated_at) \
         VALUES ('host', 'anna@uni.edu', 'anna@uni.edu', 'Анна Смирнова', '!', 'HOST', $1, $1)",
    )
    .bind(t0)
    .execute(&mut *tx)
    .await
    .unwrap();
    for i in 0..lectures {
        let room = format!("room{}", i / PER_ROOM);
        if i % PER_ROOM == 0 {
            sqlx::query(
                "INSERT INTO rooms (id, name, invite_code, host_id, created_at) VALUES ($1, $2, $3, 'host', $4)",
            )
            .bind(&room)
            .bind(format!("Биология {}", 100 + i / PER_ROOM))
            .bind(format!("invite{i}"))
            .bind(t0)
            .execute(&mut *tx)
            .await
            .unwrap();
            // Every room has one lecture that has not ended: its next session.
            sqlx::query(
                "INSERT INTO lectures (id, room_id, number, status, created_at) VALUES ($1, $2, $3, 'OPEN', $4)",
            )
            .bind(format!("{room}-next"))
            .bind(&room)
            .bind((PER_ROOM + 1) as i64)
            .bind(t0)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        let doc = synthetic::lecture(120, 1_200, 300, i as u64 + 1);
        let start = t0 + i as i64 * 86_400_000;
        lectures::insert(&mut tx, &room, &format!("lecture{i}"), (i % PER_ROOM + 1) as i64, start, &doc).await;
    }
    tx.commit().await.unwrap();
}

/// The timed half, in the child: what `confctl export --all --format pdf,json,vtt --out DIR` does.
async fn export(data: &Path, jobs: usize) {
    let config = config_for(data);
    let store = confctl::server::open_store(&config, false).await.unwrap();
    let app = App::new(config, store).unwrap();
    let out = data.join("export");
    let items = vec![Item::Format(Format::Pdf), Item::Format(Format::Json), Item::Format(Format::Vtt)];
    // The PDFs are typeset by worker processes of the release binary, as `confctl export` does with itself.
    let workers = Arc::new(RenderWorkers::new(common::binary(), vec!["render-worker".into()], jobs));
    let options = Options {
        target: Target::Folder(out.clone()),
        items,
        jobs,
        force: false,
        dry_run: false,
        workers: workers.clone(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let cpu_before = common::own_and_children_cpu();
    let planned = batch::plan(&app, &Selection { all: true, ..Selection::default() }, &options.target).await.unwrap();
    let lectures = planned.len();
    let report = batch::run(&app, planned, &options, &Quiet).await;
    let took = started.elapsed();
    // `run` shuts the workers down and waits for them, so their CPU is counted as this process's children's.
    let cpu_after = common::own_and_children_cpu();
    assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
    assert_eq!(report.exported.len(), lectures);
    let again = Instant::now();
    let planned = batch::plan(&app, &Selection { all: true, ..Selection::default() }, &options.target).await.unwrap();
    let rerun = batch::run(&app, planned, &options, &Quiet).await;
    let rerun_took = again.elapsed();
    println!(
        "exported {lectures} lectures (PDF + JSON + VTT), {} MB, with {jobs} jobs on {cores} core(s): {:.1} s \
         ({:.0} ms a lecture); target ≤ 120 s for 1,000 — {}",
        report.bytes / 1_000_000,
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / lectures.max(1) as f64,
        if took <= Duration::from_secs(120) * lectures as u32 / 1000 { "within" } else { "OVER" },
    );
    let per_lecture = |d: Duration| d.as_secs_f64() * 1000.0 / lectures.max(1) as f64;
    println!(
        "CPU a lecture: {:.1} ms in the export process, {:.1} ms in the render workers",
        per_lecture(cpu_after.0 - cpu_before.0),
        per_lecture(cpu_after.1 - cpu_before.1),
    );
    println!("second run (nothing changed): {} skipped in {:.1} s", rerun.skipped.len(), rerun_took.as_secs_f64());
    println!(
        "peak RSS of the export process: {}; of each of its {jobs} render workers: {} kB at most",
        status_field("VmHWM"),
        workers.peak_rss_kb().map_or("unknown".to_owned(), |kb| kb.to_string())
    );
}

/// A field of `/proc/self/status` (Linux), e.g. `VmHWM`, the peak resident set.
fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "unknown".into())
}
