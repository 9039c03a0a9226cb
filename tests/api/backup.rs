//! Backup while a lecture is running, restore elsewhere, and compare; refusal of corrupt and newer archives.

use std::io::{Read, Write};

use serde_json::json;

use crate::support::{self, Db, Service, TestApp, WithLiveKit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_during_a_lecture_restores_rooms_users_chat_and_files() {
    let w = WithLiveKit::spawn(Db::Sqlite, &[]).await;
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Backed up", "lobbyEnabled": false})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    host.post(&format!("/api/rooms/{id}/chat"), json!({"text": "before the backup"})).await;
    let (_, ticket) = host
        .post(
            &format!("/api/rooms/{id}/files"),
            json!({"fileName": "notes.txt", "contentType": "text/plain", "size": 5}),
        )
        .await;
    let put = reqwest::Client::new()
        .put(format!("{}{}", w.t.base, ticket["uploadUrl"].as_str().unwrap()))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    host.post(&format!("/api/rooms/{id}/files/{}/complete", ticket["fileId"].as_str().unwrap()), json!({})).await;

    // The server keeps taking writes while the backup runs.
    let writer = {
        let host = host.clone();
        let id = id.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                host.post(&format!("/api/rooms/{id}/chat"), json!({"text": format!("during {i}")})).await;
            }
        })
    };
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("confctl.tar.gz");
    let steps = std::sync::Mutex::new(Vec::new());
    let report =
        confctl::backup::create(&w.t.config, &archive, &|s| steps.lock().unwrap().push(s.to_owned())).await.unwrap();
    writer.await.unwrap();
    assert!(report.notes.is_empty(), "SQLite and local files are fully covered: {:?}", report.notes);
    assert!(steps.lock().unwrap().len() >= 3, "progress is reported");
    assert_eq!(report.manifest.schema_version, confctl::store::migrations::latest_version());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600, "backups hold secrets");
    }

    // Restore into a fresh data directory and serve it.
    let target = tempfile::tempdir().unwrap();
    let restored_dir = target.path().join("data");
    let mut config = w.t.config.clone();
    config.data_dir = restored_dir.clone();
    config.files.local_dir = None;
    confctl::backup::restore(&config, &archive, &|_| {}).unwrap();
    let err = confctl::backup::restore(&config, &archive, &|_| {}).unwrap_err().to_string();
    assert!(err.contains("already holds"), "{err}");

    let restored = TestApp::spawn_with(Db::Sqlite, &[], |c| c.data_dir = restored_dir.clone()).await;
    let b = restored.client();
    let (s, _) = b.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!(s, 200, "users survive");
    let (_, r) = b.get(&format!("/api/rooms/{id}")).await;
    assert_eq!(r["name"], "Backed up");
    let (_, chat) = b.get(&format!("/api/rooms/{id}/chat?limit=500")).await;
    let texts: Vec<&str> = chat["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts[0], "before the backup");
    // Messages written during the backup are either wholly in it or not at all, and in order.
    for (i, t) in texts.iter().skip(1).enumerate() {
        assert_eq!(*t, format!("during {i}"));
    }
    let (_, files) = b.get(&format!("/api/rooms/{id}/files")).await;
    let file_id = files["files"][0]["id"].as_str().unwrap();
    let bytes = b
        .http
        .get(format!("{}/api/files/{file_id}/download", restored.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello", "files survive");
    restored.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_newer_archives_are_refused() {
    let t = TestApp::spawn(Db::Sqlite, &[]).await;
    t.client().register("ada@uni.edu", "Ada").await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("b.tar.gz");
    confctl::backup::create(&t.config, &archive, &|_| {}).await.unwrap();
    let fresh = |name: &str| {
        let mut c = t.config.clone();
        c.data_dir = dir.path().join(name);
        c.files.local_dir = None;
        c
    };

    // Flip a byte in the middle of the compressed stream.
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let corrupt = dir.path().join("corrupt.tar.gz");
    std::fs::write(&corrupt, &bytes).unwrap();
    let err = confctl::backup::restore(&fresh("a"), &corrupt, &|_| {}).unwrap_err().to_string();
    assert!(err.contains("not a valid confctl backup"), "{err}");

    // Rewrite the manifest to claim a schema from the future.
    let mut original = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap()).read_to_end(&mut original).unwrap();
    let mut input = tar::Archive::new(original.as_slice());
    let newer = dir.path().join("newer.tar.gz");
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&newer).unwrap(),
        flate2::Compression::fast(),
    ));
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == "manifest.json" {
            let mut m: serde_json::Value = serde_json::from_slice(&data).unwrap();
            m["schemaVersion"] = json!(999);
            data = serde_json::to_vec(&m).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        out.append_data(&mut header, &path, data.as_slice()).unwrap();
    }
    out.into_inner().unwrap().finish().unwrap().flush().unwrap();
    let err = confctl::backup::restore(&fresh("b"), &newer, &|_| {}).unwrap_err().to_string();
    assert!(err.contains("newer confctl") && err.contains("999"), "{err}");
    assert!(!dir.path().join("b").join("confctl.db").exists(), "nothing half-restored");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backups_say_to_use_pg_dump() {
    if !support::require(&[Service::Postgres]) {
        return;
    }
    let t = TestApp::spawn(Db::Postgres, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let report = confctl::backup::create(&t.config, &dir.path().join("b.tar.gz"), &|_| {}).await.unwrap();
    assert_eq!(report.manifest.database, "postgres");
    assert!(report.notes.iter().any(|n| n.contains("pg_dump")), "{:?}", report.notes);
    assert!(report.manifest.entries.iter().all(|e| e.path != "confctl.db"));
    t.stop().await;
}
