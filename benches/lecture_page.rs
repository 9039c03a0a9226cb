//! The lecture page and transcript search on a long lecture (issue: lectures that leave something behind):
//! target ≤ 50 ms server time for the page and for `transcript?q=` on a two-hour lecture; measured here on a
//! three-hour one (1,800 segments ≈ 30,000 words, 300 chat lines, a full summary, cited) to leave room.
//!
//! Run: `cargo build --release --bin confctl && cargo bench --bench lecture_page [-- --postgres]
//! [--seconds S]` (needs `wrk`). The release binary serves a fresh data directory; the host registers and
//! makes a room through the API, the lecture's rows are written straight into the database (see
//! `common/lectures.rs`), then `wrk -t1 -c1` asks each URL back to back with the host's session cookie for S
//! seconds: one request at a time, so its latency is the server's time plus a loopback round trip. Reported:
//! p50 / p99 latency and requests per second per URL, and the server's RSS after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/lectures.rs"]
mod lectures;

use std::process::Command;

use confctl::config::{self, Sources};
use confctl::export::synthetic;
use serde_json::{Value, json};

/// wrk's p50 and p99 in ms, and requests per second.
fn wrk(url: &str, cookie: &str, seconds: u32) -> (f64, f64, f64, u64) {
    let out = Command::new("wrk")
        .args(["-t1", "-c1", &format!("-d{seconds}s"), "--latency", "-H", &format!("Cookie: {cookie}"), url])
        .output()
        .unwrap_or_else(|e| {
            eprintln!("cannot run wrk ({e}): install it with `apt-get install wrk`");
            std::process::exit(2);
        });
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut p50, mut p99, mut rate, mut bad) = (f64::NAN, f64::NAN, 0.0, 0);
    for line in text.lines() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["50%", v] => p50 = ms(v),
            ["99%", v] => p99 = ms(v),
            ["Requests/sec:", n] => rate = n.parse().unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => bad = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    (p50, p99, rate, bad)
}

fn ms(value: &str) -> f64 {
    let split = value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len());
    let n: f64 = value[..split].parse().unwrap_or(f64::NAN);
    match &value[split..] {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

/// `text` for a URL's query (the search words are Cyrillic).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::main]
async fn main() {
    let seconds: u32 = common::arg("--seconds").unwrap_or(5);
    let db = common::Database::from_args();
    let served = common::serve(&db, &[]).await;
    let base = &served.base;

    // The host, signed in by a cookie wrk can send.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "anna@uni.edu", "password": "correct horse battery", "name": "Анна Смирнова"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let r = http
        .post(format!("{base}/api/rooms"))
        .header("cookie", &cookie)
        .json(&json!({"name": "Биология 101"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let room: Value = r.json().await.unwrap();
    let room_id = room["id"].as_str().unwrap();

    // A three-hour lecture of that room, ended yesterday.
    let doc = synthetic::lecture(180, 1_800, 300, 7);
    let words: usize = doc.transcript.iter().map(|s| s.text.split_whitespace().count()).sum();
    let url = match &db {
        common::Database::Sqlite => {
            let env = vec![("CONFCTL_DATA_DIR".to_owned(), served.dir.path().join("data").display().to_string())];
            config::load(&Sources { env, ..Sources::default() }).unwrap().effective_database_url().expose().to_owned()
        }
        common::Database::Postgres { .. } => served.database_url().unwrap(),
    };
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let start = confctl::time::now_ms() - 86_400_000;
    lectures::insert(&mut conn, room_id, "long-lecture", 0, start, &doc).await;
    drop(conn);

    // A word the transcript has in many segments, the rarest word it has, and one it does not have.
    let hits = |w: &str| doc.transcript.iter().filter(|s| s.text.to_lowercase().contains(w)).count();
    let common_word = "хлорофилл";
    let mut words_seen: Vec<String> = doc
        .transcript
        .iter()
        .flat_map(|s| s.text.split_whitespace())
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| w.chars().count() >= 5)
        .collect();
    words_seen.sort();
    words_seen.dedup();
    let rare_word = words_seen.into_iter().min_by_key(|w| hits(w)).unwrap();
    println!(
        "lecture page: {}, a three-hour lecture ({} segments, {words} words, {} chat lines), wrk -t1 -c1 \
         -d{seconds}s per URL; load before: {}",
        db.label(),
        doc.transcript.len(),
        doc.chat.len(),
        common::load_average()
    );
    let urls = [
        ("the page (HTML)", format!("{base}/lectures/long-lecture")),
        ("GET /api/lectures/{id}", format!("{base}/api/lectures/long-lecture")),
        (
            "transcript?q= a frequent word",
            format!("{base}/api/lectures/long-lecture/transcript?q={}", encode(common_word)),
        ),
        (
            "transcript?q= its rarest word",
            format!("{base}/api/lectures/long-lecture/transcript?q={}", encode(&rare_word)),
        ),
        ("transcript?q= no match", format!("{base}/api/lectures/long-lecture/transcript?q=zzzqqq")),
        ("GET /api/lectures?q= (all lectures)", format!("{base}/api/lectures?q={}", encode(common_word))),
    ];
    println!("  («{common_word}» in {} segments, «{rare_word}» in {})", hits(common_word), hits(&rare_word));
    let mut worst: f64 = 0.0;
    for (what, url) in &urls {
        let (p50, p99, rate, bad) = wrk(url, &cookie, seconds);
        assert_eq!(bad, 0, "{what}: {bad} answers were not 2xx");
        worst = worst.max(p99);
        println!("  {what:<38} p50 {p50:>6.1} ms  p99 {p99:>6.1} ms  {rate:>6.0}/s");
    }
    println!(
        "  worst p99 {worst:.1} ms — target ≤ 50 ms: {}; server RSS {} MB; load after: {}",
        if worst <= 50.0 { "within" } else { "OVER" },
        served.rss_kib() / 1024,
        common::load_average()
    );
    served.stop().await;
}
