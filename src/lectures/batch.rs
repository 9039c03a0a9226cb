//! `confctl export`: many ended lectures at once into a folder tree or a host's Google Drive, for archives
//! and cron jobs — the same renderers and files (`parts`) as the lecture page's downloads and "Export to
//! Drive", read as the operator (attendance included, each read audited).
//!
//! Layout: `OUT/<room-slug>/<YYYY-MM-DD_HHMM>_<lecture-id>/` with the chosen formats (`lecture.pdf`,
//! `lecture.md`, `lecture.json`, `captions.vtt`, `captions.srt`, `transcript.txt`, `attendance.csv`), the
//! shared files under `files/`, and `manifest.json` (what was written, sizes, SHA-256, when, by which confctl,
//! and a fingerprint of the lecture's content). Every file is written under a temporary name and renamed, and
//! the manifest last, so an interrupted run never leaves a half file under a final name; a second run skips a
//! lecture whose fingerprint is unchanged.
//!
//! To Drive (`--to gdrive --as HOST`): only that host's lectures, into `confctl/<room>/<date> Lecture <n>` of
//! the host's connected Drive; every run updates the files an earlier one made there (Drive keeps no
//! manifest, so nothing is skipped as unchanged).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::open_as_operator;
use crate::app::App;
use crate::audit::Actor;
use crate::error::{Error, Result};
use crate::export::{Format, LectureDoc};
use crate::gdrive::{DriveError, ExportedFile};
use crate::ids::hex;
use crate::store::{LectureRecord, LectureStatus};

pub use super::parts::Item;
use super::parts::{self, Part, PartKind};
use super::workers::RenderWorkers;

/// Which lectures: the explicitly named ones, those of these rooms, those of these hosts, started within
/// `[since, until)`. Kinds combine with "and", values of one kind with "or"; `all` selects every lecture.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub lectures: Vec<String>,
    pub rooms: Vec<String>,
    /// Host accounts by e-mail.
    pub hosts: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub all: bool,
}

impl Selection {
    /// A selection names something, and its time window is not empty: checked before any database work.
    pub fn validate(&self) -> Result<()> {
        let names_nothing = self.lectures.is_empty()
            && self.rooms.is_empty()
            && self.hosts.is_empty()
            && self.since.is_none()
            && self.until.is_none()
            && !self.all;
        if names_nothing {
            return Err(Error::invalid(
                "nothing_selected",
                "say what to export: --lecture, --room, --host, --since/--until, or --all",
            ));
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since >= until {
                return Err(Error::invalid("empty_window", "--since must be before --until"));
            }
        }
        Ok(())
    }
}

/// Where a run writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A folder tree (created if missing).
    Folder(PathBuf),
    /// The connected Google Drive of one host account, which receives that host's lectures only.
    Drive { user_id: String, email: String },
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub items: Vec<Item>,
    /// Lectures exported at once.
    pub jobs: usize,
    /// Rewrite lectures whose manifest says nothing changed.
    pub force: bool,
    /// Say what would be written, write nothing.
    pub dry_run: bool,
    /// Where a folder export's PDFs are typeset (as many workers as jobs); shut down when a run ends.
    pub workers: Arc<RenderWorkers>,
}

/// A lecture chosen for export, with where it goes.
#[derive(Debug, Clone)]
pub struct Planned {
    pub lecture: LectureRecord,
    pub room_name: String,
    /// The room's host (a Drive export takes only its own host's lectures).
    pub host_id: String,
    /// The lecture's folder: on disk, or its path in Drive (`confctl/<room>/<date> Lecture <n>`).
    pub dir: PathBuf,
}

/// What happened to one lecture (in the `--json` summary: `outcome` and camelCase fields, like the API).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "outcome")]
pub enum Outcome {
    Exported {
        lecture_id: String,
        dir: PathBuf,
        files: Vec<ManifestFile>,
        bytes: u64,
    },
    /// Uploaded to Drive: the folder and the files, with their Drive ids.
    Uploaded {
        lecture_id: String,
        dir: PathBuf,
        folder_id: String,
        files: Vec<ExportedFile>,
        bytes: u64,
    },
    /// `--dry-run`: what would be written.
    WouldExport {
        lecture_id: String,
        dir: PathBuf,
        files: Vec<String>,
    },
    Skipped {
        lecture_id: String,
        dir: PathBuf,
        reason: String,
    },
    Failed {
        lecture_id: String,
        dir: PathBuf,
        reason: String,
    },
}

impl Outcome {
    pub fn lecture_id(&self) -> &str {
        match self {
            Self::Exported { lecture_id, .. }
            | Self::Uploaded { lecture_id, .. }
            | Self::WouldExport { lecture_id, .. }
            | Self::Skipped { lecture_id, .. }
            | Self::Failed { lecture_id, .. } => lecture_id,
        }
    }
}

