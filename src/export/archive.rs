//! `lecture.zip`: every other format plus the shared files under `files/`, streamed into any seekable writer.

use std::collections::HashSet;
use std::io::{Read, Seek, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use super::Format;
use super::doc::{LectureDoc, SharedFile};
use crate::error::{Error, Result};

/// Above this declared size a file gets a ZIP64 entry; below 4 GiB with room for deflate's worst case.
const LARGE_FILE: u64 = 4_000_000_000;
/// Longest file name kept under `files/`, in characters (common file systems allow 255 bytes).
const MAX_NAME_CHARS: usize = 120;

/// Writes the archive to `out` and returns it. `open` supplies the content of one shared file; it is called
/// for each of `doc.files` in turn, just before that file is copied, so only one is open at a time and none
/// is held in memory. Attendance is included only when the document carries it.
pub fn write<W, R, F>(doc: &LectureDoc, mut open: F, out: W) -> Result<W>
where
    W: Write + Seek,
    R: Read,
    F: FnMut(&SharedFile) -> Result<R>,
{
    let failed = |err: zip::result::ZipError| Error::internal(format!("writing the lecture ZIP: {err}"));
    let copy_failed = |err: std::io::Error| Error::internal(format!("writing the lecture ZIP: {err}"));
    let mut zip = ZipWriter::new(out);
    for format in Format::ALL {
        if format == Format::Zip || (format == Format::AttendanceCsv && doc.attendance.is_none()) {
            continue;
        }
        let bytes = super::render(doc, format)?;
        zip.start_file(format.file_name(), options(&doc.generated_at, compressed(format.content_type())))
            .map_err(failed)?;
        zip.write_all(&bytes).map_err(copy_failed)?;
    }
    let mut taken = HashSet::new();
    for file in &doc.files {
        let name = format!("files/{}", unique_name(&file.name, &mut taken));
        let mut reader = open(file)?;
        let options = options(&file.shared_at, compressed(&file.content_type)).large_file(file.size >= LARGE_FILE);
        zip.start_file(name, options).map_err(failed)?;
        std::io::copy(&mut reader, &mut zip).map_err(copy_failed)?;
    }
    zip.finish().map_err(failed)
}

fn options(at: &DateTime<Utc>, compressed: bool) -> SimpleFileOptions {
    let method = if compressed { CompressionMethod::Stored } else { CompressionMethod::Deflated };
    let options = SimpleFileOptions::default().compression_method(method).unix_permissions(0o644);
    // ZIP stores local time from 1980 to 2107 in two-second steps; outside that range the entry keeps the
    // format's default time.
    let time = u16::try_from(at.year()).ok().and_then(|year| {
        let [month, day, hour, minute, second] =
            [at.month(), at.day(), at.hour(), at.minute(), at.second()].map(|v| v as u8);
        zip::DateTime::from_date_and_time(year, month, day, hour, minute, second).ok()
    });
    match time {
        Some(time) => options.last_modified_time(time),
        None => options,
    }
}

/// Content already compressed gains nothing from deflate but costs its CPU time: it is stored as it is.
fn compressed(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/').unwrap_or((&essence, ""));
    matches!(kind, "image" | "audio" | "video") && sub != "svg+xml" && sub != "bmp"
        || matches!(
            sub,
            "pdf" | "zip" | "gzip" | "x-gzip" | "x-7z-compressed" | "x-rar-compressed" | "vnd.rar" | "x-xz" | "zstd"
        )
        || sub.starts_with("vnd.openxmlformats-officedocument.")
        || sub.starts_with("vnd.oasis.opendocument.")
}

/// The uploader's file name made safe to extract anywhere and unique in the archive: no path separators,
/// no characters Windows refuses, no control characters, no `.`/`..`, not too long; a repeated name
/// (compared case-insensitively, as macOS and Windows do) gets ` (2)`, ` (3)`… before its extension.
pub(crate) fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let cleaned: String =
        name.chars()
            .map(|c| {
                if c.is_control() || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
    // Windows drops trailing dots and spaces; a name of only dots means a directory.
    let cleaned = cleaned.trim().trim_end_matches('.').trim_end();
    let cleaned = if cleaned.trim_matches('.').is_empty() { "file" } else { cleaned };
    let (stem, extension) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 16 => (stem, format!(".{ext}")),
        _ => (cleaned, String::new()),
    };
    let stem: String = stem.chars().take(MAX_NAME_CHARS).collect();
    let mut candidate = format!("{stem}{extension}");
    let mut n = 1;
    while !taken.insert(candidate.to_lowercase()) {
        n += 1;
        candidate = format!("{stem} ({n}){extension}");
    }
    candidate
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::super::tests::sample;
    use super::*;

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut taken = HashSet::new();
        let names: Vec<String> = [
            "slides.pdf",
            "Slides.PDF",
            "../../etc/passwd",
            "..",
            "a\\b:c*?.txt",
            "notes. ",
            "tab\there\n.md",
            "slides.pdf",
            ".bashrc",
        ]
        .iter()
        .map(|n| unique_name(n, &mut taken))
        .collect();
        assert_eq!(
            names,
            [
                "slides.pdf",
                "Slides (2).PDF",
                ".._.._etc_passwd",
                "file",
                "a_b_c__.txt",
                "notes",
                "tab_here_.md",
                "slides (3).pdf",
                ".bashrc"
            ]
        );
        let long = format!("{}.txt", "я".repeat(300));
        assert_eq!(unique_name(&long, &mut taken).chars().count(), MAX_NAME_CHARS + 4);
    }

    #[test]
    fn stored_or_deflated() {
        assert!(compressed("application/pdf"));
        assert!(compressed("image/png"));
        assert!(compressed("Video/MP4; codecs=avc1"));
        assert!(compressed("application/vnd.openxmlformats-officedocument.presentationml.presentation"));
        assert!(!compressed("image/svg+xml"));
        assert!(!compressed("text/plain; charset=utf-8"));
        assert!(!compressed("application/octet-stream"));
    }

    #[test]
    fn the_archive_holds_every_format_and_the_files() {
        let mut doc = sample();
        doc.files[1].name = doc.files[0].name.clone();
        let mut opened = Vec::new();
        let out = write(
            &doc,
            |file| {
                opened.push(file.id.clone());
                Ok(Cursor::new(format!("content of {}", file.id).into_bytes()))
            },
            Cursor::new(Vec::new()),
        )
        .unwrap();
        assert_eq!(opened, ["f1", "f2"]);
        let mut archive = zip::ZipArchive::new(out).unwrap();
        let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(
            names,
            [
                "lecture.pdf",
                "lecture.md",
                "lecture.json",
                "captions.vtt",
                "captions.srt",
                "transcript.txt",
                "attendance.csv",
                "files/slides _ v2.pdf",
                "files/slides _ v2 (2).pdf",
            ]
        );
        let mut read = |name: &str| {
            let mut text = String::new();
            archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
            text
        };
        assert_eq!(read("files/slides _ v2 (2).pdf"), "content of f2");
        assert_eq!(read("captions.srt"), String::from_utf8(super::super::render(&doc, Format::Srt).unwrap()).unwrap());
        let json: LectureDoc = serde_json::from_str(&read("lecture.json")).unwrap();
        assert_eq!(json, doc);
        let mut pdf = Vec::new();
        archive.by_name("lecture.pdf").unwrap().read_to_end(&mut pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(archive.by_name("lecture.pdf").unwrap().compression(), CompressionMethod::Stored);
        assert_eq!(archive.by_name("lecture.md").unwrap().compression(), CompressionMethod::Deflated);
        let modified = archive.by_name("lecture.md").unwrap().last_modified().unwrap();
        assert_eq!((modified.year(), modified.month(), modified.day(), modified.hour()), (2026, 3, 5, 12));
    }

    #[test]
    fn without_attendance_there_is_no_attendance_file_and_a_failing_file_fails_the_archive() {
        let mut doc = sample();
        doc.attendance = None;
        let out = write(&doc, |_| Ok(std::io::empty()), Cursor::new(Vec::new())).unwrap();
        let archive = zip::ZipArchive::new(out).unwrap();
        assert!(archive.file_names().all(|n| n.unwrap() != "attendance.csv"));

        let err =
            write(&doc, |_| Err::<std::io::Empty, _>(Error::internal("storage is gone")), Cursor::new(Vec::new()));
        assert!(err.unwrap_err().to_string().contains("storage is gone"));
    }
}
