//! `confctl export`: ended lectures in bulk to a folder tree or a host's Google Drive (cron jobs, archives) —
//! parse, call `confctl::lectures::batch`, show progress, print the summary. Exit 0 when all went well, 1 when
//! some lectures failed (each listed with why) or the host's Drive cannot take them, 2 for bad arguments.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use confctl::gdrive::DriveError;
use confctl::lectures::batch::{self, Item, Options, Outcome, Progress, Selection, Target};
use confctl::lectures::workers::RenderWorkers;
use indicatif::{ProgressBar, ProgressStyle};

use super::{CmdResult, Failure, Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  One lecture, every format:
    confctl export --lecture 2L3nmKq0SuG1pXw8y0Zl1A --out ./lecture
  A semester of one host, PDF and captions:
    confctl export --host ada@uni.edu --since 2026-09-01 --until 2027-02-01 \\
      --format pdf,vtt --out ~/semester
  Everything since a date to a NAS mount, from cron (a JSON summary; exit 1 if any failed):
    confctl export --all --since 2026-09-01 --out /mnt/nas/lectures --json
  What would be written, without writing:
    confctl export --room Qd2m1kXbS0K8v7Yz3c9Q4A --out /srv/archive --dry-run
  A host's lectures of this term into their own Google Drive (connected on their account page):
    confctl export --host ada@uni.edu --since 2026-09-01 --to gdrive --as ada@uni.edu

Formats: pdf, md, json, vtt, srt, txt, attendance.csv, files (the shared files), or all.
Layout: OUT/<room>/<YYYY-MM-DD_HHMM>_<lecture-id>/ holds the formats, files/ and manifest.json.
Files are written under temporary names and renamed; a second run skips lectures that did not
change (--force rewrites). Only ended lectures are exported; a live one is skipped with a note.
To Drive: --as names the host whose connected Drive receives the files, and only that host's
lectures go (others are skipped with a note), into confctl/<room>/<date> Lecture <n>; each run
updates the files the last one made there.")]
pub struct Args {
    /// A lecture, by id (repeatable). Ids may begin with `-`.
    #[arg(long = "lecture", value_name = "ID", allow_hyphen_values = true)]
    lectures: Vec<String>,
    /// Every lecture of a room, by room id (repeatable).
    #[arg(long = "room", value_name = "ID", allow_hyphen_values = true)]
    rooms: Vec<String>,
    /// Every lecture of a host, by account e-mail (repeatable).
    #[arg(long = "host", value_name = "EMAIL")]
    hosts: Vec<String>,
    /// Lectures that started on or after this day (YYYY-MM-DD, UTC) or moment (RFC 3339).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Lectures that started before this day (YYYY-MM-DD, UTC) or moment (RFC 3339).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Every lecture (combine with --since/--until to bound it).
    #[arg(long)]
    all: bool,
    /// Comma-separated formats, or `all`.
    #[arg(long, default_value = "all", value_name = "LIST")]
    format: String,
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR", conflicts_with = "to")]
    out: Option<PathBuf>,
    /// Upload to a host's Google Drive instead of a folder (with --as).
    #[arg(long, value_enum, value_name = "DESTINATION", requires = "as_host")]
    to: Option<Destination>,
    /// With --to gdrive: the host account (e-mail) whose connected Drive receives its own lectures.
    #[arg(long = "as", value_name = "HOST_EMAIL", requires = "to")]
    as_host: Option<String>,
    /// Lectures typeset at once, each in its own worker process (one more is read ahead meanwhile), or with
    /// --to gdrive uploaded at once; more is faster (up to the number of cores) and loads the server more.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Rewrite lectures whose last export is still current.
    #[arg(long)]
    force: bool,
    /// List what would be written; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar; print one JSON summary (exported, skipped, failed with reasons) at the end.
    #[arg(long)]
    json: bool,
}

const WHERE: &str = "say where to write: --out DIR, or --to gdrive --as HOST_EMAIL";

/// Where `--to` sends lectures.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Destination {
    /// The connected Google Drive of the host named by --as.
    Gdrive,
}

