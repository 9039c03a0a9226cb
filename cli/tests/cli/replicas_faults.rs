//! Two real `confctl serve` processes on one PostgreSQL database (issue 17), and what happens to them when
//! things break: the leader is killed with SIGKILL (no shutdown, no goodbye to the database) and the other
//! replica takes over the background jobs within 10 s — observed as the reconciliation pass it runs on
//! becoming the leader, a `ListRooms` call on its own LiveKit double; a replica is killed in the middle of a
//! 1,000-guest storm and its guests carry on on the other; PostgreSQL restarts under 500 waiting guests.
//! `confctl doctor` lists both replicas while they run (and that their LiveKit differs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confctl_doubles::services::{Service, fresh_postgres_url, require};
use confctl_doubles::sse::Sse;
use serde_json::{Value, json};

use crate::own_postgres::OwnPostgres;
use crate::support::{Client, Served, identity_of, run, stdout};

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

/// Joins from one address are many in these tests: the per-address join limit is raised, as an operator
/// could.
const MANY_JOINS: (&str, &str) = ("CONFCTL_RATE_LIMITS__JOINS_PER_IP_PER_MINUTE", "100000");

/// A host with a room with a lobby, made through `served`: (host, room id, invite code).
async fn host_and_room(served: &Served) -> (Client, String, String) {
    let host = served.client();
    host.register("ada@uni.edu", "Prof. Ada").await;
    let (st, room) = host.post("/api/rooms", json!({"name": "Storm", "lobbyEnabled": true})).await;
    assert_eq!(st, 201, "{room}");
    (host, room["id"].as_str().unwrap().to_owned(), room["inviteCode"].as_str().unwrap().to_owned())
}

/// A guest's join through `base`: the session secret, `None` when no answer came (a server killed).
async fn join(http: &reqwest::Client, base: &str, room: &str, invite: &str, name: &str) -> Option<String> {
    let body =
        json!({"inviteCode": invite, "displayName": name, "sessionFingerprint": format!("fp-{name}-0123456789")});
    let response = http.post(format!("{base}/api/rooms/{room}/join")).json(&body).send().await.ok()?;
    assert_eq!(response.status(), 201, "join of {name} through {base}");
    let body: Value = response.json().await.ok()?;
    Some(body["sessionId"].as_str().unwrap().to_owned())
}

/// A guest's lobby stream on `base` and its first status; `None` when the server did not answer.
async fn wait_on(http: &reqwest::Client, base: &str, room: &str, session: &str) -> Option<(Sse, Value)> {
    let url = format!("{base}/api/rooms/{room}/lobby/stream?sessionId={session}");
    let response = http.get(url).header("accept", "text/event-stream").send().await.ok()?;
    assert_eq!(response.status(), 200, "lobby stream on {base}");
    let mut stream = Sse::from_response(response);
    let (name, status) = stream.next().await?;
    assert_eq!(name, "status");
    Some((stream, status))
}

/// One guest of a storm: where it waits, and what it was told.
struct Guest {
    session: String,
    /// Index of the replica whose stream it waits on.
    on: usize,
    stream: Option<Sse>,
    /// The identity of the first token it was given.
    admitted_as: Option<String>,
}

