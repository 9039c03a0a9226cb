//! What admission promises survives `kill -9` of `serve` in the middle of a lecture-start storm (issue 16):
//! guests join from many workers while the host lets them in one by one and bans one, the server is killed
//! (SIGKILL, no shutdown) at a moment chosen by progress, not by a clock, and restarted on the same
//! database. Every join the server answered is still there, every approval it answered still admits its
//! guest with a token, every ban it answered still refuses, and nobody is admitted twice. SQLite (the
//! group-committing writer) and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use confctl_doubles::services::{Service, fresh_postgres_url, require};
use serde_json::{Value, json};

use crate::support::{Served, identity_of};

/// Workers joining at once, each one guest after another, so joins are in flight when the server dies.
const WORKERS: usize = 16;
const JOINS_PER_WORKER: usize = 250;
/// The server is killed once the host has heard this many approvals answered.
const APPROVALS_BEFORE_KILL: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_survives_kill_9_on_sqlite() {
    storm_killed_and_restarted(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_survives_kill_9_on_postgres() {
    if !require(&[Service::Postgres]) {
        return;
    }
    storm_killed_and_restarted(Some(fresh_postgres_url().await)).await;
}

/// A join the server answered: the guest's name, fingerprint and session secret.
#[derive(Debug, Clone)]
struct Joined {
    fingerprint: String,
    session: String,
}

/// One request that may die with the server: `None` when no answer came.
async fn send(request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.ok()?;
    Some((status, body))
}

fn join_body(invite: &str, name: &str, fingerprint: &str) -> Value {
    json!({"inviteCode": invite, "displayName": name, "sessionFingerprint": fingerprint})
}

async fn storm_killed_and_restarted(database_url: Option<String>) {
    // Every worker joins from 127.0.0.1: the per-address join limit is raised, as an operator could.
    let mut served =
        Served::start_with(database_url, &[("CONFCTL_RATE_LIMITS__JOINS_PER_IP_PER_MINUTE", "100000")]).await;
    let base = served.base();
    let host = served.client();
    host.register("ada@uni.edu", "Prof. Ada").await;
    let (st, room) = host.post("/api/rooms", json!({"name": "Storm", "lobbyEnabled": true})).await;
    assert_eq!(st, 201, "{room}");
    let room_id = room["id"].as_str().unwrap().to_owned();
    let invite = room["inviteCode"].as_str().unwrap().to_owned();
    let guests = reqwest::Client::new();
    let token_of = |session: &str| {
        guests.post(format!("{base}/api/rooms/{room_id}/guest-token")).header("x-confctl-session", session)
    };

    // Before the storm: a troll joins, is let in, and is banned.
    let troll = Joined { fingerprint: "fp-troll-0123456789abcdef".into(), session: String::new() };
    let joined = send(guests.post(format!("{base}/api/rooms/{room_id}/join")).json(&join_body(
        &invite,
        "Troll",
        &troll.fingerprint,
    )))
    .await
    .unwrap();
    assert_eq!(joined.0, 201, "{}", joined.1);
    let troll = Joined { session: joined.1["sessionId"].as_str().unwrap().to_owned(), ..troll };
    let (_, lobby) = host.get(&format!("/api/rooms/{room_id}/lobby")).await;
    let entry = lobby["entries"][0]["id"].as_str().unwrap().to_owned();
    let (st, body) = host.post(&format!("/api/rooms/{room_id}/lobby/{entry}/approve"), json!({})).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = send(token_of(&troll.session)).await.unwrap();
    assert_eq!(st, 200, "{body}");
    let identity = identity_of(body["token"].as_str().unwrap());
    let (st, body) = host.post(&format!("/api/rooms/{room_id}/participants/{identity}/ban"), json!({})).await;
    assert_eq!(st, 201, "{body}");
    let mut banned = vec![troll];

    // The storm: workers join guest after guest; what the server answered is noted.
    let answered: Arc<Mutex<BTreeMap<String, Joined>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (guests, answered, invite) = (guests.clone(), answered.clone(), invite.clone());
        let url = format!("{base}/api/rooms/{room_id}/join");
        workers.push(tokio::spawn(async move {
            for i in 0..JOINS_PER_WORKER {
                let name = format!("Student {w}-{i}");
                let fingerprint = format!("fp-storm-{w:02}-{i:04}-0123456789");
                match send(guests.post(&url).json(&join_body(&invite, &name, &fingerprint))).await {
                    Some((201, body)) => {
                        let session = body["sessionId"].as_str().unwrap().to_owned();
                        answered.lock().unwrap().insert(name, Joined { fingerprint, session });
                    }
                    Some((status, body)) => panic!("join refused with {status}: {body}"),
                    // The server is gone: this worker's storm is over.
                    None => return,
                }
            }
        }));
    }

    // The host lets the waiting in one by one; after some approvals, one admitted guest is banned; then
    // the server is killed in the middle of it all.
    let mut approved: BTreeMap<String, String> = BTreeMap::new();
    let mut storm_ban_done = false;
    while approved.len() < APPROVALS_BEFORE_KILL || !storm_ban_done {
        let (st, lobby) = host.get(&format!("/api/rooms/{room_id}/lobby")).await;
        assert_eq!(st, 200, "{lobby}");
        for entry in lobby["entries"].as_array().unwrap() {
            let id = entry["id"].as_str().unwrap();
            let (st, body) = host.post(&format!("/api/rooms/{room_id}/lobby/{id}/approve"), json!({})).await;
            assert_eq!(st, 200, "{body}");
            approved.insert(entry["displayName"].as_str().unwrap().to_owned(), id.to_owned());
            // Back to the loop's head for the ban, or for the kill.
            if approved.len() >= APPROVALS_BEFORE_KILL / 2 && !storm_ban_done
                || approved.len() >= APPROVALS_BEFORE_KILL && storm_ban_done
            {
                break;
            }
        }
        if !storm_ban_done && approved.len() >= APPROVALS_BEFORE_KILL / 2 {
            // One of the admitted whose join was answered (and so whose session is known).
            let victim = {
                let answered = answered.lock().unwrap();
                approved.keys().find_map(|name| answered.get(name).cloned())
            };
            if let Some(victim) = victim {
                let (st, body) = send(token_of(&victim.session)).await.unwrap();
                assert_eq!(st, 200, "{body}");
                let identity = identity_of(body["token"].as_str().unwrap());
                let (st, body) =
                    host.post(&format!("/api/rooms/{room_id}/participants/{identity}/ban"), json!({})).await;
                assert_eq!(st, 201, "{body}");
                banned.push(victim);
                storm_ban_done = true;
            }
        }
        tokio::task::yield_now().await;
    }
    served.kill();
    for worker in workers {
        worker.await.unwrap();
    }
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    assert!(!answered.is_empty());
    // How far the storm got (for the reader of the log; nothing depends on it).
    println!(
        "killed after {} of {} joins answered, {} approvals",
        answered.len(),
        WORKERS * JOINS_PER_WORKER,
        approved.len()
    );

    served.restart().await;
    let banned_sessions: BTreeSet<&str> = banned.iter().map(|b| b.session.as_str()).collect();

    // Every answered join is stored: its session is known, and it waits, is admitted, or is banned.
    for (name, joined) in &answered {
        let (st, body) = send(token_of(&joined.session)).await.unwrap();
        let code = body["code"].as_str().or(body["error"]["code"].as_str()).unwrap_or_default().to_owned();
        if banned_sessions.contains(joined.session.as_str()) {
            assert_eq!(st, 403, "{name} was banned: {body}");
        } else if approved.contains_key(name) {
            // Every answered approval still admits, with a token.
            assert_eq!(st, 200, "{name} was approved before the kill: {body}");
            assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        } else {
            assert!(st == 200 || (st == 403 && code.contains("not_admitted")), "{name}: {st} {body}");
        }
    }

    // Every answered ban still refuses the browser, in a fresh session.
    for (i, b) in banned.iter().enumerate() {
        let (st, body) = send(guests.post(format!("{base}/api/rooms/{room_id}/join")).json(&join_body(
            &invite,
            &format!("Back {i}"),
            &b.fingerprint,
        )))
        .await
        .unwrap();
        assert_eq!(st, 403, "a banned browser rejoined after the restart: {body}");
    }

    // Nobody is admitted twice: an approval answered before the kill is decided for good, and the lobby
    // holds each waiting guest once and none of the admitted.
    for (name, entry) in &approved {
        let (st, body) = host.post(&format!("/api/rooms/{room_id}/lobby/{entry}/approve"), json!({})).await;
        assert_eq!(st, 409, "{name} approved a second time: {body}");
    }
    let (st, lobby) = host.get(&format!("/api/rooms/{room_id}/lobby")).await;
    assert_eq!(st, 200, "{lobby}");
    let waiting: Vec<&str> =
        lobby["entries"].as_array().unwrap().iter().map(|e| e["displayName"].as_str().unwrap()).collect();
    let distinct: BTreeSet<&str> = waiting.iter().copied().collect();
    assert_eq!(distinct.len(), waiting.len(), "a guest waits twice: {waiting:?}");
    assert!(waiting.iter().all(|name| !approved.contains_key(*name)), "an admitted guest waits again");
}
