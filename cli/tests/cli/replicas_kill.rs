//! Two real `confctl serve` processes on one PostgreSQL database (issue 17): the leader is killed with
//! SIGKILL (no shutdown, no goodbye to the database) and the other replica takes over the background jobs
//! within 10 s — observed as the reconciliation pass it runs on becoming the leader, a `ListRooms` call on its
//! own LiveKit double. `confctl doctor` lists both replicas while they run (and that their LiveKit differs).

use std::time::{Duration, Instant};

use confctl_doubles::services::{Service, fresh_postgres_url, require};

use crate::support::{Served, run, stdout};

/// Waits up to `limit` for `done`; how long it took.
async fn within(limit: Duration, done: impl Fn() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_replica_leads_within_ten_seconds_of_a_kill_9() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let url = fresh_postgres_url().await;
    // An hour between regular passes: every ListRooms is the pass of a replica that just became the leader.
    let env = [("CONFCTL_LIVEKIT__RECONCILE_INTERVAL", "1h")];
    let mut a = Served::start_with(Some(url.clone()), &env).await;
    let reconciled = |s: &Served| s.lk.calls_for("ListRooms").len();
    within(Duration::from_secs(10), || reconciled(&a) == 1).await.expect("the first replica leads and reconciles");
    let b = Served::start_with(Some(url), &env).await;

    let doctor = run(b.confctl().args(["doctor", "--json"]));
    let checks: serde_json::Value = serde_json::from_str(&stdout(&doctor)).unwrap();
    let replicas = checks.as_array().unwrap().iter().find(|c| c["name"] == "replicas").unwrap().clone();
    // Each `Served` talks to a LiveKit double of its own, so their `livekit.url` differs — and doctor says so.
    assert_eq!(replicas["verdict"], "warn", "{replicas}");
    let message = replicas["message"].as_str().unwrap();
    assert!(message.contains("different settings") && message.contains("2 replica(s) seen"), "{message}");

    // The second replica waits while the first leads.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!((reconciled(&a), reconciled(&b)), (1, 0), "only the leader reconciles");

    a.kill();
    let took = within(Duration::from_secs(10), || reconciled(&b) == 1)
        .await
        .expect("the other replica reconciles within 10 s of the leader's kill -9");
    eprintln!("leader killed with SIGKILL: the other replica reconciled after {took:?}");
}