/// Everything a run did, for the `--json` summary.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub exported: Vec<Outcome>,
    pub skipped: Vec<Outcome>,
    pub failed: Vec<Outcome>,
    pub bytes: u64,
}

/// One written file in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// Relative to the lecture's folder (`lecture.pdf`, `files/slides.pdf`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `manifest.json` of a lecture's folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub lecture_id: String,
    pub room_id: String,
    pub room_name: String,
    pub number: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exported_at: DateTime<Utc>,
    /// `confctl x.y.z`.
    pub generator: String,
    /// SHA-256 of the lecture's content and the chosen formats: unchanged means nothing to redo.
    pub fingerprint: String,
    pub files: Vec<ManifestFile>,
}

/// What a run reports as it goes (a progress bar, or nothing).
pub trait Progress: Send + Sync {
    fn planned(&self, _lectures: usize) {}
    fn wrote(&self, _bytes: u64) {}
    fn finished(&self, _outcome: &Outcome) {}
}

/// No progress shown.
#[derive(Debug)]
pub struct Quiet;
impl Progress for Quiet {}

/// The lectures the selection names, oldest first, with their folders. Names that match nothing (an unknown
/// lecture, room or host) are errors: a cron job with a typo must not succeed silently.
pub async fn plan(app: &App, selection: &Selection, target: &Target) -> Result<Vec<Planned>> {
    selection.validate()?;
    let store = app.store();
    for id in &selection.lectures {
        store.lecture_by_id(id).await.map_err(|_| Error::not_found("lecture_not_found", format!("no lecture {id}")))?;
    }
    for id in &selection.rooms {
        store.room_by_id(id).await.map_err(|_| Error::not_found("room_not_found", format!("no room {id}")))?;
    }
    let mut host_ids = HashSet::new();
    for email in &selection.hosts {
        let user = store
            .user_by_email(email)
            .await?
            .ok_or_else(|| Error::not_found("user_not_found", format!("no account {email}")))?;
        host_ids.insert(user.id);
    }
    let since = selection.since.map(|t| t.timestamp_millis());
    let until = selection.until.map(|t| t.timestamp_millis());
    let mut rooms: HashMap<String, (String, String)> = HashMap::new();
    let mut planned = Vec::new();
    for lecture in store.lectures_started_between(since, until).await? {
        if !selection.lectures.is_empty() && !selection.lectures.contains(&lecture.id) {
            continue;
        }
        if !selection.rooms.is_empty() && !selection.rooms.contains(&lecture.room_id) {
            continue;
        }
        let (room_name, host_id) = match rooms.get(&lecture.room_id) {
            Some(found) => found.clone(),
            None => {
                let room = store.room_by_id(&lecture.room_id).await?;
                rooms.insert(lecture.room_id.clone(), (room.name.clone(), room.host_id.clone()));
                (room.name, room.host_id)
            }
        };
        if !host_ids.is_empty() && !host_ids.contains(&host_id) {
            continue;
        }
        let started = lecture.started_at.map(crate::time::to_datetime);
        let dir = match target {
            Target::Folder(out) => out.join(super::downloads::slug(&room_name)).join(format!(
                "{}_{}",
                started.unwrap_or_default().format("%Y-%m-%d_%H%M"),
                lecture.id
            )),
            Target::Drive { .. } => {
                let ended = lecture.ended_at.map(crate::time::to_datetime);
                let label = super::drive::folder_label(started, ended, lecture.number);
                PathBuf::from(super::drive::folder_path(&room_name, &label))
            }
        };
        planned.push(Planned { lecture, room_name, host_id, dir });
    }
    Ok(planned)
}

