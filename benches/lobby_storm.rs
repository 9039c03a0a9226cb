//! The lecture-start storm, measured on the release binary in its own process: guests from many loopback
//! addresses join a room with its lobby on and wait on their waiting-room streams, the host lets them in, and
//! every guest must receive its token. Targets (issue 16):
//!
//! - storm: every guest holds a token ≤ 3 s after the first join request for 5,000 guests, ≤ 1.5 s for
//!   1,000; "approve all" delivers 5,000 tokens ≤ 1.5 s;
//! - waiting: 10,000 guests on their streams at once cost the server ≤ 100 MB resident and next to no CPU
//!   (heartbeats only), and "approve all" still delivers their tokens (≈ 1 s before this work);
//! - one by one: while 1,000 wait, each single approval reaches its guest ≤ 100 ms.
//!
//! Run: `cargo build --release --bin confctl && cargo bench --bench lobby_storm` — every scenario, each on a
//! fresh server — or pick: `-- storm 5000`, `-- waiting 10000`, `-- one-by-one 1000`; `--pin` gives the room a
//! PIN, `--postgres` runs on PostgreSQL (`TEST_DATABASE_URL`), `--in-flight N` caps guests between their
//! click and their first event (default 256: a burst, not 5,000 SYNs in the same millisecond). Rate limits
//! stay at their defaults: the guests come from 20 addresses per 1,000 (127.0.1.1, 127.0.1.2, …).
//! `--https` serves HTTPS as a deployment with TLS does, and every guest is a browser of its own: one
//! connection (HTTP/2, as ALPN picks it) carries its join and its stream; in plain HTTP the guests of an
//! address share their client's pool, and each stream holds an HTTP/1.1 connection. This is a load script,
//! not a test: it prints measurements and whether the targets were met.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use common::{Database, Host, Served, Sse, ms, quantile};

const PIN: &str = "4711";

struct Room {
    served: Served,
    host: Host,
    pin: bool,
    https: bool,
}

async fn room(db: &Database, pin: bool) -> Room {
    let https = common::flag("--https");
    let served = if https { common::serve_https(db, &[]).await } else { common::serve(db, &[]).await };
    let settings = if pin { json!({"lobbyEnabled": true, "pin": PIN}) } else { json!({"lobbyEnabled": true}) };
    let host = Host::with_room(&served, settings).await;
    Room { served, host, pin, https }
}

impl Room {
    /// How the guests reach the server, for the headline of a scenario.
    fn transport(&self) -> &'static str {
        if self.https { "HTTPS, a connection per guest" } else { "plain HTTP" }
    }
}

/// What a guest task reports.
enum Report {
    Waiting,
    Admitted { index: usize, at: Instant },
    Failed(String),
}

/// `n` guests, each from one of `n / 50` addresses (at least one): join, open the stream, see PENDING, then
/// wait for the token. At most `in_flight` are between their join request and their first event at once.
fn guests(room: &Room, n: usize, in_flight: usize) -> (mpsc::UnboundedReceiver<Report>, Instant) {
    let addresses = common::source_addresses(n.div_ceil(50).max(1));
    let clients: Vec<reqwest::Client> = if room.https {
        (0..n).map(|i| room.served.client_from(addresses[i % addresses.len()])).collect()
    } else {
        addresses.iter().map(|a| room.served.client_from(*a)).collect()
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(in_flight));
    let join_url = format!("{}/api/rooms/{}/join", room.served.base, room.host.room_id);
    let start = Instant::now();
    for i in 0..n {
        let http = clients[i % clients.len()].clone();
        let tx = tx.clone();
        let gate = gate.clone();
        let join_url = join_url.clone();
        let base = room.served.base.clone();
        let room_id = room.host.room_id.clone();
        let mut body = json!({"inviteCode": room.host.invite_code, "displayName": format!("Student {i}"),
            "sessionFingerprint": format!("storm-fingerprint-{i:08}")});
        if room.pin {
            body["pin"] = json!(PIN);
        }
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let joined = match http.post(&join_url).json(&body).send().await {
                Ok(r) if r.status() == 201 => r.json::<serde_json::Value>().await.ok(),
                Ok(r) => {
                    let _ = tx.send(Report::Failed(format!("join answered {}", r.status())));
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Report::Failed(format!("join failed: {e}")));
                    return;
                }
            };
            let session = joined.and_then(|v| v["sessionId"].as_str().map(str::to_owned)).unwrap_or_default();
            let url = format!("{base}/api/rooms/{room_id}/lobby/stream?sessionId={session}");
            let mut sse = match Sse::open(&http, &url).await {
                Ok(sse) => sse,
                Err(e) => {
                    let _ = tx.send(Report::Failed(e));
                    return;
                }
            };
            match sse.next().await {
                Some(first) if first["status"] == "PENDING" => {}
                other => {
                    let _ = tx.send(Report::Failed(format!("first event {other:?}")));
                    return;
                }
            }
            drop(permit);
            let _ = tx.send(Report::Waiting);
            let report = match sse.next().await {
                Some(e) if e["status"] == "APPROVED" && e["token"].as_str().is_some_and(|t| t.len() > 100) => {
                    Report::Admitted { index: i, at: Instant::now() }
                }
                other => Report::Failed(format!("decision {other:?}")),
            };
            let _ = tx.send(report);
        });
    }
    (rx, start)
}

