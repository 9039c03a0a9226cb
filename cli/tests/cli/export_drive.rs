//! `confctl export --to gdrive --as HOST` end to end: a real `confctl serve` (with the LiveKit double) filled
//! through the API — two hosts, one lecture each held and ended, one host's Drive connected through the
//! Google double's consent screen — then the binary on the same data directory: the arguments it refuses
//! (exit 2), a host without Drive (exit 1), a dry run, the upload (only that host's lecture), a rerun through
//! a broken upload session and a rate limit into the same Drive files, and revoked consent (exit 1, "reconnect
//! Google Drive").

use std::process::Output;

use confctl_doubles::webhook::events;
use confctl_doubles::{GoogleDouble, GoogleDoubleConfig, LiveKitDouble};
use serde_json::{Value, json};

use crate::support::{Client, Served, stderr, stdout};

/// A room of this host whose first lecture went live (LiveKit's webhook) and was ended by the host.
async fn hold_lecture(host: &Client, lk: &LiveKitDouble, name: &str) -> String {
    let (status, room) = host.post("/api/rooms", json!({"name": name})).await;
    assert_eq!(status, 201, "{room}");
    let lk_room = lk.add_room(room["livekitRoomName"].as_str().unwrap());
    let delivery =
        lk.send_webhook(&format!("{}/api/webhooks/livekit", host.base), events::room_started(&lk_room)).await;
    assert_eq!(delivery.unwrap().status, Some(200));
    let (status, ended) = host.post(&format!("/api/rooms/{}/end", room["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(status, 200, "{ended}");
    room["lectureId"].as_str().unwrap().to_owned()
}

/// Connects the host's Drive as a browser would: consent at the double, back to the callback.
async fn connect_drive(host: &Client) {
    let (status, body) = host.post("/api/drive/connect", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let consent = no_redirects.get(body["authorizeUrl"].as_str().unwrap()).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    let end = host.http.get(back).send().await.unwrap();
    assert_eq!(end.url().query(), Some("drive=connected"), "{}", end.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_a_hosts_google_drive() {
    let mut served = Served::prepare(None).await;
    let base = served.base();
    let g = GoogleDouble::start(GoogleDoubleConfig::new(&format!("{base}/auth/google/callback"))).await.unwrap();
    // The Google double's `[google]` settings, and the public address Google sends browsers back to.
    served.env = g
        .settings()
        .into_iter()
        .map(|(key, value)| (format!("CONFCTL_{}", key.replace('.', "__").to_uppercase()), value))
        .chain([("CONFCTL_PUBLIC_URL".to_owned(), base.clone())])
        .collect();
    served.restart().await;
    let (ada, bob) = (served.client(), served.client());
    ada.register("ada@uni.edu", "ada@uni.edu").await;
    bob.register("bob@uni.edu", "bob@uni.edu").await;
    let adas = hold_lecture(&ada, &served.lk, "Optics").await;
    let bobs = hold_lecture(&bob, &served.lk, "Acoustics").await;
    connect_drive(&ada).await;

    // The binary runs off the runtime: the doubles answer it from this process.
    let export = |args: &[&str]| {
        let mut cmd = served.confctl();
        cmd.arg("export").args(args);
        async move { tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap() }
    };
    let json_of = |o: &Output| -> Value {
        serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
    };

    // What the command line gets wrong: exit 2, saying what is missing.
    let o = export(&["--all", "--to", "gdrive"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--as"), "{}", stderr(&o));
    let o = export(&["--all", "--to", "gdrive", "--as", "ada@uni.edu", "--out", "/tmp/x"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--out") && stderr(&o).contains("--to"), "{}", stderr(&o));
    let o = export(&["--all", "--as", "ada@uni.edu"]).await;
    assert_eq!(o.status.code(), Some(2), "--as alone: {}", stderr(&o));
    let o = export(&["--all", "--to", "gdrive", "--as", "nobody@uni.edu"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nobody@uni.edu"), "{}", stderr(&o));

    // Bob never connected Drive: said so, exit 1, nothing uploaded.
    let o = export(&["--all", "--to", "gdrive", "--as", "bob@uni.edu"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("bob@uni.edu has not connected Google Drive"), "{}", stderr(&o));

    // A dry run lists Ada's files, skips Bob's lecture, uploads nothing.
    let formats = ["--format", "pdf,md,vtt"];
    let ada_to_drive = ["--all", "--to", "gdrive", "--as", "ada@uni.edu"];
    let o = export(&[&ada_to_drive[..], &formats, &["--dry-run", "--json"]].concat()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dry = json_of(&o);
    assert_eq!(dry["exported"][0]["files"], json!(["lecture.pdf", "lecture.md", "captions.vtt"]), "{dry}");
    assert!(g.files().is_empty(), "a dry run uploads nothing");

    // The real run: Ada's lecture into her Drive; Bob's skipped with why.
    let o = export(&[&ada_to_drive[..], &formats, &["--json"]].concat()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let first = json_of(&o);
    let exported = &first["exported"][0];
    assert_eq!((exported["outcome"].as_str(), exported["lectureId"].as_str()), (Some("uploaded"), Some(adas.as_str())));
    assert_eq!(first["exported"].as_array().unwrap().len(), 1, "{first}");
    let skipped = &first["skipped"][0];
    assert_eq!(skipped["lectureId"], bobs.as_str(), "{first}");
    assert!(skipped["reason"].as_str().unwrap().contains("not a lecture of ada@uni.edu"), "{skipped}");
    let ids: Vec<String> =
        exported["files"].as_array().unwrap().iter().map(|f| f["fileId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    let folder = g.path_of(&ids[0]);
    assert_eq!(folder[..2], ["confctl", "Optics"]);
    assert!(folder[2].ends_with(" Lecture 1"), "{folder:?}");
    assert_eq!(exported["dir"], format!("confctl/Optics/{}", folder[2]));
    let pdf = g.file(&ids[0]).unwrap();
    assert!(pdf.content.starts_with(b"%PDF-"), "rendered by the lecture renderers");
    assert!(String::from_utf8_lossy(&g.file(&ids[2]).unwrap().content).starts_with("WEBVTT"));
    assert_eq!(
        first["bytes"],
        exported["files"].as_array().unwrap().iter().map(|f| f["size"].as_u64().unwrap()).sum::<u64>()
    );

    // Again, through an upload session that breaks mid-file and a rate limit: the same files, updated.
    g.break_upload_at(1000);
    g.fail_next_drive_calls(1, 429);
    g.clear_calls();
    let o = export(&[&ada_to_drive[..], &formats, &["--json"]].concat()).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let second = json_of(&o);
    let again: Vec<&str> =
        second["exported"][0]["files"].as_array().unwrap().iter().map(|f| f["fileId"].as_str().unwrap()).collect();
    assert_eq!(again, ids, "updated in place, not copied");
    assert!(second["exported"][0]["files"].as_array().unwrap().iter().all(|f| f["updated"] == true));
    assert_eq!(g.files().len(), 3 + 3, "three folders and three files");
    let resumed = g.calls().iter().any(|c| c.content_range.as_deref().is_some_and(|r| r.starts_with("bytes 1000-")));
    assert!(resumed, "the broken upload went on from the offset Google reported: {:?}", g.calls());
    let pdf = g.file(&ids[0]).unwrap();
    assert_eq!(pdf.versions, 2);
    assert_eq!(Some(pdf.content.len() as u64), second["exported"][0]["files"][0]["size"].as_u64(), "whole");
    assert!(pdf.content.starts_with(b"%PDF-"));

    // Ada revoked confctl at Google: exit 1, and the reason tells her what to do.
    g.revoke_consent();
    let o = export(&ada_to_drive).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("reconnect Google Drive"), "{}", stderr(&o));
}
