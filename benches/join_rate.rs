//! The join path against the machine's own limit: `wrk -t2 -c64` on `POST /api/rooms/{id}/join` (a room with
//! its lobby on, every request a new guest with its own fingerprint, `benches/join.lua`) and, in the same run,
//! on `/healthz` — the cheapest request the server answers, so the ratio says how far the join path is from
//! what this machine can do at all. Each round also prints the server's own CPU time a request (user and
//! system, from `/proc`): on a saturated machine the ratio is the ratio of those two costs, and the CPU figure
//! is the steadier of the two where other guests of a shared host take CPU time unevenly. Targets (issue 16):
//! joins at ≥ 25 % of `/healthz` with p99 ≤ 50 ms on SQLite, ≥ 10 % on PostgreSQL.
//!
//! Run: `cargo build --release --bin confctl && cargo bench --bench join_rate [-- --postgres] [--rounds N]
//! [--seconds S]` (needs `wrk`: `apt-get install wrk`; `--postgres` needs `TEST_DATABASE_URL`). The server is
//! the release binary in its own process; the join limit per address is raised through configuration, as an
//! operator could, since every wrk connection comes from 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use serde_json::json;

/// What wrk reported for one run.
#[derive(Debug, Default, Clone, Copy)]
struct Run {
    per_second: f64,
    /// Requests completed (wrk's "N requests in …").
    requests: u64,
    /// The server's CPU time (user + system) a request, in microseconds.
    server_cpu_us: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn parse_ms(value: &str) -> f64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len()));
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

/// Runs wrk against `url`, counting what the server spent on it.
fn measured(served: &common::Served, url: &str, seconds: u32, script: Option<(&std::path::Path, &[&str])>) -> Run {
    let ticks = served.cpu_ticks();
    let mut run = wrk(url, seconds, script);
    // Clock ticks are 1/100 s; a round of a few seconds at a core or more is hundreds of them.
    run.server_cpu_us = (served.cpu_ticks() - ticks) as f64 * 10_000.0 / run.requests.max(1) as f64;
    run
}

fn wrk(url: &str, seconds: u32, script: Option<(&std::path::Path, &[&str])>) -> Run {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency"]);
    if let Some((path, _)) = script {
        cmd.arg("-s").arg(path);
    }
    cmd.arg(url);
    if let Some((_, args)) = script {
        cmd.arg("--").args(args);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        eprintln!("cannot run wrk ({e}): install it with `apt-get install wrk`");
        std::process::exit(2);
    });
    let text = String::from_utf8_lossy(&out.stdout);
    let mut run = Run::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => run.per_second = n.parse().unwrap_or(0.0),
            [n, "requests", "in", ..] => run.requests = n.parse().unwrap_or(0),
            ["50%", v] => run.p50_ms = parse_ms(v),
            ["99%", v] => run.p99_ms = parse_ms(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", ..] => run.errors += 1,
            _ => {}
        }
    }
    if run.per_second == 0.0 {
        eprintln!("wrk printed nothing useful:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
    run
}

#[tokio::main]
async fn main() {
    let rounds: usize = common::arg("--rounds").unwrap_or(3);
    let seconds: u32 = common::arg("--seconds").unwrap_or(4);
    let db = common::Database::from_args();
    let served = common::serve(&db, &[("CONFCTL_RATE_LIMITS__JOINS_PER_IP_PER_MINUTE", "1000000")]).await;
    let host = common::Host::with_room(&served, json!({"lobbyEnabled": true})).await;
    let script = served.dir.path().join("join.lua");
    std::fs::write(&script, include_str!("join.lua")).unwrap();
    let join_url = format!("{}/api/rooms/{}/join", served.base, host.room_id);
    let health_url = format!("{}/healthz", served.base);

    println!(
        "join rate: {}, wrk -t2 -c64 -d{seconds}s, lobby on, a new fingerprint per join; load before: {}",
        db.label(),
        common::load_average()
    );
    let mut ratios = Vec::new();
    let mut healths = Vec::new();
    let mut joins = Vec::new();
    for round in 1..=rounds {
        let health = measured(&served, &health_url, seconds, None);
        let tag = format!("r{round}p{}", std::process::id());
        let join = measured(&served, &join_url, seconds, Some((&script, &[&host.invite_code, &tag])));
        let ratio = join.per_second / health.per_second;
        println!(
            "  round {round}: /healthz {:>8.0}/s (p99 {:>6.1} ms) | join {:>7.0}/s (p50 {:>5.1} ms, p99 {:>6.1} ms, \
             errors {}) | ratio {:>5.1} % | server CPU a request: {:.1} / {:.1} µs",
            health.per_second,
            health.p99_ms,
            join.per_second,
            join.p50_ms,
            join.p99_ms,
            join.errors,
            ratio * 100.0,
            health.server_cpu_us,
            join.server_cpu_us,
        );
        ratios.push(ratio);
        healths.push(health);
        joins.push(join);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let worst_p99 = joins.iter().map(|j| j.p99_ms).fold(0.0, f64::max);
    let errors: u64 = joins.iter().map(|j| j.errors).sum();
    // Each side's median over the rounds: a join's CPU against a /healthz's.
    let median_cpu = |runs: &[Run]| {
        let mut values: Vec<f64> = runs.iter().map(|r| r.server_cpu_us).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (health_cpu, join_cpu) = (median_cpu(&healths), median_cpu(&joins));
    println!(
        "  median ratio {:.1} %, worst join p99 {worst_p99:.1} ms, load after: {}",
        median * 100.0,
        common::load_average()
    );
    println!(
        "  server CPU a request, medians: /healthz {health_cpu:.1} µs, join {join_cpu:.1} µs (a join costs {:.2} /healthz)",
        join_cpu / health_cpu
    );
    let (target, p99_target) = match db {
        common::Database::Sqlite => (0.25, Some(50.0)),
        common::Database::Postgres { .. } => (0.10, None),
    };
    let ok_ratio = median >= target;
    let ok_p99 = p99_target.is_none_or(|t| worst_p99 <= t);
    println!("  target: ≥ {:.0} % of /healthz ... {}", target * 100.0, if ok_ratio { "met" } else { "MISSED" });
    if let Some(t) = p99_target {
        println!("  target: p99 ≤ {t:.0} ms ... {}", if ok_p99 { "met" } else { "MISSED" });
    }
    if errors > 0 {
        println!("  {errors} requests failed: see {}", served.log_path().display());
    }
    served.stop().await;
    if !(ok_ratio && ok_p99) || errors > 0 {
        std::process::exit(1);
    }
}
