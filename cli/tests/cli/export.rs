//! `confctl export` as cron jobs and operators run it: the binary against the database of a running
//! `confctl serve` (SQLite and PostgreSQL) whose lectures were held through the API — selection flags, the
//! folder layout and every format, the manifest, an idempotent second run, edits and `--force`, `--dry-run`,
//! exit codes with the JSON summary, a run killed mid-way, and the progress bar only on a terminal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use confctl_doubles::services::{Service, fresh_postgres_url, require};
use confctl_doubles::webhook::events;
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::{Client, Served, run, stderr, stdout};

/// What `lectures_held` made: ids by name.
struct Held {
    served: Served,
    ada: Client,
    /// Ada's Quantum Optics: a lecture on 2 November (ended) and one under way.
    optics: String,
    optics_ended: String,
    optics_live: String,
    /// Ada's Биология 101: a lecture on 4 November (ended).
    biology_ended: String,
    /// Bob's seminar: a lecture on 15 January (ended).
    seminar_ended: String,
}

/// `YYYY-MM-DDTHH:MM:SSZ` in LiveKit's webhook clock (seconds).
fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp()
}

/// Holds one lecture of `room_id` through the API: LiveKit says the room started at `started`, the host
/// joins, the assistant captions three sentences, the host chats and shares a file, the host ends it, and
/// the assistant files its summary. Returns the lecture's id.
async fn hold(s: &Served, host: &Client, agent_token: &str, room_id: &str, started: i64, topic: &str) -> String {
    let (_, room) = host.get(&format!("/api/rooms/{room_id}")).await;
    let lecture = room["lectureId"].as_str().unwrap().to_owned();
    let lk_room = s.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    let webhook = |mut event: livekit_protocol::WebhookEvent, when: i64| {
        event.created_at = when;
        let url = format!("{}/api/webhooks/livekit", s.base());
        async move { assert_eq!(s.lk.send_webhook(&url, event).await.unwrap().status, Some(200)) }
    };
    webhook(events::room_started(&lk_room), started).await;
    let (_, token) = host.post(&format!("/api/rooms/{room_id}/token"), json!({})).await;
    let me = s.lk.add_participant(&lk_room.name, token["identity"].as_str().unwrap(), "Host", "{}", None);
    webhook(events::participant_joined(&lk_room, &me), started).await;

    let agent = reqwest::Client::new();
    for (i, text) in
        [format!("Today: {topic}."), "Хлорофилл отражает зелёный свет.".into(), "Read chapter four.".into()]
            .iter()
            .enumerate()
    {
        let start = 1_000 + 4_000 * i as i64;
        let body = json!({"segmentId": format!("s{i}"), "speakerIdentity": me.identity, "speakerName": "Host",
            "text": text, "final": true, "startMs": start, "endMs": start + 3_000, "language": "en", "provider": "whisper"});
        let r = agent
            .post(format!("{}/api/agent/lectures/{lecture}/captions", s.base()))
            .bearer_auth(agent_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let (st, _) = host.post(&format!("/api/rooms/{room_id}/chat"), json!({"text": format!("Slides on {topic}")})).await;
    assert_eq!(st, 201);
    let content = format!("notes on {topic}\n").into_bytes();
    let (st, ticket) = host
        .post(
            &format!("/api/rooms/{room_id}/files"),
            json!({"fileName": "notes.txt", "contentType": "text/plain", "size": content.len()}),
        )
        .await;
    assert_eq!(st, 201, "{ticket}");
    let upload = ticket["uploadUrl"].as_str().unwrap();
    let url = if upload.starts_with("http") { upload.to_owned() } else { format!("{}{upload}", s.base()) };
    let r = reqwest::Client::new().put(url).header("content-type", "text/plain").body(content).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let file_id = ticket["fileId"].as_str().unwrap();
    let (st, _) = host.post(&format!("/api/rooms/{room_id}/files/{file_id}/complete"), json!({})).await;
    assert_eq!(st, 200);
    webhook(events::participant_left(&lk_room, &me), started + 3_000).await;
    let (st, ended) = host.post(&format!("/api/rooms/{room_id}/end"), json!({})).await;
    assert_eq!((st, ended["endedLectureId"].as_str()), (200, Some(lecture.as_str())), "{ended}");

    let summary = json!({"abstract": format!("A lecture on {topic}."), "kind": "extractive", "language": "en",
        "keyTopics": [{"topic": topic, "startMs": 1000, "endMs": 4000}],
        "actionItems": [{"text": "Read chapter four", "startMs": 9000, "endMs": 12000}], "qa": []});
    let artifact = json!({"transcriptText": "t", "transcriptVtt": "WEBVTT\n", "summary": summary,
        "summaryKind": "extractive", "provider": "confctl", "model": "extractive-v1", "status": "complete"});
    let r = agent
        .put(format!("{}/api/agent/lectures/{lecture}/artifact", s.base()))
        .bearer_auth(agent_token)
        .json(&artifact)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    lecture
}

async fn create_room(client: &Client, name: &str) -> String {
    let (st, room) = client.post("/api/rooms", json!({"name": name})).await;
    assert_eq!(st, 201, "{room}");
    room["id"].as_str().unwrap().to_owned()
}

/// Ada's two rooms and Bob's one, with their lectures (see [`Held`]); `serve` keeps running.
async fn lectures_held(database_url: Option<String>) -> Held {
    let served = Served::start(database_url).await;
    let (root, ada, bob) = (served.client(), served.client(), served.client());
    root.register("root@uni.edu", "Root").await;
    ada.register("ada@uni.edu", "Prof. Ada").await;
    bob.register("bob@uni.edu", "Bob").await;
    let created = run(served.confctl().args(["admin", "agent-token", "create", "--name", "export-test"]));
    assert!(created.status.success(), "{}", stderr(&created));
    let agent_token = stdout(&created).lines().find_map(|l| l.strip_prefix("token: ")).unwrap().to_owned();

    let optics = create_room(&ada, "Quantum Optics").await;
    let biology = create_room(&ada, "Биология 101").await;
    let seminar = create_room(&bob, "Bob's Seminar").await;
    let optics_ended = hold(&served, &ada, &agent_token, &optics, at("2026-11-02T09:00:00Z"), "lasers").await;
    let biology_ended = hold(&served, &ada, &agent_token, &biology, at("2026-11-04T09:30:00Z"), "photosynthesis").await;
    let seminar_ended = hold(&served, &bob, &agent_token, &seminar, at("2026-01-15T10:00:00Z"), "compilers").await;
    // The next Quantum Optics lecture is under way.
    let (_, room) = ada.get(&format!("/api/rooms/{optics}")).await;
    let optics_live = room["lectureId"].as_str().unwrap().to_owned();
    let lk_room = served.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    let url = format!("{}/api/webhooks/livekit", served.base());
    served.lk.send_webhook(&url, events::room_started(&lk_room)).await.unwrap();
    let (_, live) = ada.get(&format!("/api/lectures/{optics_live}")).await;
    assert_eq!(live["status"], "LIVE", "{live}");
    Held { served, ada, optics, optics_ended, optics_live, biology_ended, seminar_ended }
}

impl Held {
    fn export(&self, args: &[&str]) -> Output {
        run(self.served.confctl().arg("export").args(args))
    }

    /// `confctl export ARGS --json`, which must exit with `code`; its summary.
    fn export_json(&self, args: &[&str], code: i32) -> Value {
        let o = self.export(&[args, &["--json"]].concat());
        assert_eq!(o.status.code(), Some(code), "export {args:?}: {}\n{}", stdout(&o), stderr(&o));
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("export {args:?} printed no JSON ({e}): {}", stdout(&o)))
    }
}

/// The lecture ids of a summary's list (`exported`, `skipped`, `failed`).
fn ids(summary: &Value, list: &str) -> BTreeSet<String> {
    summary[list].as_array().unwrap().iter().map(|o| o["lectureId"].as_str().unwrap().to_owned()).collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The folder of one lecture under `out` (there is exactly one).
fn lecture_dir(out: &Path, lecture: &str) -> PathBuf {
    let found: Vec<PathBuf> = tree(out)
        .into_iter()
        .filter(|p| p.ends_with("manifest.json") && p.contains(lecture))
        .map(|p| out.join(p).parent().unwrap().to_path_buf())
        .collect();
    assert_eq!(found.len(), 1, "one folder for {lecture} under {}: {found:?}", out.display());
    found.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_on_sqlite() {
    export_selects_writes_and_reruns(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_on_postgres() {
    if !require(&[Service::Postgres]) {
        return;
    }
    export_selects_writes_and_reruns(Some(fresh_postgres_url().await)).await;
}

async fn export_selects_writes_and_reruns(database_url: Option<String>) {
    let h = lectures_held(database_url).await;
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("archive");
    let out_arg = out.to_str().unwrap();

    // Ada's lectures: two ended ones exported, the live one skipped with a note; Bob's not touched.
    let summary = h.export_json(&["--host", "ada@uni.edu", "--out", out_arg], 0);
    assert_eq!(ids(&summary, "exported"), set(&[&h.optics_ended, &h.biology_ended]), "{summary}");
    assert_eq!(ids(&summary, "skipped"), set(&[&h.optics_live]), "{summary}");
    assert!(summary["skipped"][0]["reason"].as_str().unwrap().contains("still live"), "{summary}");
    assert!(summary["failed"].as_array().unwrap().is_empty(), "{summary}");
    assert!(summary["bytes"].as_u64().unwrap() > 1000, "{summary}");

    // The layout: OUT/<room slug>/<YYYY-MM-DD_HHMM>_<lecture id>/.
    let files = tree(&out);
    let optics_dir = format!("quantum-optics/2026-11-02_0900_{}", h.optics_ended);
    let expected: BTreeSet<String> = [
        "lecture.pdf",
        "lecture.md",
        "lecture.json",
        "captions.vtt",
        "captions.srt",
        "transcript.txt",
        "attendance.csv",
        "files/notes.txt",
        "manifest.json",
    ]
    .iter()
    .map(|name| format!("{optics_dir}/{name}"))
    .collect();
    assert!(expected.is_subset(&files), "{expected:?} in {files:?}");
    assert_eq!(files.len(), 2 * expected.len(), "two lectures, nothing else: {files:?}");
    let dir = out.join(&optics_dir);
    let biology_dir = lecture_dir(&out, &h.biology_ended);
    assert!(biology_dir.ends_with(format!("2026-11-04_0930_{}", h.biology_ended)), "{}", biology_dir.display());

    // Every format holds the lecture.
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let text = |name: &str| String::from_utf8(read(name)).unwrap();
    assert!(read("lecture.pdf").starts_with(b"%PDF-"));
    let doc: Value = serde_json::from_slice(&read("lecture.json")).unwrap();
    assert_eq!(
        (doc["lecture"]["id"].as_str(), doc["summaryStatus"].as_str()),
        (Some(h.optics_ended.as_str()), Some("ready"))
    );
    assert_eq!(doc["transcript"].as_array().unwrap().len(), 3, "{doc}");
    assert_eq!(doc["chat"][0]["text"], "Slides on lasers");
    assert!(text("lecture.md").contains("A lecture on lasers."));
    assert!(
        text("captions.vtt").starts_with("WEBVTT") && text("captions.vtt").contains("Хлорофилл отражает зелёный свет.")
    );
    assert!(text("captions.srt").contains("00:00:05,000 --> 00:00:08,000"), "{}", text("captions.srt"));
    assert!(text("transcript.txt").contains("Today: lasers."));
    assert!(
        text("attendance.csv").lines().nth(1).is_some_and(|row| row.contains("Prof. Ada")),
        "{}",
        text("attendance.csv")
    );
    assert_eq!(text("files/notes.txt"), "notes on lasers\n");

    // The manifest lists what was written with sizes and hashes that match, and who wrote it when.
    let manifest: Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    assert_eq!(manifest["lectureId"], h.optics_ended.as_str());
    assert!(manifest["generator"].as_str().unwrap().starts_with("confctl "), "{manifest}");
    assert!(manifest["exportedAt"].as_str().is_some(), "{manifest}");
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), expected.len() - 1, "{manifest}");
    for f in listed {
        let bytes = read(f["path"].as_str().unwrap());
        assert_eq!(f["size"].as_u64(), Some(bytes.len() as u64), "{f}");
        assert_eq!(f["sha256"].as_str(), Some(sha256_hex(&bytes).as_str()), "{f}");
    }

    // A second run skips what did not change and rewrites nothing.
    let modified = std::fs::metadata(dir.join("lecture.pdf")).unwrap().modified().unwrap();
    let again = h.export_json(&["--host", "ada@uni.edu", "--out", out_arg], 0);
    assert!(ids(&again, "exported").is_empty(), "{again}");
    assert_eq!(ids(&again, "skipped"), set(&[&h.optics_ended, &h.biology_ended, &h.optics_live]));
    assert!(again["skipped"].as_array().unwrap().iter().any(|o| o["reason"].as_str().unwrap().contains("unchanged")));
    assert_eq!(std::fs::metadata(dir.join("lecture.pdf")).unwrap().modified().unwrap(), modified);

    // An edit of the summary makes its lecture current again; the other stays skipped.
    let (_, view) = h.ada.get(&format!("/api/lectures/{}", h.optics_ended)).await;
    let mut edited = view["summary"]["summary"].clone();
    edited["abstract"] = json!("Lasers, edited by the host.");
    let (st, body) = h
        .ada
        .send(
            reqwest::Method::PUT,
            &format!("/api/lectures/{}/summary", h.optics_ended),
            Some(json!({"summary": edited, "version": view["summary"]["version"]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let after_edit = h.export_json(&["--host", "ada@uni.edu", "--out", out_arg], 0);
    assert_eq!(ids(&after_edit, "exported"), set(&[&h.optics_ended]), "{after_edit}");
    assert!(text("lecture.md").contains("Lasers, edited by the host."));

    // A file deleted from the folder is written again; --force rewrites everything.
    std::fs::remove_file(biology_dir.join("captions.vtt")).unwrap();
    let healed = h.export_json(&["--host", "ada@uni.edu", "--out", out_arg], 0);
    assert_eq!(ids(&healed, "exported"), set(&[&h.biology_ended]), "{healed}");
    assert!(biology_dir.join("captions.vtt").exists());
    let forced = h.export_json(&["--host", "ada@uni.edu", "--out", out_arg, "--force"], 0);
    assert_eq!(ids(&forced, "exported"), set(&[&h.optics_ended, &h.biology_ended]), "{forced}");

    // Selections: a room, a lecture, a window of dates (start-inclusive, end-exclusive), a format list;
    // --dry-run writes nothing.
    let fresh = work.path().join("fresh");
    let fresh_arg = fresh.to_str().unwrap();
    let dry = h.export_json(&["--all", "--out", fresh_arg, "--dry-run"], 0);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(ids(&dry, "exported"), set(&[&h.optics_ended, &h.biology_ended, &h.seminar_ended]), "{dry}");
    assert!(!fresh.exists(), "a dry run writes nothing");
    let by_room = h.export_json(&["--room", &h.optics, "--out", fresh_arg, "--dry-run"], 0);
    assert_eq!(ids(&by_room, "exported"), set(&[&h.optics_ended]), "{by_room}");
    let window = h.export_json(&["--since", "2026-01-01", "--until", "2026-11-04", "--out", fresh_arg, "--dry-run"], 0);
    assert_eq!(ids(&window, "exported"), set(&[&h.seminar_ended, &h.optics_ended]), "{window}");
    let moment = h.export_json(&["--all", "--since", "2026-11-04T09:30:00Z", "--out", fresh_arg, "--dry-run"], 0);
    assert_eq!(ids(&moment, "exported"), set(&[&h.biology_ended]), "{moment}");
    let one = h.export_json(&["--lecture", &h.seminar_ended, "--format", "vtt,files", "--out", fresh_arg], 0);
    assert_eq!(ids(&one, "exported"), set(&[&h.seminar_ended]), "{one}");
    let names: BTreeSet<String> =
        tree(&fresh).into_iter().map(|p| p.rsplit_once(&h.seminar_ended).unwrap().1.to_owned()).collect();
    assert_eq!(names, ["/captions.vtt", "/files/notes.txt", "/manifest.json"].map(String::from).into());

    // Bad arguments: exit 2 and a message that says what to do, before anything is read or written.
    for (args, says) in [
        (&["--out", fresh_arg][..], "say what to export"),
        (&["--all"][..], "--out DIR"),
        (&["--all", "--out", fresh_arg, "--format", "pdf,docx"][..], "unknown format `docx`"),
        (&["--since", "yesterday", "--out", fresh_arg][..], "YYYY-MM-DD"),
        (&["--since", "2026-05-01", "--until", "2026-04-01", "--out", fresh_arg][..], "--since must be before --until"),
        (&["--lecture", "no-such-lecture", "--out", fresh_arg][..], "no lecture no-such-lecture"),
        (&["--host", "nobody@uni.edu", "--out", fresh_arg][..], "no account nobody@uni.edu"),
        (&["--all", "--jobs", "0", "--out", fresh_arg][..], "--jobs"),
    ] {
        let o = h.export(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }

    // A lecture that cannot be written fails alone, with why; the others are exported; exit 1.
    let blocked = work.path().join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("bob-s-seminar"), "a file where the room's folder would go").unwrap();
    let partly = h.export_json(&["--all", "--out", blocked.to_str().unwrap()], 1);
    assert_eq!(ids(&partly, "failed"), set(&[&h.seminar_ended]), "{partly}");
    assert!(partly["failed"][0]["reason"].as_str().unwrap().contains("bob-s-seminar"), "{partly}");
    assert_eq!(ids(&partly, "exported"), set(&[&h.optics_ended, &h.biology_ended]), "{partly}");
    // In words, without --json: the failure on stderr, the tally on stdout.
    let worded = h.export(&["--all", "--out", blocked.to_str().unwrap()]);
    assert_eq!(worded.status.code(), Some(1));
    assert!(stderr(&worded).contains(&format!("failed {}", h.seminar_ended)), "{}", stderr(&worded));
    assert!(stdout(&worded).contains("0 lecture(s), 3 skipped, 1 failed"), "{}", stdout(&worded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_export_leaves_no_half_files_and_the_bar_shows_only_on_a_terminal() {
    let h = lectures_held(None).await;
    let work = tempfile::tempdir().unwrap();

    // Without a terminal (the tests' stderr is a pipe): no bar, only the tally.
    let plain = h.export(&["--all", "--out", work.path().join("plain").to_str().unwrap(), "--format", "md"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(!stderr(&plain).contains("lectures ·"), "no bar without a terminal: {}", stderr(&plain));
    assert!(stdout(&plain).contains("exported 3 lecture(s)"), "{}", stdout(&plain));

    // Under a pseudo-terminal (`script` gives the command one): the bar with its counts.
    let line = format!(
        "{} export --all --format pdf,md --out {}",
        env!("CARGO_BIN_EXE_confctl"),
        work.path().join("tty").display()
    );
    let o = run(h.served.program("script").args(["-qec", &line, "/dev/null"]));
    let seen = stdout(&o);
    assert!(o.status.success(), "{seen}");
    // Four chosen: three ended and the live one, which is skipped.
    assert!(seen.contains("/4 lectures") && seen.contains("lectures/s · ETA"), "the bar under a terminal: {seen:?}");

    // Killed mid-export, again and again at different moments: whatever carries a final name is whole
    // (renames are atomic); the next run cleans up the temporary files and completes.
    let out = work.path().join("killed");
    let mut interrupted = 0;
    for delay_ms in [30u64, 80, 150, 250, 400, 600] {
        let mut child = h
            .served
            .confctl()
            .args(["export", "--all", "--jobs", "1", "--force", "--out", out.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for name in tree(&out) {
            if name.contains(".partial-") {
                continue;
            }
            let bytes = std::fs::read(out.join(&name)).unwrap();
            match name.rsplit('/').next().unwrap() {
                "lecture.pdf" => assert!(
                    bytes.starts_with(b"%PDF-") && bytes.trim_ascii_end().ends_with(b"%%EOF"),
                    "{name} is whole"
                ),
                "lecture.json" | "manifest.json" => {
                    serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|e| panic!("{name} is whole JSON: {e}"));
                }
                "notes.txt" => assert!(String::from_utf8(bytes).unwrap().ends_with('\n'), "{name} is whole"),
                "captions.vtt" => {
                    assert!(String::from_utf8(bytes).unwrap().contains("Read chapter four."), "{name} is whole")
                }
                _ => assert!(!bytes.is_empty(), "{name} is not empty"),
            }
        }
    }
    assert!(interrupted > 0, "at least one run was killed before it finished");
    let done = h.export_json(&["--all", "--out", out.to_str().unwrap()], 0);
    assert!(done["failed"].as_array().unwrap().is_empty(), "{done}");
    let files = tree(&out);
    assert!(files.iter().all(|f| !f.contains(".partial-")), "the next run removed the temporary files: {files:?}");
    for lecture in [&h.optics_ended, &h.biology_ended, &h.seminar_ended] {
        let dir = lecture_dir(&out, lecture);
        let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        for f in manifest["files"].as_array().unwrap() {
            let bytes = std::fs::read(dir.join(f["path"].as_str().unwrap())).unwrap();
            assert_eq!(f["sha256"].as_str(), Some(sha256_hex(&bytes).as_str()), "{f}");
        }
    }
}
