//! The PDF read back the way a reader's tools see it: text extracted by poppler's `pdftotext`, page 1 drawn
//! by `pdftoppm` into the screenshots folder for a person to look at.

use std::path::PathBuf;
use std::process::Command;

use confctl_doubles::services::Service;
use typst::World;

use super::world::{self, LectureWorld};
use super::*;
use crate::export::tests::sample;
use crate::export::{Format, synthetic};

/// Whether poppler's tools are here; without them a test returns at once, or fails where the services are
/// required (`scripts/test`).
fn poppler() -> bool {
    confctl_doubles::services::require(&[Service::Poppler])
}

/// The PDF's text as `pdftotext -layout` extracts it: in reading order line by line, a table's row on one
/// line, pages separated by form feeds.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lecture.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext").args(["-layout", "-enc", "UTF-8"]).arg(&path).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs of whitespace (line ends where the text wrapped) as one space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `$CARGO_TARGET_DIR/browser-screenshots` (relative to the repository when relative), else `target/…`.
fn screenshot_dir() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), |dir| repo.join(dir));
    target.join("browser-screenshots")
}

#[test]
fn the_pdf_prints_user_text_literally_in_every_script() {
    let mut doc = sample();
    doc.lecture.language = "en".into();
    let pdf = render(&doc).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    if !poppler() {
        return;
    }
    let text = flat(&pdf_text(&pdf));
    for expected in [
        "Фотосинтез: как растения запасают свет",
        "БИОЛОГИЯ 101 · LECTURE 3",
        "Host Анна Смирнова",
        "Duration 1 h 12 min",
        // The hostile chat line and markup-like text, verbatim: data, never markup.
        "#import \"/etc/passwd\"",
        "*bold* Καλημέρα",
        "Bob <script>",
        "Хлорофилл поглощает *красный* и синий свет",
        "00:01:02–00:03:00",
        "Они отражают зелёный свет. *Не* поглощают его.",
        "Τι γίνεται τη νύχτα;",
        "slides | v2.pdf 1.5 MB",
        "=HYPERLINK(\"http://x\")",
        "Attendance",
    ] {
        assert!(text.contains(expected), "the PDF's text lacks {expected:?}:\n{text}");
    }
}

#[test]
fn markup_in_any_field_is_printed_not_run() {
    // Each of these would fail the render, or change the document, if it reached typst as markup.
    let hostile = [
        "#panic(\"boom\")",
        "@nowhere",
        "<p0>",
        "#set page(width: 1pt)",
        "$x^2$ ] [ \\ /* // `raw`",
        "#read(\"/lecture.typ\")",
        "Ab\u{202e}cd 😀 漢字 שלום",
    ];
    let mut doc = sample();
    doc.lecture.title = hostile[0].into();
    doc.lecture.host_name = hostile[1].into();
    doc.lecture.room_name = hostile[2].into();
    doc.transcript[0].text = hostile[3].into();
    doc.transcript[0].speaker_name = hostile[4].into();
    doc.chat[0].text = hostile.join("\n");
    doc.files[0].name = hostile[5].into();
    let pdf = render(&doc).unwrap();
    if !poppler() {
        return;
    }
    let text = flat(&pdf_text(&pdf));
    for expected in &hostile[..6] {
        assert!(text.contains(expected), "the PDF's text lacks {expected:?}:\n{text}");
    }
}

#[test]
fn a_russian_lecture_in_russian_attendance_left_out_when_hidden_a_state_for_the_summary() {
    let mut doc = sample();
    doc.attendance = None;
    doc.summary = None;
    doc.summary_status = crate::export::SummaryStatus::Pending;
    doc.chat.clear();
    let pdf = render(&doc).unwrap();
    if !poppler() {
        return;
    }
    let text = flat(&pdf_text(&pdf));
    assert!(!text.contains("Посещаемость"), "{text}");
    assert!(!text.contains("HYPERLINK"), "{text}");
    // The sample lecture is in Russian: so are the document's own words.
    for expected in ["Конспект Конспект пишется.", "Расшифровка", "Чат Сообщений в чате нет.", "Файлы Файл Размер"]
    {
        assert!(text.contains(expected), "the PDF's text lacks {expected:?}:\n{text}");
    }
    assert!(text.contains("Ведущий Анна Смирнова") && text.contains("Длительность 1 ч 12 мин"), "{text}");
    for english in ["Summary", "Transcript", "Chat", "Host", "LECTURE"] {
        assert!(!text.contains(english), "{english:?} left in English:\n{text}");
    }
}

