//! Several `confctl serve` replicas on one PostgreSQL database, in one process: two servers started on the
//! same fresh database (and the same LiveKit double). One of them leads the background jobs, and the other
//! takes over when it goes; on SQLite the one process always leads. `confctl doctor` lists them from their
//! heartbeat rows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::Row;

use confctl::doctor::Verdict;
use confctl_doubles::webhook::events;
use serde_json::json;

use crate::support::{self, Db, Service, Sse, TestApp, WithLiveKit, require};

/// Waits up to `limit` for `done`; how long it took, or `None` if it never came.
async fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done().then(|| start.elapsed())
}

/// A second replica of `first`: the same configuration (database, LiveKit, files) on its own port.
async fn second_replica(first: &TestApp) -> TestApp {
    TestApp::start(first.config.clone(), first.data_dir.clone()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_one_process_leads() {
    let t = TestApp::spawn(Db::Sqlite, &[]).await;
    assert!(t.app.replica().is_leader());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_another_takes_over_within_ten_seconds() {
    if !require(&[Service::Postgres]) {
        return;
    }
    // A reconciliation interval of an hour: every ListRooms the LiveKit double sees is the pass a replica
    // runs when it becomes the leader.
    let w = WithLiveKit::spawn(Db::Postgres, &[("livekit.reconcile_interval", "1h")]).await;
    let a = &w.t;
    within(Duration::from_secs(10), || a.app.replica().is_leader()).await.expect("the first replica leads");
    assert_eq!(
        within(Duration::from_secs(5), || w.lk.calls_for("ListRooms").len() == 1).await.map(|_| ()),
        Some(()),
        "the new leader reconciled once"
    );
    let b = second_replica(a).await;

    // Two lock attempts of the second replica later, still one leader.
    let start = Instant::now();
    while start.elapsed() < 2 * confctl::replicas::LEADER_RETRY + Duration::from_secs(1) {
        assert!(a.app.replica().is_leader() && !b.app.replica().is_leader(), "exactly the first replica leads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.lk.calls_for("ListRooms").len(), 1, "the replica that does not lead does not reconcile");

    // The leader's lock connection dies while its process runs on (a lost network): the lock is free, and
    // whichever replica asks first leads. The old leader notices at its next check of the connection
    // (LEADER_CHECK), which bounds how long both may believe they lead.
    let killed = sqlx::query(
        "SELECT pg_terminate_backend(pid)::INTEGER AS killed FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(b.app.store().raw_pool_for_tests())
    .await
    .unwrap();
    assert_eq!(killed.len(), 1, "one session holds the leader lock");
    assert_eq!(killed[0].get::<i32, _>("killed"), 1);
    let died = Instant::now();
    let (mut both_since, mut overlap) = (None::<Instant>, Duration::ZERO);
    let taken = within(Duration::from_secs(10), || {
        let (la, lb) = (a.app.replica().is_leader(), b.app.replica().is_leader());
        match (la && lb, both_since) {
            (true, None) => both_since = Some(Instant::now()),
            (false, Some(since)) => {
                overlap += since.elapsed();
                both_since = None;
            }
            _ => {}
        }
        la != lb && w.lk.calls_for("ListRooms").len() == 2
    })
    .await;
    let taken = taken.expect("a replica leads and reconciled within 10 s of the leader's connection dying");
    eprintln!("leader takeover after its connection died: {taken:?} (both believed they led for {overlap:?})");
    assert!(overlap <= confctl::replicas::LEADER_CHECK + Duration::from_millis(500), "{overlap:?}");
    let (leader, other) = if a.app.replica().is_leader() { (w.t, b) } else { (b, w.t) };

    // A leader that stops hands over at once: the other replica leads within one retry.
    leader.stop().await;
    let handed = within(Duration::from_secs(10), || other.app.replica().is_leader())
        .await
        .expect("the remaining replica leads within 10 s of the leader stopping");
    eprintln!("leader takeover after a graceful stop: {handed:?} (leader died {:?} ago)", died.elapsed());
    assert!(handed <= confctl::replicas::LEADER_RETRY + Duration::from_secs(2), "{handed:?}");
    assert!(
        within(Duration::from_secs(5), || w.lk.calls_for("ListRooms").len() == 3).await.is_some(),
        "the new leader reconciled at once"
    );
    other.stop().await;
}

/// Waits until `n` replicas have written their heartbeat rows.
async fn heartbeats(t: &TestApp, n: usize) -> Vec<confctl::store::ReplicaRecord> {
    for _ in 0..100 {
        let rows = t.app.store().replicas_seen_since(0).await.unwrap();
        if rows.len() == n && rows.iter().any(|r| r.leader) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never saw {n} heartbeat rows with a leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_sees_the_replicas_and_warns_when_they_differ() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let a = TestApp::spawn(Db::Postgres, &[]).await;
    let b = second_replica(&a).await;
    let rows = heartbeats(&a, 2).await;
    assert_eq!(rows.iter().filter(|r| r.leader).count(), 1, "{rows:?}");
    assert_eq!(rows[0].config_fingerprint, rows[1].config_fingerprint, "same settings, same fingerprint");
    assert!(rows.iter().all(|r| r.version == env!("CARGO_PKG_VERSION")));
    let check = |checks: Vec<confctl::doctor::Check>| checks.into_iter().find(|c| c.name == "replicas").unwrap();
    let seen = check(confctl::doctor::run(&a.config).await);
    assert_eq!(seen.verdict, Verdict::Ok, "{seen:?}");
    assert!(seen.message.starts_with("2 replica(s) seen"), "{}", seen.message);
    assert!(seen.message.contains(", leader,") && seen.message.contains(&rows[0].id[..8]), "{}", seen.message);

    // A third replica with another join limit: told apart by its settings.
    let mut other = a.config.clone();
    other.rate_limits.joins_per_ip_per_minute = 7;
    let c = TestApp::start(other, a.data_dir.clone()).await;
    heartbeats(&a, 3).await;
    let differs = check(confctl::doctor::run(&a.config).await);
    assert_eq!(differs.verdict, Verdict::Warn, "{differs:?}");
    assert!(differs.message.contains("different settings"), "{}", differs.message);
    c.stop().await;
    let rows = heartbeats(&a, 2).await;
    assert_eq!(rows.len(), 2, "a replica that stops removes its row");

    // A replica whose files go to a directory of its own (not the one the others mount).
    let mut apart = a.config.clone();
    let own_dir = tempfile::tempdir().unwrap();
    apart.files.local_dir = Some(own_dir.path().to_path_buf());
    let d = TestApp::start(apart, a.data_dir.clone()).await;
    let rows = heartbeats(&a, 3).await;
    let d_id = rows.iter().find(|r| r.id == d.app.replica().id()).unwrap().id[..8].to_owned();
    let apart = check(confctl::doctor::run(&a.config).await);
    assert_eq!(apart.verdict, Verdict::Warn, "{apart:?}");
    assert!(apart.message.contains("does not hold what replica(s)") && apart.message.contains(&d_id), "{apart:?}");
    assert!(apart.hint.as_deref().unwrap().contains("files.local_dir"));
    d.stop().await;
    let rows = heartbeats(&a, 2).await;
    assert_eq!(check(confctl::doctor::run(&a.config).await).verdict, Verdict::Ok, "{rows:?}");

    // A replica of another version (as during a rolling upgrade).
    let mut older = rows[0].clone();
    older.id = "older-replica".into();
    older.version = "0.0.9".into();
    older.leader = false;
    older.last_seen_at = confctl::time::now_ms();
    a.app.store().beat(&older).await.unwrap();
    let versions = check(confctl::doctor::run(&a.config).await);
    assert_eq!(versions.verdict, Verdict::Warn, "{versions:?}");
    assert!(versions.message.contains("different versions") && versions.message.contains("0.0.9"));
    b.stop().await;
    a.stop().await;
}

#[test]
fn the_fingerprint_covers_shared_settings_only() {
    let load = |pairs: &[(&str, &str)]| {
        let env = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let config = confctl::config::load(&confctl::config::Sources { env, ..Default::default() }).unwrap();
        let live = confctl::config::live::Live::new(&config).get();
        confctl::replicas::config_fingerprint(&config, &live)
    };
    let base = load(&[]);
    assert_eq!(base, load(&[("CONFCTL_LISTEN", "0.0.0.0:9000"), ("CONFCTL_DATA_DIR", "/srv/b")]), "per replica");
    assert_eq!(base, load(&[("CONFCTL_LIVEKIT__API_SECRET", "another-secret-long-enough")]), "secrets are left out");
    assert_ne!(base, load(&[("CONFCTL_LIVEKIT__URL", "http://livekit.example:7880")]));
    assert_ne!(base, load(&[("CONFCTL_RATE_LIMITS__CHAT_MESSAGES_PER_MINUTE", "3")]));
}

/// How many answers had each status.
fn by_status(answers: Vec<reqwest::Result<reqwest::Response>>) -> BTreeMap<u16, usize> {
    let mut counted = BTreeMap::new();
    for r in answers {
        *counted.entry(r.unwrap().status().as_u16()).or_default() += 1;
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_guesses_spread_over_two_replicas_meet_one_limit() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let w = WithLiveKit::spawn(Db::Postgres, &[("trusted_proxies", "127.0.0.1/32")]).await;
    let b = second_replica(&w.t).await;
    let ada = w.t.client();
    ada.register("ada@uni.edu", "Ada").await;
    let (s, room) = ada.post("/api/rooms", json!({"name": "PIN storm", "pin": "97531"})).await;
    assert_eq!(s, 201, "{room}");
    let (id, code) = (room["id"].as_str().unwrap(), room["inviteCode"].as_str().unwrap());
    let urls = [format!("{}/api/rooms/{id}/join", w.t.base), format!("{}/api/rooms/{id}/join", b.base)];
    let http = reqwest::Client::new();
    let fire = |i: usize, ip: String, fp: String| {
        http.post(&urls[i % 2])
            .header("x-forwarded-for", ip)
            .json(&json!({"displayName": "Mallory", "sessionFingerprint": fp, "pin": "11111", "inviteCode": code}))
            .send()
    };
    // One address, a new browser each time, every other guess on the other replica: the per-address limit
    // (5) holds for both together — per process it would let 10 through.
    let answers =
        futures::future::join_all((0..40).map(|i| fire(i, "198.51.100.1".into(), format!("fp-storm-{i:04}-0000000"))))
            .await;
    let counted = by_status(answers);
    assert_eq!((counted.get(&403), counted.get(&429)), (Some(&5), Some(&35)), "{counted:?}");
    // One browser from many addresses, on both replicas: the per-guest limit (5) the same way.
    let answers =
        futures::future::join_all((0..40).map(|i| fire(i, format!("203.0.113.{i}"), "fp-one-browser-000000".into())))
            .await;
    let counted = by_status(answers);
    assert_eq!((counted.get(&403), counted.get(&429)), (Some(&5), Some(&35)), "{counted:?}");
    let audit = support::audit_of(&w.t.app, None, "room.pin_failed", 100).await;
    assert_eq!(audit.len(), 10, "exactly ten PINs were checked on the two replicas together");
    b.stop().await;
    w.t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_limiter_counts_exactly_across_connections() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let t = TestApp::spawn(Db::Postgres, &[]).await;
    // A second process's view: its own store (own pool) on the same database.
    let other = confctl::store::Store::connect(&t.config.effective_database_url()).await.unwrap();
    let limiters = [confctl::ratelimit::for_store(t.app.store()), confctl::ratelimit::for_store(&other)];
    let minute = Duration::from_secs(60);
    let tries = futures::future::join_all((0..120).map(|i| limiters[i % 2].acquire("exact", 50, minute))).await;
    let (taken, refused): (Vec<_>, Vec<_>) = tries.into_iter().partition(Result::is_ok);
    assert_eq!((taken.len(), refused.len()), (50, 70));
    for err in refused {
        let Err(confctl::Error::RateLimited { retry_after }) = &err else { panic!("not a rate limit: {err:?}") };
        assert!(*retry_after > Duration::from_secs(50) && *retry_after <= minute, "{retry_after:?}");
    }
    // Keys under different limits, asked at once and in any order, each meet their own limit.
    let mixed = [("mixed-a", 5u32), ("mixed-b", 7), ("mixed-c", 3)];
    let tries = futures::future::join_all((0..90).map(|i| {
        let (key, limit) = mixed[(i * 7) % 3];
        let limiter = &limiters[i % 2];
        async move { (key, limiter.acquire(key, limit, minute).await.is_ok()) }
    }))
    .await;
    for (key, limit) in mixed {
        let taken = tries.iter().filter(|(k, ok)| *k == key && *ok).count();
        assert_eq!(taken, limit as usize, "{key}");
    }
    // A slot handed back on one replica frees a place for the other.
    let slot = taken.into_iter().next().unwrap().unwrap();
    limiters[0].release(slot).await;
    let again = limiters[1].acquire("exact", 50, minute).await.expect("the handed-back place");
    assert!(limiters[1].acquire("exact", 50, minute).await.is_err());
    // A window ends, and a late release does not refund the next one.
    let short = Duration::from_millis(300);
    let old = limiters[0].acquire("short", 1, short).await.unwrap();
    assert!(limiters[1].acquire("short", 1, short).await.is_err());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _new = limiters[1].acquire("short", 1, short).await.expect("a new window");
    limiters[0].release(old).await;
    assert!(limiters[0].acquire("short", 1, short).await.is_err(), "the old slot did not free the new window");
    drop(again);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(t.app.store().prune_attempts().await.unwrap() >= 1, "ended windows are pruned");
    other.close().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_to_two_replicas_is_processed_once() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let w = WithLiveKit::spawn(Db::Postgres, &[]).await;
    let b = second_replica(&w.t).await;
    let urls = [w.webhook_url(), format!("{}/api/webhooks/livekit", b.base)];
    let ada = w.t.client();
    ada.register("ada@uni.edu", "Ada").await;
    let (s, room) = ada.post("/api/rooms", json!({"name": "Twice"})).await;
    assert_eq!(s, 201, "{room}");
    let id = room["id"].as_str().unwrap();
    let lk_name = room["livekitRoomName"].as_str().unwrap().to_owned();
    let lk_room = w.lk.add_room(&lk_name);

    // A guest, let in and then kicked.
    let ann = w.t.client();
    let (s, joined) = ann
        .post(
            &format!("/api/rooms/{id}/join"),
            json!({"displayName": "Ann", "sessionFingerprint": "fp-ann-0123456789abcdef", "inviteCode": w.t.invite_code(id).await}),
        )
        .await;
    assert_eq!(s, 201, "{joined}");
    let session = joined["sessionId"].as_str().unwrap();
    let ann_record =
        w.t.app.store().participant_by_session(&confctl::ids::session_hash(session)).await.unwrap().unwrap();
    if joined["status"] == "PENDING" {
        let (s, _) = ada.post(&format!("/api/rooms/{id}/lobby/{}/approve", ann_record.id), json!({})).await;
        assert_eq!(s, 200);
    }
    let identity = ann_record.identity.clone();
    w.lk.add_participant(&lk_name, &identity, "Ann", r#"{"role":"guest"}"#, None);
    let (s, _) = ada.post(&format!("/api/rooms/{id}/participants/{identity}/kick"), json!({})).await;
    assert_eq!(s, 200);

    // She gets back in with a token issued just before (LiveKit says participant_joined), several times;
    // each delivery lands on both replicas at once. Only the replica that records the event removes her.
    for round in 1..=8 {
        w.lk.clear_calls();
        let info = w.lk.add_participant(&lk_name, &identity, "Ann", r#"{"role":"guest"}"#, None);
        let event = events::participant_joined(&lk_room, &info);
        let deliveries = futures::future::join_all(urls.iter().map(|url| w.lk.send_webhook(url, event.clone()))).await;
        for d in deliveries {
            assert_eq!(d.unwrap().status, Some(200), "round {round}");
        }
        assert_eq!(w.lk.calls_for("RemoveParticipant").len(), 1, "round {round}: removed once, not once per replica");
    }

    // The lecture ends: one `lecture.finished`, however many replicas the delivery reached.
    let event = events::room_finished(&lk_room);
    let deliveries = futures::future::join_all(urls.iter().map(|url| w.lk.send_webhook(url, event.clone()))).await;
    assert!(deliveries.into_iter().all(|d| d.unwrap().status == Some(200)));
    let finished = support::audit_of(&w.t.app, None, "lecture.finished", 10).await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    b.stop().await;
    w.t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_take_turns_migrating() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let url = confctl::secret::Secret::new(crate::support::fresh_postgres_url().await);
    let (a, b) = tokio::join!(confctl::store::Store::connect(&url), confctl::store::Store::connect(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ran_a, ran_b) = tokio::join!(a.migrate(), b.migrate());
    let (ran_a, ran_b) = (ran_a.unwrap(), ran_b.unwrap());
    assert_eq!(ran_a + ran_b, confctl::store::migrations::MIGRATIONS.len(), "each migration ran once");
    a.ensure_migrated().await.unwrap();
    a.close().await;
    b.close().await;
}

/// Two replicas on one fresh database (the first with its LiveKit double), and a host who registered and made
/// a room through the first: the host there, the same host (same cookies) acting through the second, and the
/// room's id.
async fn host_with_a_room_on_two_replicas() -> (WithLiveKit, TestApp, support::Browser, support::Browser, String) {
    let w = WithLiveKit::spawn(Db::Postgres, &[]).await;
    let b = second_replica(&w.t).await;
    let ada = w.t.client();
    ada.register("ada@uni.edu", "Ada").await;
    let (s, room) = ada.post("/api/rooms", json!({"name": "Two doors"})).await;
    assert_eq!(s, 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    let ada_on_b = support::Browser { http: ada.http.clone(), base: b.base.clone(), app: b.app.clone() };
    (w, b, ada, ada_on_b, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lobby_decision_on_one_replica_reaches_streams_on_the_other_at_once() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let (w, b, ada, ada_on_b, id) = host_with_a_room_on_two_replicas().await;
    let a = &w.t;
    let mut host_on_a = Sse::open(&ada.http, &format!("{}/api/rooms/{id}/events", a.base)).await;
    assert_eq!(host_on_a.next().await.unwrap().0, "lobby");

    // Three guests join through replica B and wait on streams served by replica A.
    let mut waiting = Vec::new();
    for i in 0..3 {
        let guest = b.client();
        let body = json!({"displayName": format!("Guest {i}"), "sessionFingerprint": format!("fp-two-doors-{i}-000000"), "inviteCode": b.invite_code(&id).await});
        let (s, joined) = guest.post(&format!("/api/rooms/{id}/join"), body).await;
        assert_eq!((s, joined["status"].as_str()), (201, Some("PENDING")), "{joined}");
        let session = joined["sessionId"].as_str().unwrap();
        let record = b.app.store().participant_by_session(&confctl::ids::session_hash(session)).await.unwrap().unwrap();
        let url = format!("{}/api/rooms/{id}/lobby/stream?sessionId={session}", a.base);
        let mut stream = Sse::open(&guest.http, &url).await;
        assert_eq!(stream.next().await.unwrap().1["status"], "PENDING");
        waiting.push((record.id, stream));
    }

    // One approval on B: the guest waiting on A has its token at once, not at the 30 s re-read.
    let (first_id, mut first) = waiting.remove(0);
    let asked = Instant::now();
    let (s, _) = ada_on_b.post(&format!("/api/rooms/{id}/lobby/{first_id}/approve"), json!({})).await;
    assert_eq!(s, 200);
    let (_, approved) = first.next().await.unwrap();
    let took = asked.elapsed();
    assert_eq!(approved["status"], "APPROVED");
    assert!(approved["token"].is_string());
    eprintln!("an approval on replica B reached the guest's stream on replica A after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // "Approve all" on B reaches the others on A, and the host's stream on A hears the decisions.
    let (s, _) = ada_on_b.post(&format!("/api/rooms/{id}/lobby/approve-all"), json!({})).await;
    assert_eq!(s, 200);
    for (_, stream) in &mut waiting {
        assert_eq!(stream.next().await.unwrap().1["status"], "APPROVED");
    }
    let mut decided = std::collections::BTreeSet::new();
    while decided.len() < 3 {
        let (name, event) = host_on_a.next().await.unwrap();
        if name == "lobby_decided" {
            for entry in event["entries"].as_array().unwrap() {
                assert_eq!(entry["status"], "APPROVED");
                decided.insert(entry["id"].as_str().unwrap().to_owned());
            }
        }
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_admin_events_cross_replicas_and_resume_on_either() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let (w, b, ada, ada_on_b, id) = host_with_a_room_on_two_replicas().await;
    let a = &w.t;
    let host_events = |base: &str| format!("{base}/api/rooms/{id}/events");

    let mut host_on_a = Sse::open(&ada.http, &host_events(&a.base)).await;
    let (name, _, snapshot_id) = host_on_a.next_with_id().await.unwrap();
    assert_eq!(name, "lobby");
    let snapshot_id = snapshot_id.expect("the snapshot says which event it is as of");

    // A host event made on B (the lock) and one from a guest waiting on B's stream reach the host on A.
    let (s, _) = ada_on_b.post(&format!("/api/rooms/{id}/lock"), json!({})).await;
    assert_eq!(s, 200);
    let (name, locked, locked_id) = host_on_a.next_with_id().await.unwrap();
    assert_eq!((name.as_str(), locked["locked"].as_bool()), ("room_updated", Some(true)), "{locked}");
    let locked_id = locked_id.unwrap();
    assert!(locked_id > snapshot_id);
    let (s, _) = ada_on_b.post(&format!("/api/rooms/{id}/unlock"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(host_on_a.next().await.unwrap().0, "room_updated");
    let guest = b.client();
    let body = json!({"displayName": "Grace", "sessionFingerprint": "fp-resume-grace-000000", "inviteCode": b.invite_code(&id).await});
    let (s, joined) = guest.post(&format!("/api/rooms/{id}/join"), body).await;
    assert_eq!((s, joined["status"].as_str()), (201, Some("PENDING")), "{joined}");
    let session = joined["sessionId"].as_str().unwrap().to_owned();
    let mut grace =
        Sse::open(&guest.http, &format!("{}/api/rooms/{id}/lobby/stream?sessionId={session}", b.base)).await;
    assert_eq!(grace.next().await.unwrap().1["status"], "PENDING");
    let (name, waiting, waiting_id) = host_on_a.next_with_id().await.unwrap();
    assert_eq!(name, "guest_waiting", "{waiting}");
    let waiting_id = waiting_id.unwrap();
    let entry = waiting["entry"]["id"].as_str().unwrap().to_owned();
    drop(host_on_a);

    // While the host's page is away, B approves Grace and locks the room.
    let (s, _) = ada_on_b.post(&format!("/api/rooms/{id}/lobby/{entry}/approve"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(grace.next().await.unwrap().1["status"], "APPROVED");
    let (s, _) = ada_on_b.post(&format!("/api/rooms/{id}/lock"), json!({})).await;
    assert_eq!(s, 200);

    // The page comes back on the other replica with the id of its last event: the missed events, in order,
    // and no snapshot.
    let resume = |last: u64| {
        ada.http
            .get(host_events(&b.base))
            .header("last-event-id", last.to_string())
            .header("accept", "text/event-stream")
    };
    let response = resume(waiting_id).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut resumed = Sse::from_response(response);
    let (name, decided, decided_id) = resumed.next_with_id().await.unwrap();
    assert_eq!(name, "lobby_decided", "{decided}");
    assert_eq!(decided["entries"][0]["id"], entry.as_str());
    assert_eq!(decided["entries"][0]["status"], "APPROVED");
    let (name, relocked, relocked_id) = resumed.next_with_id().await.unwrap();
    assert_eq!((name.as_str(), relocked["locked"].as_bool()), ("room_updated", Some(true)), "{relocked}");
    assert!(waiting_id < decided_id.unwrap() && decided_id < relocked_id);

    // An id this installation never gave out: a snapshot first, as on a first connect.
    let mut unknown = Sse::from_response(resume(relocked_id.unwrap() + 1_000_000).send().await.unwrap());
    assert_eq!(unknown.next().await.unwrap().0, "lobby");

    // The admin feed has the same events under the same ids on both replicas.
    let feed = |base: &str| format!("{base}/api/admin/events?lastEventId={}", locked_id - 1);
    let mut seen = Vec::new();
    for base in [&a.base, &b.base] {
        let mut admin = Sse::open(&ada.http, &feed(base)).await;
        let mut events = Vec::new();
        while events.last().and_then(|(id, _)| *id) != relocked_id {
            let (name, _, event_id) = admin.next_with_id().await.unwrap();
            events.push((event_id, name));
        }
        seen.push(events);
    }
    assert_eq!(seen[0], seen[1], "both replicas' admin feeds");
    assert!(seen[0].iter().any(|(_, name)| name == "audit"), "{:?}", seen[0]);

    // Chat posted through B goes to the room through LiveKit (whichever replica the room's people came
    // through) and is in the history A serves.
    let (_, room) = ada.get(&format!("/api/rooms/{id}")).await;
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    let (s, posted) = ada_on_b.post(&format!("/api/rooms/{id}/chat"), json!({"text": "Hello from B"})).await;
    assert_eq!((s, posted["delivered"].as_bool()), (201, Some(true)), "{posted}");
    let sent: Vec<serde_json::Value> =
        w.lk.sent_data(&lk_room.name)
            .iter()
            .filter(|d| d.topic.as_deref() == Some("chat"))
            .map(|d| serde_json::from_slice(&d.data).unwrap())
            .collect();
    assert_eq!(sent, vec![posted["message"].clone()]);
    let (s, history) = ada.get(&format!("/api/rooms/{id}/chat")).await;
    assert_eq!(s, 200);
    assert_eq!(history["messages"].as_array().unwrap().last(), Some(&posted["message"]));
    b.stop().await;
}

/// Locks `room` with its event, in one change that fails after both when `fail`.
async fn lock_as_one_change(app: &confctl::app::App, room: &str, fail: bool) -> confctl::Result<()> {
    use confctl::events::{HostEvent, atomically};
    let store = app.store();
    atomically(app, async {
        store.set_room_locked(room, true).await?;
        app.hub().to_hosts(room, HostEvent::RoomUpdated { locked: true, guests_muted: false });
        // Nothing of the change is visible outside it before it commits: neither the lock nor its event.
        assert!(!store.room_by_id(room).await?.locked);
        assert!(store.room_events_after(room, 0, 100).await?.iter().all(|e| !e.payload.contains("room_updated")));
        if fail {
            return Err(confctl::Error::conflict("test", "fails after the write and the event"));
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_and_its_events_commit_together_or_not_at_all() {
    if !require(&[Service::Postgres]) {
        return;
    }
    let t = TestApp::spawn(Db::Postgres, &[]).await;
    let ada = t.client();
    ada.register("ada@uni.edu", "Ada").await;
    let (_, room) = ada.post("/api/rooms", json!({"name": "Atomic"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let (app, store) = (&t.app, t.app.store());
    let locks = || async {
        store
            .room_events_after(&id, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.payload.contains("room_updated"))
            .collect::<Vec<_>>()
    };

    // A change that fails after its write and its event: neither stays.
    assert!(lock_as_one_change(app, &id, true).await.is_err());
    assert!(!store.room_by_id(&id).await.unwrap().locked);
    assert!(locks().await.is_empty(), "an event of a change that was undone");

    // The same change succeeding: both, and the event is delivered here under its outbox id.
    let (mut host_events, _) = app.hub().subscribe_host(&id);
    lock_as_one_change(app, &id, false).await.unwrap();
    assert!(store.room_by_id(&id).await.unwrap().locked);
    let stored = locks().await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let delivered = tokio::time::timeout(Duration::from_secs(5), host_events.recv()).await.unwrap().unwrap();
    assert_eq!(delivered.id, u64::try_from(stored[0].id).unwrap());
    assert_eq!(delivered.event.name(), "room_updated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_assistant_tells_one_replica_every_replicas_monitor_shows() {
    if !require(&[Service::Postgres]) {
        return;
    }
    use confctl::audit::Actor;
    use confctl::store::ApiTokenScope;
    let w = WithLiveKit::spawn(Db::Postgres, &[]).await;
    let a = &w.t;
    let b = second_replica(a).await;
    let host = a.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, read) =
        confctl::admin::tokens::create(&a.app, &Actor::cli(), "watch", ApiTokenScope::Read, None).await.unwrap();
    let (_, agent) = confctl::accounts::agent_tokens::create(&a.app, &Actor::cli(), "gpu").await.unwrap();
    let (_, room) = host.post("/api/rooms", json!({"name": "Optics", "lobbyEnabled": false})).await;
    let (id, lecture) = (room["id"].as_str().unwrap().to_owned(), room["lectureId"].as_str().unwrap().to_owned());
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_room)).await.unwrap();
    let on_b = |field: &'static str| {
        let (base, read, id) = (b.base.clone(), read.clone(), id.clone());
        async move {
            let (_, snap) = support::with_token(&base, &read, "GET", "/api/admin/rooms", None).await;
            let row = snap["rooms"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap().clone();
            row[field].clone()
        }
    };
    let eventually = |field: &'static str, want: serde_json::Value| {
        let on_b = &on_b;
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let got = on_b(field).await;
                if got == want {
                    return;
                }
                assert!(Instant::now() < deadline, "{field} on replica B: {got}, not {want}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // The assistant talks to A only; B's monitor shows what it said.
    let problem = "speech to text fails: connection refused";
    let status = format!("/api/agent/lectures/{lecture}/status");
    let (s, _) = support::with_token(&a.base, &agent, "POST", &status, Some(json!({ "problem": problem }))).await;
    assert_eq!(s, 200);
    eventually("assistant", json!("failing")).await;
    eventually("assistantProblem", json!(problem)).await;
    let caption = json!({"segmentId": "s1", "speakerIdentity": "h_ada", "speakerName": "Ada", "text": "Light bends.",
        "final": true, "startMs": 0, "endMs": 900, "language": "en", "provider": "whisper"});
    let captions = format!("/api/agent/lectures/{lecture}/captions");
    let (s, _) = support::with_token(&a.base, &agent, "POST", &captions, Some(caption)).await;
    assert_eq!(s, 202);
    eventually("assistant", json!("captioning")).await;
    assert!(on_b("lastCaptionAt").await.is_string());
    b.stop().await;
}