/// Waits for `n` guests to wait; panics on the first failure.
async fn all_waiting(rx: &mut mpsc::UnboundedReceiver<Report>, n: usize) {
    let mut waiting = 0;
    while waiting < n {
        match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await.expect("guests stalled") {
            Some(Report::Waiting) => waiting += 1,
            Some(Report::Failed(why)) => panic!("a guest failed: {why}"),
            Some(Report::Admitted { .. }) => panic!("admitted before any decision"),
            None => panic!("guest tasks ended"),
        }
    }
}

/// Collects `n` admissions; returns the last one's instant.
async fn all_admitted(rx: &mut mpsc::UnboundedReceiver<Report>, n: usize) -> (Instant, Vec<Instant>) {
    let mut at = Vec::with_capacity(n);
    while at.len() < n {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("tokens stalled") {
            Some(Report::Admitted { at: t, .. }) => at.push(t),
            Some(Report::Failed(why)) => panic!("a guest failed: {why}"),
            Some(Report::Waiting) => panic!("a guest started waiting late"),
            None => panic!("guest tasks ended"),
        }
    }
    (at.iter().copied().max().unwrap(), at)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Everyone joins and waits; the host lets everyone in once they all wait.
async fn storm(db: &Database, n: usize, pin: bool, in_flight: usize) -> bool {
    let room = room(db, pin).await;
    println!(
        "storm: {n} guests from {} addresses, {}, {}, lobby on{}; load {}",
        n.div_ceil(50).max(1),
        db.label(),
        room.transport(),
        if pin { " + PIN" } else { "" },
        common::load_average()
    );
    let (server_ticks, (own_cpu, _)) = (room.served.cpu_ticks(), common::own_and_children_cpu());
    let (mut rx, start) = guests(&room, n, in_flight);
    all_waiting(&mut rx, n).await;
    let waiting = start.elapsed();
    let approve = Instant::now();
    let (status, body) =
        room.host.post(&format!("/api/rooms/{}/lobby/approve-all", room.host.room_id), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let call = approve.elapsed();
    let (last, mut at) = all_admitted(&mut rx, n).await;
    let delivery = last.duration_since(approve);
    let total = last.duration_since(start);
    at.sort();
    let p50 = at[at.len() / 2].duration_since(approve);
    println!("  all {n} joined and waiting on their streams: {:>6.0} ms after the first join", ms(waiting));
    println!("  approve-all request:                       {:>6.0} ms", ms(call));
    println!("  tokens delivered: p50 {:.0} ms, last {:.0} ms after approve-all", ms(p50), ms(delivery));
    println!("  whole storm, first join → last token:      {:>6.0} ms", ms(total));
    // The guests' side runs on the same cores (their TLS handshakes too, with --https): what each side used.
    println!(
        "  CPU used over the storm: server {:.2} s, the guests (this process) {:.2} s",
        (room.served.cpu_ticks() - server_ticks) as f64 / 100.0,
        (common::own_and_children_cpu().0 - own_cpu).as_secs_f64()
    );
    let storm_target = if n <= 1000 { Duration::from_millis(1500) } else { Duration::from_secs(3) };
    let ok_total = n > 5000 || total <= storm_target;
    let ok_delivery = delivery <= Duration::from_millis(1500);
    if n <= 5000 {
        println!("  target: whole storm ≤ {:.1} s ... {}", storm_target.as_secs_f64(), verdict(ok_total));
    }
    println!("  target: approve-all delivery ≤ 1.5 s ... {}", verdict(ok_delivery));
    room.served.stop().await;
    ok_total && ok_delivery
}

/// `n` guests wait on their streams: the server's memory and CPU while they wait, then approve-all.
async fn waiting(db: &Database, n: usize, in_flight: usize) -> bool {
    let room = room(db, false).await;
    println!(
        "waiting: {n} guests on their streams, {}, {}, lobby on; load {}",
        db.label(),
        room.transport(),
        common::load_average()
    );
    let idle_rss = room.served.rss_kib();
    let idle_split = room.served.rss_split_kib();
    let (mut rx, start) = guests(&room, n, in_flight);
    all_waiting(&mut rx, n).await;
    println!("  all waiting after {:.0} ms", ms(start.elapsed()));
    // Let the joins' garbage settle, then watch a quiet stretch that includes a heartbeat round (15 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = room.served.rss_kib();
    let ticks = room.served.cpu_ticks();
    let watch = Duration::from_secs(20);
    tokio::time::sleep(watch).await;
    let cpu = (room.served.cpu_ticks() - ticks) as f64 / 100.0 / watch.as_secs_f64();
    let rss_later = room.served.rss_kib();
    let split = room.served.rss_split_kib();
    let rss_after = rss_later.max(rss);
    let per_stream = (rss_after.saturating_sub(idle_rss)) as f64 * 1024.0 / n as f64;
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  server RSS: {:.1} MB idle, {:.1} MB with {n} waiting ({:.1} KB per waiting guest, joins included; \
         the larger of {:.1} MB 2 s after the last join and {:.1} MB {} s later)",
        mb(idle_rss),
        mb(rss_after),
        per_stream / 1000.0,
        mb(rss),
        mb(rss_later),
        watch.as_secs()
    );
    // The file-backed part is the binary's own pages (code faulted in at start-up, in the kernel's read-around
    // chunks): what the server holds for its guests is in the anonymous part.
    println!(
        "  anonymous (heap, stacks): {:.1} MB idle, {:.1} MB at the later reading; file-backed (the binary's \
         pages): {:.1} MB idle, {:.1} MB at the later reading",
        mb(idle_split.0),
        mb(split.0),
        mb(idle_split.1),
        mb(split.1)
    );
    println!("  server CPU while they wait: {:.1} % of one core over {} s", cpu * 100.0, watch.as_secs());
    let approve = Instant::now();
    let (status, body) =
        room.host.post(&format!("/api/rooms/{}/lobby/approve-all", room.host.room_id), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (last, _) = all_admitted(&mut rx, n).await;
    let delivery = last.duration_since(approve);
    println!("  approve-all → last of {n} tokens: {:.0} ms", ms(delivery));
    let ok_rss = rss_after <= 100 * 1024;
    let ok_cpu = cpu <= 0.02;
    println!("  target: RSS ≤ 100 MB ... {}", verdict(ok_rss));
    println!("  target: CPU near zero (≤ 2 % of a core) ... {}", verdict(ok_cpu));
    room.served.stop().await;
    ok_rss && ok_cpu
}

/// `n` guests wait; the host approves `approvals` of them one at a time.
async fn one_by_one(db: &Database, n: usize, approvals: usize, in_flight: usize) -> bool {
    let room = room(db, false).await;
    println!(
        "one by one: {approvals} single approvals while {n} wait, {}, {}; load {}",
        db.label(),
        room.transport(),
        common::load_average()
    );
    let (mut rx, _) = guests(&room, n, in_flight);
    all_waiting(&mut rx, n).await;
    let (_, lobby) = room.host.get(&format!("/api/rooms/{}/lobby", room.host.room_id)).await;
    let entries: Vec<(usize, String)> = lobby["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let index = e["displayName"].as_str().unwrap().trim_start_matches("Student ").parse().unwrap();
            (index, e["id"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(entries.len(), n);
    let mut latencies = Vec::with_capacity(approvals);
    // Spread over the queue: the first, the last and everything in between.
    let step = (n / approvals).max(1);
    for (index, entry) in entries.iter().step_by(step).take(approvals) {
        let sent = Instant::now();
        let (status, body) =
            room.host.post(&format!("/api/rooms/{}/lobby/{entry}/approve", room.host.room_id), json!({})).await;
        assert_eq!(status, 200, "{body}");
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("approval never arrived") {
            Some(Report::Admitted { index: got, at }) => {
                assert_eq!(got, *index, "the wrong guest was admitted");
                latencies.push(at.duration_since(sent));
            }
            Some(Report::Failed(why)) => panic!("a guest failed: {why}"),
            _ => panic!("unexpected report"),
        }
    }
    latencies.sort();
    let max = *latencies.last().unwrap();
    println!(
        "  approval → its guest's token: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(max)
    );
    let ok = max <= Duration::from_millis(100);
    println!("  target: each ≤ 100 ms ... {}", verdict(ok));
    room.served.stop().await;
    ok
}

#[tokio::main]
async fn main() {
    let db = Database::from_args();
    let pin = common::flag("--pin");
    let in_flight: usize = common::arg("--in-flight").unwrap_or(256);
    let picked = |name: &str| common::arg::<usize>(name);
    let any_picked = ["storm", "waiting", "one-by-one"].iter().any(|s| picked(s).is_some());
    let mut ok = true;
    if let Some(n) = picked("storm") {
        ok &= storm(&db, n, pin, in_flight).await;
    } else if !any_picked {
        ok &= storm(&db, 1000, pin, in_flight).await;
        ok &= storm(&db, 5000, pin, in_flight).await;
    }
    if let Some(n) = picked("waiting").or((!any_picked).then_some(10_000)) {
        ok &= waiting(&db, n, in_flight).await;
    }
    if let Some(n) = picked("one-by-one").or((!any_picked).then_some(1000)) {
        ok &= one_by_one(&db, n, 100, in_flight).await;
    }
    if !ok {
        std::process::exit(1);
    }
}