/// A day (midnight UTC) or an RFC 3339 moment.
fn parse_date(flag: &str, text: &str) -> Result<DateTime<Utc>, Failure> {
    if let Ok(day) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Failure::usage(format!("{flag} `{text}`: give a day as YYYY-MM-DD or a moment in RFC 3339")))
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    let items = Item::parse_list(&args.format).map_err(|e| Failure::usage(format!("--format: {e}")))?;
    if args.out.is_none() && args.to.is_none() {
        return Err(Failure::usage(WHERE));
    }
    let selection = Selection {
        lectures: args.lectures,
        rooms: args.rooms,
        hosts: args.hosts,
        since: args.since.as_deref().map(|t| parse_date("--since", t)).transpose()?,
        until: args.until.as_deref().map(|t| parse_date("--until", t)).transpose()?,
        all: args.all,
    };
    selection.validate().map_err(|e| Failure::usage(e.to_string()))?;
    let app = super::admin::open(global).await?;
    let target = match (&args.out, &args.as_host) {
        (Some(out), _) => Ok(Target::Folder(out.clone())),
        (None, Some(email)) => drive_target(&app, email).await,
        (None, None) => Err(Failure::usage(WHERE)),
    };
    let target = match target {
        Ok(target) => target,
        Err(failure) => {
            app.store().close().await;
            return Err(failure);
        }
    };
    let planned = match batch::plan(&app, &selection, &target).await {
        Ok(planned) => planned,
        Err(err @ (confctl::Error::Invalid { .. } | confctl::Error::NotFound { .. })) => {
            app.store().close().await;
            return Err(Failure::usage(err.to_string()));
        }
        Err(err) => {
            app.store().close().await;
            return Err(err.into());
        }
    };
    let jobs = usize::from(args.jobs);
    let workers = match RenderWorkers::of_this_binary(jobs) {
        Ok(workers) => Arc::new(workers),
        Err(err) => {
            app.store().close().await;
            return Err(err.into());
        }
    };
    let options = Options { target, items, jobs, force: args.force, dry_run: args.dry_run, workers };
    let started = std::time::Instant::now();
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| Bar::new(planned.len()));
    let report = match &bar {
        Some(bar) => batch::run(&app, planned, &options, bar).await,
        None => batch::run(&app, planned, &options, &batch::Quiet).await,
    };
    if let Some(bar) = bar {
        bar.0.finish_and_clear();
    }
    app.store().close().await;
    if args.json {
        let summary = serde_json::json!({
            "exported": report.exported,
            "skipped": report.skipped,
            "failed": report.failed,
            "bytes": report.bytes,
            "dryRun": args.dry_run,
            "seconds": started.elapsed().as_secs_f64(),
        });
        print_json(&summary)?;
    } else {
        print_summary(&report, args.dry_run, started.elapsed());
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            message: format!("{} lecture(s) could not be exported (see above)", report.failed.len()),
            exit_code: 1,
        })
    }
}

fn print_summary(report: &batch::Report, dry_run: bool, took: std::time::Duration) {
    for outcome in &report.exported {
        match outcome {
            Outcome::WouldExport { dir, files, .. } => println!("would write {} ({})", dir.display(), files.join(", ")),
            Outcome::Uploaded { lecture_id, dir, files, .. } => {
                let updated = files.iter().filter(|f| f.updated).count();
                println!(
                    "uploaded {lecture_id} to Google Drive: {} ({} files, {updated} updated in place)",
                    dir.display(),
                    files.len()
                );
            }
            _ => {}
        }
    }
    for outcome in &report.skipped {
        if let Outcome::Skipped { lecture_id, reason, .. } = outcome {
            println!("skipped {lecture_id}: {reason}");
        }
    }
    for outcome in &report.failed {
        if let Outcome::Failed { lecture_id, reason, .. } = outcome {
            eprintln!("failed {lecture_id}: {reason}");
        }
    }
    let verb = if dry_run { "would export" } else { "exported" };
    println!(
        "{verb} {} lecture(s), {} skipped, {} failed; {} in {:.1} s",
        report.exported.len(),
        report.skipped.len(),
        report.failed.len(),
        indicatif::HumanBytes(report.bytes),
        took.as_secs_f64()
    );
}

/// The progress bar on a terminal: lectures done of all (with rate and time left), bytes written beside.
struct Bar(ProgressBar, std::sync::atomic::AtomicU64);

impl Bar {
    fn new(lectures: usize) -> Self {
        let bar = ProgressBar::new(lectures as u64);
        // `wide_bar` takes what the terminal has left, so the line never wraps on a narrow one.
        let style = ProgressStyle::with_template(
            "{spinner} {pos}/{len} lectures {wide_bar} {msg} · {rate} · ETA {eta} ({elapsed})",
        )
        .map(|style| {
            style.with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} lectures/s", state.per_sec());
            })
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("0 B");
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Self(bar, std::sync::atomic::AtomicU64::new(0))
    }
}

impl Progress for Bar {
    fn wrote(&self, bytes: u64) {
        let done = self.1.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed) + bytes;
        self.0.set_message(indicatif::HumanBytes(done).to_string());
    }
    fn finished(&self, outcome: &Outcome) {
        if let Outcome::Failed { lecture_id, reason, .. } = outcome {
            self.0.println(format!("failed {lecture_id}: {reason}"));
        }
        self.0.inc(1);
    }
}

/// `--to gdrive --as EMAIL`: the host's account, whose Drive must be offered here and connected. An unknown
/// account is a mistake on the command line (2); a Drive that cannot take files is the host's to fix (1).
async fn drive_target(app: &confctl::app::App, email: &str) -> Result<Target, Failure> {
    let user = app
        .store()
        .user_by_email(email)
        .await?
        .ok_or_else(|| Failure::usage(format!("--as {email}: there is no account with this e-mail")))?;
    match confctl::gdrive::check_connected(app, &user.id).await {
        Ok(()) => Ok(Target::Drive { user_id: user.id, email: email.to_owned() }),
        Err(DriveError::NotConfigured) => Err(Failure {
            message: "Google Drive is not configured on this instance: set [google] client_id and client_secret \
                      (see the operator guide)"
                .into(),
            exit_code: 1,
        }),
        Err(DriveError::NotConnected) => Err(Failure {
            message: format!(
                "{email} has not connected Google Drive: they connect it on their account page (Connect Google \
                 Drive), then run this again"
            ),
            exit_code: 1,
        }),
        Err(err) => Err(Failure { message: err.to_string(), exit_code: 1 }),
    }
}
