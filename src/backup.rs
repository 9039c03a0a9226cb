//! Backup and restore of an installation: a consistent snapshot of the SQLite database (taken while
//! `confctl serve` runs), the local file store and the certificate cache, in one `.tar.gz` with a manifest
//! of versions and checksums. PostgreSQL databases are backed up with `pg_dump`; confctl says so.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, StorageBackend};
use crate::store::{Dialect, Store};

/// Archive format version this confctl writes and reads.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "confctl.db";

/// What an archive contains.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub confctl_version: String,
    pub schema_version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `sqlite` (the database is in the archive) or `postgres` (it is not).
    pub database: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What a backup did, for the operator.
#[derive(Debug)]
pub struct BackupReport {
    pub manifest: Manifest,
    /// Advice that needs the operator's attention (PostgreSQL, S3).
    pub notes: Vec<String>,
}

fn sha256_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, crate::ids::hex(&hasher.finalize())))
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let kind = entry.file_type()?;
        // Half-written uploads (object_store's temporary files) are not part of a consistent state.
        if name.starts_with('.') || name.contains("#") {
            continue;
        }
        if kind.is_dir() {
            walk(&path, &format!("{prefix}{name}/"), out)?;
        } else if kind.is_file() {
            out.push((format!("{prefix}{name}"), path));
        }
    }
    Ok(())
}

fn local_files_dir(config: &Config) -> Option<PathBuf> {
    (config.files.backend == StorageBackend::Local)
        .then(|| config.files.local_dir.clone().unwrap_or_else(|| config.data_dir.join("files")))
}

/// The SQLite database file of a configuration, if it uses SQLite.
fn sqlite_path(config: &Config) -> Option<PathBuf> {
    let url = config.effective_database_url();
    let text = url.expose();
    (Dialect::of_url(text) == Some(Dialect::Sqlite)).then(|| {
        let path = text.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        PathBuf::from(path.split('?').next().unwrap_or(path))
    })
}