/// Exports the planned lectures; one lecture's failure does not stop the others. To a folder, `options.jobs`
/// PDFs are typeset at once and one lecture more is in hand: it is read from the database, and its other formats written,
/// while the workers typeset, so a worker that finishes finds its next lecture ready instead of waiting for a
/// read and a few file syncs. To Drive, `jobs` is the number of lectures uploading at once.
pub async fn run(app: &App, planned: Vec<Planned>, options: &Options, progress: &dyn Progress) -> Report {
    progress.planned(planned.len());
    let in_flight = match options.target {
        Target::Folder(_) => options.jobs.max(1) + 1,
        Target::Drive { .. } => options.jobs.max(1),
    };
    let actor = Actor { label: format!("{}:export", Actor::cli().label), ..Actor::cli() };
    let outcomes: Vec<Outcome> = futures::stream::iter(planned)
        .map(|p| {
            let actor = actor.clone();
            async move {
                let outcome = export_one(app, p, options, actor, progress).await;
                progress.finished(&outcome);
                outcome
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    options.workers.shut_down().await;
    let mut report = Report::default();
    for outcome in outcomes {
        match &outcome {
            Outcome::Exported { bytes, .. } | Outcome::Uploaded { bytes, .. } => {
                report.bytes += bytes;
                report.exported.push(outcome);
            }
            Outcome::WouldExport { .. } => report.exported.push(outcome),
            Outcome::Skipped { .. } => report.skipped.push(outcome),
            Outcome::Failed { .. } => report.failed.push(outcome),
        }
    }
    report
}

async fn export_one(app: &App, p: Planned, options: &Options, actor: Actor, progress: &dyn Progress) -> Outcome {
    let (lecture_id, dir) = (p.lecture.id.clone(), p.dir.clone());
    let skipped =
        |reason: &str| Outcome::Skipped { lecture_id: lecture_id.clone(), dir: dir.clone(), reason: reason.to_owned() };
    match p.lecture.status {
        LectureStatus::Ended => {}
        LectureStatus::Live => return skipped("the lecture is still live; export it once it has ended"),
        LectureStatus::Open => return skipped("the lecture has not taken place"),
    }
    if let Target::Drive { user_id, email } = &options.target {
        if p.host_id != *user_id {
            return skipped(&format!("not a lecture of {email}: --as {email} exports only that host's lectures"));
        }
        return match upload_lecture(app, &p, options, user_id, actor, progress).await {
            Ok(outcome) => outcome,
            Err(err) => Outcome::Failed { lecture_id, dir, reason: err.to_string() },
        };
    }
    match write_lecture(app, &p, options, actor, progress).await {
        Ok(Written::Done { files, bytes }) => Outcome::Exported { lecture_id, dir, files, bytes },
        Ok(Written::Unchanged) => skipped("unchanged since the last export (--force rewrites it)"),
        Ok(Written::DryRun(files)) => Outcome::WouldExport { lecture_id, dir, files },
        Err(err) => Outcome::Failed { lecture_id, dir, reason: err.to_string() },
    }
}

enum Written {
    Done { files: Vec<ManifestFile>, bytes: u64 },
    Unchanged,
    DryRun(Vec<String>),
}

const MANIFEST: &str = "manifest.json";

/// One lecture to the host's Drive (or, with `--dry-run`, what would go there).
async fn upload_lecture(
    app: &App,
    p: &Planned,
    options: &Options,
    user_id: &str,
    actor: Actor,
    progress: &dyn Progress,
) -> std::result::Result<Outcome, DriveError> {
    let opened = open_as_operator(app, &p.lecture.id, actor).await?;
    let doc = super::document::document(app, &opened).await?;
    let parts = parts::parts(&doc, &options.items);
    let (lecture_id, dir) = (p.lecture.id.clone(), p.dir.clone());
    if options.dry_run {
        return Ok(Outcome::WouldExport { lecture_id, dir, files: parts.into_iter().map(|p| p.name).collect() });
    }
    let exported = super::drive::upload(app, user_id, &doc, &parts).await?;
    let bytes = exported.files.iter().map(|f| f.size).sum();
    progress.wrote(bytes);
    opened.audit_read(app, "export:gdrive").await;
    Ok(Outcome::Uploaded { lecture_id, dir, folder_id: exported.folder_id, files: exported.files, bytes })
}

async fn write_lecture(
    app: &App,
    p: &Planned,
    options: &Options,
    actor: Actor,
    progress: &dyn Progress,
) -> Result<Written> {
    let opened = open_as_operator(app, &p.lecture.id, actor).await?;
    let doc = super::document::document(app, &opened).await?;
    let fingerprint = fingerprint(&doc, &options.items)?;
    let previous = read_manifest(&p.dir).await;
    if !options.force && previous.as_ref().is_some_and(|m| m.fingerprint == fingerprint && all_present(&p.dir, m)) {
        return Ok(Written::Unchanged);
    }
    let parts = parts::parts(&doc, &options.items);
    if options.dry_run {
        let mut names: Vec<String> = parts.into_iter().map(|p| p.name).collect();
        names.push(MANIFEST.to_owned());
        return Ok(Written::DryRun(names));
    }
    let io = |what: &str, path: &Path, e: std::io::Error| Error::internal(format!("{what} {}: {e}", path.display()));
    tokio::fs::create_dir_all(&p.dir).await.map_err(|e| io("cannot create", &p.dir, e))?;
    remove_partials(&p.dir).await;
    let mut files = Vec::new();
    for part in &parts {
        let written = match &part.kind {
            PartKind::Rendered(format) => {
                // The PDF is the work (hundreds of milliseconds); the other formats take a millisecond or two,
                // less than handing the lecture to a worker.
                let bytes = match format {
                    Format::Pdf => options.workers.render(&doc, *format).await?,
                    _ => parts::render(&doc, *format).await?,
                };
                write_atomically(&p.dir, &part.name, bytes).await?
            }
            PartKind::Shared { file_id, .. } => write_shared_file(app, file_id, &p.dir, part).await?,
        };
        progress.wrote(written.size);
        files.push(written);
    }
    let manifest = Manifest {
        schema_version: 1,
        lecture_id: doc.lecture.id.clone(),
        room_id: doc.lecture.room_id.clone(),
        room_name: doc.lecture.room_name.clone(),
        number: doc.lecture.number,
        started_at: doc.lecture.started_at,
        ended_at: doc.lecture.ended_at,
        exported_at: doc.generated_at,
        generator: LectureDoc::generator(),
        fingerprint,
        files: files.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(format!("manifest: {e}")))?;
    write_atomically(&p.dir, MANIFEST, json).await?;
    opened.audit_read(app, "export:folder").await;
    let bytes = files.iter().map(|f| f.size).sum();
    Ok(Written::Done { files, bytes })
}

/// SHA-256 over the lecture's content (its document without the generation time) and the chosen items.
fn fingerprint(doc: &LectureDoc, items: &[Item]) -> Result<String> {
    let mut stable = doc.clone();
    stable.generated_at = DateTime::<Utc>::UNIX_EPOCH;
    let json = serde_json::to_vec(&stable).map_err(|e| Error::internal(format!("fingerprint: {e}")))?;
    let mut hash = Sha256::new();
    hash.update(&json);
    for item in items {
        hash.update(item.name().as_bytes());
        hash.update(b",");
    }
    Ok(hex(&hash.finalize()))
}

async fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = tokio::fs::read(dir.join(MANIFEST)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every file the manifest lists is there with its size (a file deleted or truncated since means redo).
fn all_present(dir: &Path, manifest: &Manifest) -> bool {
    manifest.files.iter().all(|f| std::fs::metadata(dir.join(&f.path)).is_ok_and(|m| m.len() == f.size))
}

/// Temporary files of an interrupted run: `.NAME.partial-XXXX`.
const PARTIAL: &str = ".partial-";

async fn remove_partials(dir: &Path) {
    for sub in [dir.to_path_buf(), dir.join("files")] {
        let Ok(mut entries) = tokio::fs::read_dir(&sub).await else { continue };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if entry.file_name().to_string_lossy().contains(PARTIAL) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
}

fn partial_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{PARTIAL}{}", crate::ids::random_chars(b"abcdefghijklmnopqrstuvwxyz0123456789", 8)))
}

/// Writes `bytes` under a temporary name, flushes it to disk, then renames it to `name`; hashed on the way.
/// One blocking task does it all: a bulk export writes a few files a lecture, and a hop to the blocking
/// pool for each step (create, write, sync, rename) is a thread woken and put to sleep again each time.
async fn write_atomically(dir: &Path, name: &str, bytes: Vec<u8>) -> Result<ManifestFile> {
    let (temp, target, name) = (partial_path(dir, name), dir.join(name), name.to_owned());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let failed = |e: std::io::Error| Error::internal(format!("writing {}: {e}", target.display()));
        let mut file = std::fs::File::create(&temp).map_err(failed)?;
        file.write_all(&bytes).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        drop(file);
        std::fs::rename(&temp, &target).map_err(failed)?;
        Ok(ManifestFile { path: name, size: bytes.len() as u64, sha256: hex(&Sha256::digest(&bytes)) })
    })
    .await
    .map_err(|e| Error::internal(format!("the writing task failed: {e}")))?
}

/// A shared file under `files/`, streamed from storage to a temporary name, hashed, then renamed.
async fn write_shared_file(app: &App, file_id: &str, dir: &Path, part: &Part) -> Result<ManifestFile> {
    let target = dir.join(&part.name);
    let parent = target.parent().unwrap_or(dir);
    let failed = |e: std::io::Error| Error::internal(format!("writing {}: {e}", target.display()));
    tokio::fs::create_dir_all(parent).await.map_err(failed)?;
    let file_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = partial_path(parent, &file_name);
    let size = parts::fetch_shared(app, file_id, &temp).await?;
    let sha256 = hash_file(&temp).await?;
    tokio::fs::rename(&temp, &target).await.map_err(failed)?;
    Ok(ManifestFile { path: part.name.clone(), size, sha256 })
}

async fn hash_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file =
            std::fs::File::open(&path).map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
        let mut hash = Sha256::new();
        std::io::copy(&mut file, &mut hash).map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
        file.sync_all().ok();
        Ok(hex(&hash.finalize()))
    })
    .await
    .map_err(|e| Error::internal(format!("the hashing task failed: {e}")))?
}
