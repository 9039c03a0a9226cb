//! The lecture-start storm, measured: N guests join a PIN-protected room with a lobby and wait on SSE, the
//! host presses "approve all", and every guest must receive its token. Targets (issue: rooms and admission):
//! every token within 2 s of "approve all", the whole storm under 10 s, on a 2-core machine with SQLite.
//!
//! Run: `cargo bench --bench lobby_storm` (optionally `-- 1000` for the number of guests). This is a load
//! script, not a test: it prints measurements and whether the targets were met.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The integration tests' harness; this script uses a sliver of it.
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../tests/api/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

#[tokio::main]
async fn main() {
    let guests: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    // Every simulated guest shares the loopback address, so the per-IP join limit is lifted.
    let w =
        support::WithLiveKit::spawn(support::Db::Sqlite, &[("rate_limits.joins_per_ip_per_minute", "100000")]).await;
    let t = &w.t;
    let host = t.client();
    host.register("host@uni.edu", "Host").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Storm", "pin": "4711"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let invite_code = room["inviteCode"].as_str().unwrap().to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(2000).build().unwrap();

    println!("lobby storm: {guests} guests, SQLite, PIN + lobby");
    let storm = Instant::now();
    let join_url = format!("{}/api/rooms/{room_id}/join", t.base);
    let sessions: Vec<String> = futures::stream::iter(0..guests)
        .map(|i| {
            let http = http.clone();
            let url = join_url.clone();
            let code = invite_code.clone();
            async move {
                let body = json!({"displayName": format!("Student {i}"), "sessionFingerprint": format!("bench-fingerprint-{i:08}"), "pin": "4711", "inviteCode": code});
                let r = http.post(url).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201);
                let v: serde_json::Value = r.json().await.unwrap();
                v["sessionId"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let joined = storm.elapsed();
    println!(
        "  {guests} joins (bcrypt PIN check, lobby entry each): {:>7.0} ms  ({:.1} joins/s)",
        ms(joined),
        guests as f64 / joined.as_secs_f64()
    );

    // Every guest opens its waiting-room stream and sees PENDING first.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(guests);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Instant>(guests);
    for session in sessions {
        let url = format!("{}/api/rooms/{room_id}/lobby/stream?sessionId={session}", t.base);
        let http = http.clone();
        let ready = ready_tx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut sse = support::Sse::open(&http, &url).await;
            let (_, first) = sse.next().await.unwrap();
            assert_eq!(first["status"], "PENDING");
            ready.send(()).await.unwrap();
            let (_, decided) = sse.next().await.unwrap();
            assert_eq!(decided["status"], "APPROVED");
            assert!(decided["token"].as_str().is_some_and(|t| t.len() > 100));
            done.send(Instant::now()).await.unwrap();
        });
    }
    for _ in 0..guests {
        ready_rx.recv().await.unwrap();
    }
    let waiting = storm.elapsed();
    println!("  all {guests} waiting on SSE:                 {:>7.0} ms after start", ms(waiting));

    let approve = Instant::now();
    let (status, body) = host.post(&format!("/api/rooms/{room_id}/lobby/approve-all"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let approve_call = approve.elapsed();
    let mut last = approve;
    let mut latencies = Vec::with_capacity(guests);
    for _ in 0..guests {
        let at = tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await.unwrap().unwrap();
        latencies.push(at.duration_since(approve));
        last = last.max(at);
    }
    let delivery = last.duration_since(approve);
    let total = storm.elapsed();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    println!("  approve-all request (one transaction):      {:>7.0} ms", ms(approve_call));
    println!("  tokens delivered: p50 {:.0} ms, last {:.0} ms after approve-all", ms(p50), ms(delivery));
    println!("  whole storm:                                {:>7.0} ms", ms(total));
    let ok_delivery = delivery <= Duration::from_secs(2);
    let ok_total = total <= Duration::from_secs(10);
    println!("  target: every token within 2 s ... {}", if ok_delivery { "met" } else { "MISSED" });
    println!("  target: whole storm under 10 s ... {}", if ok_total { "met" } else { "MISSED" });
    w.t.stop().await;
    if !(ok_delivery && ok_total) {
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