impl Guest {
    fn hear(&mut self, status: &Value) {
        if status["status"] == "APPROVED" {
            let identity = identity_of(status["token"].as_str().expect("an approval carries a token"));
            match &self.admitted_as {
                None => self.admitted_as = Some(identity),
                // Admitted once: the same identity whatever replica says it again.
                Some(before) => assert_eq!(before, &identity, "a guest admitted twice"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_during_a_storm_loses_no_guest_and_no_approval() {
    const GUESTS: usize = 1000;
    const WORKERS: usize = 20;
    if !require(&[Service::Postgres]) {
        return;
    }
    let url = fresh_postgres_url().await;
    let mut a = Served::start_with(Some(url.clone()), &[MANY_JOINS]).await;
    let b = Served::start_with(Some(url), &[MANY_JOINS]).await;
    let bases = [a.base(), b.base()];
    let (host, room, invite) = host_and_room(&b).await;
    let http = reqwest::Client::new();

    // The storm: guest i joins through replica i % 2 and waits on a stream there; a guest whose replica is
    // gone joins (or waits) on the other, as a browser behind a load balancer would.
    let guests: Arc<Mutex<Vec<Guest>>> = Arc::default();
    let unanswered = Arc::new(Mutex::new(0usize));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, bases, room, invite) = (http.clone(), bases.clone(), room.clone(), invite.clone());
        let (guests, unanswered) = (guests.clone(), unanswered.clone());
        workers.push(tokio::spawn(async move {
            for i in (w..GUESTS).step_by(WORKERS) {
                let name = format!("g{i:04}");
                let mut on = i % 2;
                let session = match join(&http, &bases[on], &room, &invite, &name).await {
                    Some(session) => session,
                    None => {
                        *unanswered.lock().unwrap() += 1;
                        on = 1;
                        join(&http, &bases[on], &room, &invite, &name).await.expect("the other replica answers")
                    }
                };
                let (stream, first) = match wait_on(&http, &bases[on], &room, &session).await {
                    Some(waiting) => waiting,
                    None => {
                        on = 1;
                        wait_on(&http, &bases[on], &room, &session).await.expect("the other replica streams")
                    }
                };
                let mut guest = Guest { session, on, stream: Some(stream), admitted_as: None };
                guest.hear(&first);
                guests.lock().unwrap().push(guest);
            }
        }));
    }

    // Approve-all on B while the storm goes on, then A is killed right after.
    while guests.lock().unwrap().len() < GUESTS * 2 / 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (st, first_approval) = host.post(&format!("/api/rooms/{room}/lobby/approve-all"), json!({})).await;
    assert_eq!(st, 200, "{first_approval}");
    a.kill();
    for worker in workers {
        worker.await.unwrap();
    }
    let mut guests = std::mem::take(&mut *guests.lock().unwrap());
    assert_eq!(guests.len(), GUESTS, "every guest joined, on one replica or the other");

    // The guests that waited on A: their stream broke (some heard their approval before); they reconnect on
    // B with their session, and B tells each where it stands.
    let mut moved = 0;
    for guest in guests.iter_mut().filter(|g| g.on == 0) {
        if let Some(mut stream) = guest.stream.take() {
            while let Some((_, status)) = stream.next().await {
                guest.hear(&status);
            }
        }
        let (stream, status) = wait_on(&http, &bases[1], &room, &guest.session).await.expect("B answers");
        guest.hear(&status);
        guest.stream = Some(stream);
        guest.on = 1;
        moved += 1;
    }

    // The rest are let in on B; every guest ends with a token, each under an identity of its own.
    let (st, second_approval) = host.post(&format!("/api/rooms/{room}/lobby/approve-all"), json!({})).await;
    assert_eq!(st, 200, "{second_approval}");
    for guest in &mut guests {
        while guest.admitted_as.is_none() {
            let (_, status) =
                guest.stream.as_mut().unwrap().next().await.expect("the approval reaches the guest's stream");
            guest.hear(&status);
        }
    }
    let identities: BTreeSet<&String> = guests.iter().filter_map(|g| g.admitted_as.as_ref()).collect();
    assert_eq!(identities.len(), GUESTS, "one identity per guest");
    // Each approval was made once: the two approve-alls let in every guest, and at most the joins A stored
    // without answering them (whose guests joined again on B) besides.
    let approvals = first_approval["approved"].as_u64().unwrap() + second_approval["approved"].as_u64().unwrap();
    let unanswered = *unanswered.lock().unwrap();
    assert!(
        (GUESTS as u64..=(GUESTS + unanswered) as u64).contains(&approvals),
        "{approvals} approvals for {GUESTS} guests ({unanswered} joins unanswered by the killed replica)"
    );
    let (st, lobby) = host.get(&format!("/api/rooms/{room}/lobby")).await;
    assert_eq!(st, 200, "{lobby}");
    assert_eq!(lobby["entries"].as_array().map(Vec::len), Some(0), "{lobby}");
    println!(
        "replica killed after approve-all #1 ({} approved); {moved} guests moved to the other replica; {unanswered} joins unanswered; approve-all #2: {}",
        first_approval["approved"], second_approval["approved"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarting_under_500_waiting_guests_loses_nothing() {
    const GUESTS: usize = 500;
    if !require(&[Service::Postgres]) {
        return;
    }
    let Some(pg) = OwnPostgres::start() else {
        panic!("PostgreSQL's binaries are not installed (scripts/test-services installs them)");
    };
    let a = Served::start_with(Some(pg.url()), &[MANY_JOINS]).await;
    let b = Served::start_with(Some(pg.url()), &[MANY_JOINS]).await;
    let bases = [a.base(), b.base()];
    let (host, room, invite) = host_and_room(&a).await;
    let http = reqwest::Client::new();
    let mut host_stream = Sse::from_response(
        host.http
            .get(format!("{}/api/rooms/{room}/events", bases[0]))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(host_stream.next().await.unwrap().0, "lobby");

    let mut guests = Vec::new();
    for i in 0..GUESTS {
        let on = i % 2;
        let session = join(&http, &bases[on], &room, &invite, &format!("w{i:03}")).await.unwrap();
        let (stream, first) = wait_on(&http, &bases[on], &room, &session).await.unwrap();
        assert_eq!(first["status"], "PENDING");
        guests.push((session, stream));
    }

    // The database goes away: both replicas say they are not ready, and a decision cannot be made.
    pg.stop();
    let ready = |base: &str| {
        let (http, url) = (http.clone(), format!("{base}/readyz"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    for base in &bases {
        let deadline = Instant::now() + Duration::from_secs(15);
        while ready(base).await != 503 {
            assert!(Instant::now() < deadline, "{base}/readyz still says ready with the database stopped");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (st, body) = host.post(&format!("/api/rooms/{room}/lobby/approve-all"), json!({})).await;
    assert_eq!(st, 503, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Back: both replicas are ready again by themselves, the streams that waited through it are still open,
    // and approve-all on B reaches every guest on both replicas and the host's stream on A.
    pg.start_again();
    let restarted = Instant::now();
    for base in &bases {
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready(base).await != 200 {
            assert!(Instant::now() < deadline, "{base}/readyz not ready 30 s after the database came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("both replicas ready {:?} after PostgreSQL was back", restarted.elapsed());
    let host_on_b = Client { http: host.http.clone(), base: bases[1].clone() };
    let (st, approved) = host_on_b.post(&format!("/api/rooms/{room}/lobby/approve-all"), json!({})).await;
    assert_eq!(st, 200, "{approved}");
    assert_eq!(approved["approved"], GUESTS, "{approved}");
    let asked = Instant::now();
    let mut identities = BTreeSet::new();
    for (session, stream) in &mut guests {
        let (_, status) = stream.next().await.unwrap_or_else(|| panic!("the stream of {session} ended"));
        assert_eq!(status["status"], "APPROVED", "{status}");
        identities.insert(identity_of(status["token"].as_str().unwrap()));
    }
    println!("approve-all after the restart reached all {GUESTS} waiting guests in {:?}", asked.elapsed());
    assert_eq!(identities.len(), GUESTS);
    let mut decided: BTreeMap<String, Value> = BTreeMap::new();
    while decided.len() < GUESTS {
        let (name, event) = host_stream.next().await.expect("the host's stream on A stays open");
        if name == "lobby_decided" {
            for entry in event["entries"].as_array().unwrap() {
                decided.insert(entry["id"].as_str().unwrap().to_owned(), entry["status"].clone());
            }
        }
    }
    assert!(decided.values().all(|s| s == "APPROVED"));
}
