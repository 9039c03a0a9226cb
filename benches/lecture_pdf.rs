//! Time to render a two-hour lecture's PDF (issue: lectures that leave something behind): target ≤ 1 s on one
//! core for ≈ 20,000 words of transcript (1,200 segments) and 300 chat lines. Also times the other formats
//! and the ZIP, and prints the peak memory. On two or more cores it also renders lectures on two threads at
//! once, which shows why `confctl export` typesets in worker processes instead (docs/performance.md).
//!
//! Run on one core: `taskset -c 0 cargo bench --bench lecture_pdf` (optionally `-- 20` for the number of
//! timed renders; typst's worker threads follow the CPU affinity). The first render is reported apart: it
//! parses the embedded fonts and builds typst's standard library, once per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::time::{Duration, Instant};

use confctl::export::{self, Format, synthetic};

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let doc = synthetic::lecture(120, 1_200, 300, 0);
    let words: usize = doc.transcript.iter().map(|s| s.text.split_whitespace().count()).sum();
    println!(
        "lecture: {} min, {} segments, {words} words, {} chat lines; {cores} core(s) available to this process",
        doc.lecture.duration_ms / 60_000,
        doc.transcript.len(),
        doc.chat.len()
    );

    let (first, pdf) = timed(|| export::render(&doc, Format::Pdf).unwrap());
    // Every timed render is of another lecture (other words throughout), as on a server: typst memoises
    // layout, and the same lecture again would mostly be served from that cache. Each is generated untimed,
    // just before its render, and dropped after it.
    let (mut times, mut cpu) = (Vec::new(), Duration::ZERO);
    for seed in 1..=runs as u64 {
        let lecture = synthetic::lecture(120, 1_200, 300, seed);
        let cpu_before = cpu_time();
        times.push(timed(|| export::render(&lecture, Format::Pdf).unwrap()).0);
        cpu += cpu_time() - cpu_before;
    }
    let wall: Duration = times.iter().sum();
    let again = synthetic::lecture(120, 1_200, 300, runs as u64);
    let (same, _) = timed(|| export::render(&again, Format::Pdf).unwrap());
    times.sort();
    println!("PDF: {} KB", pdf.len() / 1000);
    println!("  first render (fonts and library set up): {}", ms(first));
    println!(
        "  {runs} other lectures: min {}, median {}, max {}; CPU per render {} (wall {})",
        ms(times[0]),
        ms(times[runs / 2]),
        ms(times[runs - 1]),
        ms(cpu / runs as u32),
        ms(wall / runs as u32),
    );
    println!("  the last lecture again, from typst's cache: {}", ms(same));
    let verdict = if times[runs / 2] <= Duration::from_secs(1) { "within" } else { "OVER" };
    println!("  target: median ≤ 1 s on one core — {verdict}");

    for format in [Format::Markdown, Format::Json, Format::Vtt, Format::Srt, Format::Text, Format::AttendanceCsv] {
        let (time, bytes) = timed(|| export::render(&doc, format).unwrap());
        println!("{format}: {} KB in {}", bytes.len() / 1000, ms(time));
    }
    // `confctl export` renders two lectures at a time in one process (`--jobs 2`): the same renders, two
    // threads at once. Near half the single render's time each when the renders do not get in each other's way.
    if cores >= 2 {
        let lectures: Vec<Vec<_>> = (0..2u64)
            .map(|thread| {
                (0..runs as u64)
                    .map(|seed| synthetic::lecture(120, 1_200, 300, 1_000 + thread * 1_000 + seed))
                    .collect()
            })
            .collect();
        let started = Instant::now();
        std::thread::scope(|scope| {
            for lectures in &lectures {
                scope.spawn(move || {
                    for lecture in lectures {
                        export::render(lecture, Format::Pdf).unwrap();
                    }
                });
            }
        });
        println!("  two threads, {runs} lectures each: {} a lecture", ms(started.elapsed() / (2 * runs as u32)));
    }

    let file = vec![7u8; 2_000_000];
    let (time, zip) = timed(|| {
        export::write_zip(&doc, |_| Ok(Cursor::new(file.as_slice())), Cursor::new(Vec::new())).unwrap().into_inner()
    });
    println!("zip (every format and 3 files of 2 MB): {} KB in {}", zip.len() / 1000, ms(time));
    println!("peak RSS: {}", peak_rss());
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// User and system CPU time of the whole process, all threads (Linux `/proc/self/stat`, in clock ticks of
/// 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th of the line.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

fn peak_rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).map_or("unknown".into(), |v| v.trim().to_owned())
}