#[test]
fn a_long_lecture_breaks_across_pages() {
    // 40 minutes: enough for many pages, small enough for an unoptimised test build (the two-hour lecture is
    // benches/lecture_pdf.rs's).
    let doc = synthetic::lecture(40, 400, 150, 1);
    let pdf = render(&doc).unwrap();
    if !poppler() {
        return;
    }
    let text = pdf_text(&pdf);
    let pages: Vec<&str> = text.split('\x0c').filter(|p| !p.trim().is_empty()).collect();
    assert!(pages.len() > 10, "{} pages", pages.len());
    // The chat runs over several pages, every message with its time and sender, the last one included.
    let heading = |name: &str| pages.iter().position(|p| p.lines().any(|l| l.trim() == name)).unwrap();
    let (chat, files) = (heading("Чат"), heading("Файлы"));
    assert!(files - chat >= 2, "chat on pages {chat}..={files}");
    let last = doc.chat.last().unwrap();
    let chat_text = flat(&pages[chat..=files].join(" "));
    let last_line = format!("{} {}", crate::export::clock::clock(last.offset_ms), last.sender_name);
    assert!(chat_text.contains(&last_line), "{last_line:?} is printed");
    // The transcript runs to its end: the last paragraph's time is printed.
    let last = crate::export::transcript::paragraphs(&doc.transcript).last().unwrap().start_ms;
    assert!(text.contains(&crate::export::clock::clock(last)), "the last paragraph is printed");
}

#[test]
fn page_one_as_an_image() {
    let pdf = render(&sample()).unwrap();
    if !poppler() {
        return;
    }
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lecture.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let prefix = dir.join("lecture-pdf-page1");
    let status = Command::new("pdftoppm")
        .args(["-r", "60", "-png", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&path)
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(status.success());
    let png = std::fs::read(prefix.with_extension("png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{}", prefix.display());
    // The whole PDF beside it, for a closer look.
    std::fs::write(dir.join("lecture-pdf-sample.pdf"), &pdf).unwrap();
    eprintln!("page 1: {}", prefix.with_extension("png").display());
}

#[test]
fn the_world_serves_the_template_and_the_data_and_nothing_else() {
    let world = LectureWorld::new(b"{}".to_vec()).unwrap();
    let main = world.main();
    assert!(world.source(main).is_ok());
    for path in ["/etc/passwd", "/lecture.typ/../etc/passwd", "/other.typ", "/lecture.json.typ"] {
        let id = world::file_id(path).unwrap();
        assert!(matches!(world.file(id), Err(typst::diag::FileError::NotFound(_))), "{path}");
        assert!(matches!(world.source(id), Err(typst::diag::FileError::NotFound(_))), "{path}");
    }
    assert_eq!(world.file(world::file_id("/lecture.json").unwrap()).unwrap().as_slice(), b"{}");
    assert!(world.today(None).is_none());
}

#[test]
fn languages_for_hyphenation() {
    assert_eq!(hyphenation_language("ru"), "ru");
    assert_eq!(hyphenation_language("pt-BR"), "pt");
    assert_eq!(hyphenation_language("English"), "en");
    assert_eq!(hyphenation_language(""), "en");
}

#[test]
fn render_dispatches_to_the_pdf() {
    let pdf = crate::export::render(&sample(), Format::Pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
}

#[test]
fn every_label_the_template_prints_is_in_both_catalogues() {
    for lang in crate::i18n::Lang::ALL {
        for name in LABELS {
            assert!(lang.catalogue().lookup(&format!("export.{name}")).is_some(), "{}: export.{name}", lang.code());
        }
        for role in ["host", "admin", "guest"] {
            assert!(lang.catalogue().lookup(&format!("export.role.{role}")).is_some(), "{}: {role}", lang.code());
        }
    }
}