/// Writes a backup archive to `out` while the server may be running. `progress` hears each step.
pub async fn create(config: &Config, out: &Path, progress: &dyn Fn(&str)) -> anyhow::Result<BackupReport> {
    let store = Store::connect(&config.effective_database_url()).await?;
    let schema_version = store.schema_version().await?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new().prefix(".confctl-backup-").tempdir_in(parent)?;
    let mut items: Vec<(String, PathBuf)> = Vec::new();
    let mut notes = Vec::new();
    match store.dialect() {
        Dialect::Sqlite => {
            progress("snapshotting the SQLite database (VACUUM INTO)");
            let snapshot = staging.path().join(DATABASE);
            store.sqlite_snapshot(&snapshot).await?;
            items.push((DATABASE.to_owned(), snapshot));
        }
        Dialect::Postgres => notes.push(
            "the PostgreSQL database is not in this archive: back it up with `pg_dump -Fc` (and restore with pg_restore)".into(),
        ),
    }
    store.close().await;
    match local_files_dir(config) {
        Some(dir) => {
            progress("collecting shared files and transcripts");
            walk(&dir, "files/", &mut items)?;
        }
        None => notes.push(format!(
            "shared files live in S3 bucket {}: back the bucket up with the store's own tools (versioning or replication)",
            config.files.s3_bucket
        )),
    }
    walk(&config.data_dir.join("acme"), "acme/", &mut items)?;

    progress(&format!("checksumming {} item(s)", items.len()));
    let mut entries = Vec::with_capacity(items.len());
    for (name, path) in &items {
        let (size, sha256) = sha256_file(path)?;
        entries.push(Entry { path: name.clone(), size, sha256 });
    }
    let manifest = Manifest {
        format: FORMAT,
        confctl_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version,
        created_at: chrono::Utc::now(),
        database: store.dialect().name().to_owned(),
        entries,
    };
    progress("writing the archive");
    let partial = out.with_extension("partial");
    {
        let file = File::create(&partial)?;
        restrict(&partial)?;
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
        let manifest_json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest_json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, manifest_json.as_slice())?;
        for (name, path) in &items {
            tar.append_path_with_name(path, name)?;
        }
        tar.into_inner()?.finish()?.flush()?;
    }
    std::fs::rename(&partial, out)?;
    Ok(BackupReport { manifest, notes })
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Restores an archive into the configuration's (empty) data directory. Refuses a corrupt archive, an
/// archive from a newer schema, and a data directory that already holds an installation.
pub fn restore(config: &Config, archive: &Path, progress: &dyn Fn(&str)) -> anyhow::Result<Manifest> {
    let data_dir = &config.data_dir;
    let db_target = sqlite_path(config);
    let files_target = local_files_dir(config);
    if db_target.as_ref().is_some_and(|p| p.exists())
        || files_target.as_ref().is_some_and(|p| p.read_dir().is_ok_and(|mut d| d.next().is_some()))
    {
        anyhow::bail!("{} already holds an installation; restore into an empty data directory", data_dir.display());
    }
    std::fs::create_dir_all(data_dir)?;
    let staging = tempfile::Builder::new().prefix(".confctl-restore-").tempdir_in(data_dir)?;
    progress("reading and verifying the archive");
    let file = File::open(archive).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut manifest: Option<Manifest> = None;
    let mut extracted = Vec::new();
    let corrupt = |what: String| anyhow::anyhow!("{} is not a valid confctl backup: {what}", archive.display());
    for entry in tar.entries().map_err(|e| corrupt(e.to_string()))? {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let name = entry.path().map_err(|e| corrupt(e.to_string()))?.to_string_lossy().into_owned();
        if name.split('/').any(|part| part == ".." || part.is_empty()) || name.starts_with('/') {
            return Err(corrupt(format!("unsafe path {name}")));
        }
        if name == MANIFEST {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(|e| corrupt(e.to_string()))?;
            manifest = Some(serde_json::from_str(&text).map_err(|e| corrupt(format!("manifest: {e}")))?);
            continue;
        }
        let target = staging.path().join(&name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        entry.unpack(&target).map_err(|e| corrupt(e.to_string()))?;
        extracted.push(name);
    }
    let manifest = manifest.ok_or_else(|| corrupt("no manifest".into()))?;
    if manifest.format != FORMAT {
        anyhow::bail!("backup format {} is not supported by this confctl (format {FORMAT})", manifest.format);
    }
    let latest = crate::store::migrations::latest_version();
    if manifest.schema_version > latest {
        anyhow::bail!(
            "this backup comes from a newer confctl (schema {} > {latest}); restore it with that version or newer",
            manifest.schema_version
        );
    }
    for entry in &manifest.entries {
        let path = staging.path().join(&entry.path);
        let (size, sha256) = sha256_file(&path).map_err(|_| corrupt(format!("{} is missing", entry.path)))?;
        if size != entry.size || sha256 != entry.sha256 {
            return Err(corrupt(format!("checksum mismatch for {}", entry.path)));
        }
    }
    if extracted.len() != manifest.entries.len() {
        return Err(corrupt("entries not listed in the manifest".into()));
    }
    progress("moving the restored data into place");
    for entry in &manifest.entries {
        let from = staging.path().join(&entry.path);
        let to = if entry.path == DATABASE {
            match &db_target {
                Some(path) => path.clone(),
                None => anyhow::bail!("the backup holds a SQLite database but this configuration uses PostgreSQL"),
            }
        } else if let Some(rest) = entry.path.strip_prefix("files/") {
            match &files_target {
                Some(dir) => dir.join(rest),
                None => anyhow::bail!("the backup holds local files but this configuration stores files in S3"),
            }
        } else {
            data_dir.join(&entry.path)
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(|_| ()))?;
    }
    Ok(manifest)
}
