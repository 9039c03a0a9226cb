//! `confctl export`: many ended lectures at once into a folder tree, for archives and cron jobs — the same
//! renderers as the lecture page's downloads, read as the operator (attendance included, each read audited).
//!
//! Layout: `OUT/<room-slug>/<YYYY-MM-DD_HHMM>_<lecture-id>/` with the chosen formats (`lecture.pdf`,
//! `lecture.md`, `lecture.json`, `captions.vtt`, `captions.srt`, `transcript.txt`, `attendance.csv`), the
//! shared files under `files/`, and `manifest.json` (what was written, sizes, SHA-256, when, by which confctl,
//! and a fingerprint of the lecture's content). Every file is written under a temporary name and renamed, and
//! the manifest last, so an interrupted run never leaves a half file under a final name; a second run skips a
//! lecture whose fingerprint is unchanged.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::open_as_operator;
use crate::app::App;
use crate::audit::Actor;
use crate::error::{Error, Result};
use crate::export::{self, Format, LectureDoc};
use crate::store::{LectureRecord, LectureStatus};

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

/// One thing to write per lecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    Format(Format),
    /// The shared files, under `files/`.
    Files,
}

impl Item {
    /// Every item `--format all` stands for (the ZIP is not one: the folder holds the same).
    pub const ALL: [Item; 8] = [
        Item::Format(Format::Pdf),
        Item::Format(Format::Markdown),
        Item::Format(Format::Json),
        Item::Format(Format::Vtt),
        Item::Format(Format::Srt),
        Item::Format(Format::Text),
        Item::Format(Format::AttendanceCsv),
        Item::Files,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Format(f) => f.as_str(),
            Self::Files => "files",
        }
    }

    /// `pdf,md,json,…` or `all` (comma-separated; repeated names count once).
    pub fn parse_list(text: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let items: Vec<Item> = if name.eq_ignore_ascii_case("all") {
                Self::ALL.to_vec()
            } else if name.eq_ignore_ascii_case("files") {
                vec![Item::Files]
            } else {
                match name.parse::<Format>() {
                    Ok(Format::Zip) | Err(_) => {
                        let allowed: Vec<&str> = Self::ALL.iter().map(|i| i.name()).collect();
                        return Err(Error::invalid(
                            "unknown_format",
                            format!("unknown format `{name}`; allowed: {}, or all", allowed.join(", ")),
                        ));
                    }
                    Ok(f) => vec![Item::Format(f)],
                }
            };
            for item in items {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
        }
        if out.is_empty() {
            return Err(Error::invalid("unknown_format", "name at least one format, or all"));
        }
        Ok(out)
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub items: Vec<Item>,
    /// Lectures exported at once.
    pub jobs: usize,
    /// Rewrite lectures whose manifest says nothing changed.
    pub force: bool,
    /// Say what would be written, write nothing.
    pub dry_run: bool,
}

/// A lecture chosen for export, with where it goes.
#[derive(Debug, Clone)]
pub struct Planned {
    pub lecture: LectureRecord,
    pub room_name: String,
    pub dir: PathBuf,
}

/// What happened to one lecture.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "outcome")]
pub enum Outcome {
    Exported {
        lecture_id: String,
        dir: PathBuf,
        files: Vec<ManifestFile>,
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
pub async fn plan(app: &App, selection: &Selection, out: &Path) -> Result<Vec<Planned>> {
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
        let started = lecture.started_at.map(crate::time::to_datetime).unwrap_or_default();
        let dir = out.join(super::downloads::slug(&room_name)).join(format!(
            "{}_{}",
            started.format("%Y-%m-%d_%H%M"),
            lecture.id
        ));
        planned.push(Planned { lecture, room_name, dir });
    }
    Ok(planned)
}

/// Exports the planned lectures, `options.jobs` at a time; one lecture's failure does not stop the others.
pub async fn run(app: &App, planned: Vec<Planned>, options: &Options, progress: &dyn Progress) -> Report {
    progress.planned(planned.len());
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
        .buffer_unordered(options.jobs.max(1))
        .collect()
        .await;
    let mut report = Report::default();
    for outcome in outcomes {
        match &outcome {
            Outcome::Exported { bytes, .. } => {
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
    let names = planned_names(&doc, &options.items);
    if options.dry_run {
        return Ok(Written::DryRun(names));
    }
    let io = |what: &str, path: &Path, e: std::io::Error| Error::internal(format!("{what} {}: {e}", path.display()));
    tokio::fs::create_dir_all(&p.dir).await.map_err(|e| io("cannot create", &p.dir, e))?;
    remove_partials(&p.dir).await;
    let mut files = Vec::new();
    for item in &options.items {
        match item {
            Item::Format(Format::AttendanceCsv) if doc.attendance.is_none() => {}
            Item::Format(format) => {
                let (doc, format) = (doc.clone(), *format);
                let bytes = tokio::task::spawn_blocking(move || export::render(&doc, format))
                    .await
                    .map_err(|e| Error::internal(format!("the render task failed: {e}")))??;
                let written = write_atomically(&p.dir, format.file_name(), &bytes).await?;
                progress.wrote(written.size);
                files.push(written);
            }
            Item::Files => {
                for written in write_shared_files(app, &doc, &p.dir).await? {
                    progress.wrote(written.size);
                    files.push(written);
                }
            }
        }
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
    write_atomically(&p.dir, MANIFEST, &json).await?;
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn planned_names(doc: &LectureDoc, items: &[Item]) -> Vec<String> {
    let mut names = Vec::new();
    let mut taken = HashSet::new();
    for item in items {
        match item {
            Item::Format(Format::AttendanceCsv) if doc.attendance.is_none() => {}
            Item::Format(f) => names.push(f.file_name().to_owned()),
            Item::Files => {
                for f in &doc.files {
                    names.push(format!("files/{}", export::archive::unique_name(&f.name, &mut taken)));
                }
            }
        }
    }
    names.push(MANIFEST.to_owned());
    names
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

/// Writes `bytes` under a temporary name, flushes it to disk, then renames it to `name`.
async fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<ManifestFile> {
    use tokio::io::AsyncWriteExt;
    let temp = partial_path(dir, name);
    let failed = |e: std::io::Error| Error::internal(format!("writing {}: {e}", dir.join(name).display()));
    let mut file = tokio::fs::File::create(&temp).await.map_err(failed)?;
    file.write_all(bytes).await.map_err(failed)?;
    file.sync_all().await.map_err(failed)?;
    drop(file);
    tokio::fs::rename(&temp, dir.join(name)).await.map_err(failed)?;
    Ok(ManifestFile { path: name.to_owned(), size: bytes.len() as u64, sha256: hex(&Sha256::digest(bytes)) })
}

/// The shared files under `files/`, each streamed from storage to a temporary name, hashed, then renamed.
async fn write_shared_files(app: &App, doc: &LectureDoc, dir: &Path) -> Result<Vec<ManifestFile>> {
    let files_dir = dir.join("files");
    if !doc.files.is_empty() {
        tokio::fs::create_dir_all(&files_dir)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", files_dir.display())))?;
    }
    let mut taken = HashSet::new();
    let mut out = Vec::new();
    for f in &doc.files {
        let name = export::archive::unique_name(&f.name, &mut taken);
        let record = app.store().file_by_id(&f.id).await?;
        let temp = partial_path(&files_dir, &name);
        let size = app.storage().download_to(&record.object_key, &temp).await?;
        let sha256 = hash_file(&temp).await?;
        tokio::fs::rename(&temp, files_dir.join(&name))
            .await
            .map_err(|e| Error::internal(format!("writing {}: {e}", files_dir.join(&name).display())))?;
        out.push(ManifestFile { path: format!("files/{name}"), size, sha256 });
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_lists_parse_with_all_and_files() {
        assert_eq!(
            Item::parse_list("pdf, json,vtt").unwrap(),
            [Item::Format(Format::Pdf), Item::Format(Format::Json), Item::Format(Format::Vtt)]
        );
        assert_eq!(Item::parse_list("all").unwrap().len(), 8);
        assert_eq!(Item::parse_list("files,pdf,files").unwrap(), [Item::Files, Item::Format(Format::Pdf)]);
        let err = Item::parse_list("pdf,docx").unwrap_err().to_string();
        assert!(err.contains("`docx`") && err.contains("attendance.csv, files, or all"), "{err}");
        assert!(Item::parse_list("zip").is_err(), "a folder holds what the ZIP would");
        assert!(Item::parse_list(" , ").is_err());
    }
}
