//! Shared files end to end, on both databases and both storage backends: local disk, and a real S3 server
//! (SeaweedFS, which checks signatures) reached with presigned URLs exactly as a browser would.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, Browser, Db, Service, WithLiveKit, error_code};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Local,
    S3,
}

fn s3_overrides() -> Vec<(&'static str, String)> {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test, which starts SeaweedFS"))
    };
    vec![
        ("files.backend", "s3".into()),
        ("files.s3_endpoint", var("TEST_S3_ENDPOINT")),
        ("files.s3_bucket", var("TEST_S3_BUCKET")),
        ("files.s3_access_key_id", var("TEST_S3_ACCESS_KEY")),
        ("files.s3_secret_access_key", var("TEST_S3_SECRET_KEY")),
    ]
}

struct Setup {
    w: WithLiveKit,
    host: Browser,
    room: String,
    /// The LiveKit room of the room's current lecture.
    lk_name: String,
    guest: Browser,
    session: String,
}

async fn setup(db: Db, backend: Backend, extra: &[(&str, &str)]) -> Setup {
    let s3 = if backend == Backend::S3 { s3_overrides() } else { vec![] };
    let mut overrides: Vec<(&str, &str)> = s3.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.extend_from_slice(extra);
    let w = WithLiveKit::spawn(db, &overrides).await;
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, created) = host.post("/api/rooms", json!({"name": "Files", "lobbyEnabled": false})).await;
    let room = created["id"].as_str().unwrap().to_owned();
    let lk_name = created["livekitRoomName"].as_str().unwrap().to_owned();
    w.lk.add_room(&lk_name);
    let guest = w.t.client();
    let (_, joined) = guest
        .post(
            &format!("/api/rooms/{room}/join"),
            json!({"displayName": "Ann", "sessionFingerprint": "fp-ann-0123456789abcdef", "inviteCode": w.t.invite_code(&room).await}),
        )
        .await;
    let session = joined["sessionId"].as_str().unwrap().to_owned();
    Setup { w, host, room, lk_name, guest, session }
}

impl Setup {
    fn abs(&self, url: &str) -> String {
        if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.w.t.base) }
    }
    async fn ticket(&self, as_guest: bool, name: &str, ctype: &str, size: usize) -> (u16, Value) {
        let body = json!({"fileName": name, "contentType": ctype, "size": size});
        let url = format!("/api/rooms/{}/files", self.room);
        if as_guest {
            let r = self
                .guest
                .http
                .post(format!("{}{url}", self.w.t.base))
                .header("x-confctl-session", &self.session)
                .json(&body)
                .send()
                .await
                .unwrap();
            support::read(r).await
        } else {
            self.host.post(&url, body).await
        }
    }
    /// The browser's PUT: a plain HTTP client, no cookies, only the headers the ticket names.
    async fn put(&self, ticket: &Value, bytes: Vec<u8>) -> u16 {
        let mut req = reqwest::Client::new().put(self.abs(ticket["uploadUrl"].as_str().unwrap())).body(bytes);
        for (k, v) in ticket["headers"].as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        req.send().await.unwrap().status().as_u16()
    }
    /// The same PUT, with the answer's body.
    async fn put_read(&self, ticket: &Value, bytes: Vec<u8>) -> (u16, Value) {
        let mut req = reqwest::Client::new().put(self.abs(ticket["uploadUrl"].as_str().unwrap())).body(bytes);
        for (k, v) in ticket["headers"].as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        match req.send().await {
            Ok(r) => support::read(r).await,
            // A server may close the connection as soon as it has refused a body still being sent.
            Err(err) => panic!("PUT failed without an answer: {err}"),
        }
    }
    async fn complete(&self, file_id: &str) -> (u16, Value) {
        self.host.post(&format!("/api/rooms/{}/files/{file_id}/complete", self.room), json!({})).await
    }
}

async fn share_and_download(db: Db, backend: Backend) {
    let s = setup(db, backend, &[]).await;
    let content = "Photosynthesis: light → chemical energy.".as_bytes().to_vec();
    let (status, ticket) = s.ticket(false, "Лекция 1 slides.pdf", "application/pdf", content.len()).await;
    assert_eq!(status, 201, "{ticket}");
    assert_eq!(ticket["method"], "PUT");
    assert_eq!(ticket["headers"]["Content-Type"], "application/pdf");
    let url = ticket["uploadUrl"].as_str().unwrap();
    match backend {
        Backend::S3 => assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=900"), "{url}"),
        Backend::Local => assert!(url.contains("/api/files/") && url.contains("sig="), "{url}"),
    }
    assert!(!url.contains("slides"), "object keys never use the client's file name: {url}");
    let file_id = ticket["fileId"].as_str().unwrap().to_owned();
    let (status, body) = s.complete(&file_id).await;
    assert_eq!((status, error_code(&body)), (409, "upload_missing"));
    assert_eq!(s.put(&ticket, content.clone()).await, 200);
    let (status, shared) = s.complete(&file_id).await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(
        (shared["fileName"].as_str(), shared["size"].as_u64()),
        (Some("Лекция 1 slides.pdf"), Some(content.len() as u64))
    );
    let announced: Vec<Value> =
        s.w.lk
            .sent_data(&s.lk_name)
            .iter()
            .filter(|d| d.topic.as_deref() == Some("files"))
            .map(|d| serde_json::from_slice(&d.data).unwrap())
            .collect();
    assert_eq!(announced, vec![shared.clone()], "announced on topic files, once");

    let r = s
        .guest
        .http
        .get(format!("{}/api/rooms/{}/files", s.w.t.base, s.room))
        .header("x-confctl-session", &s.session)
        .send()
        .await
        .unwrap();
    let (status, list) = support::read(r).await;
    assert_eq!((status, list["files"].as_array().unwrap().len()), (200, 1));

    // The guest downloads: a redirect to a 5-minute presigned GET, or the bytes from confctl.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect
        .get(format!("{}/api/files/{file_id}/download", s.w.t.base))
        .header("x-confctl-session", &s.session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = match backend {
        Backend::S3 => {
            assert_eq!(r.status(), 302);
            let location = r.headers()["location"].to_str().unwrap().to_owned();
            assert!(
                location.contains("X-Amz-Expires=300") && location.contains("response-content-disposition"),
                "{location}"
            );
            reqwest::get(location).await.unwrap()
        }
        Backend::Local => r,
    };
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment;") && disposition.contains("filename*=UTF-8''%D0%9B"), "{disposition}");
    assert_eq!(r.bytes().await.unwrap().to_vec(), content);

    // Outsiders: no credentials, a guest of another room, a guest still in a lobby.
    assert_eq!(reqwest::get(format!("{}/api/files/{file_id}/download", s.w.t.base)).await.unwrap().status(), 401);
    let (_, other_room) = s.host.post("/api/rooms", json!({"name": "Other", "lobbyEnabled": false})).await;
    let (_, stranger) =
        s.w.t
            .client()
            .post(
                &format!("/api/rooms/{}/join", other_room["id"].as_str().unwrap()),
                json!({"displayName": "Eve", "sessionFingerprint": "fp-eve-0123456789abcdef", "inviteCode": other_room["inviteCode"]}),
            )
            .await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/files/{file_id}/download", s.w.t.base))
        .header("x-confctl-session", stranger["sessionId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a guest of another room cannot download");
    s.host.patch(&format!("/api/rooms/{}", s.room), json!({"lobbyEnabled": true})).await;
    let (_, waiting) =
        s.w.t
            .client()
            .post(
                &format!("/api/rooms/{}/join", s.room),
                json!({"displayName": "Wait", "sessionFingerprint": "fp-wait-0123456789abcd", "inviteCode": s.w.t.invite_code(&s.room).await}),
            )
            .await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/rooms/{}/files", s.w.t.base, s.room))
        .header("x-confctl-session", waiting["sessionId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the lobby cannot list shared files");

    let (status, _) = s.host.delete(&format!("/api/rooms/{}/files/{file_id}", s.room)).await;
    assert_eq!(status, 204);
    assert_eq!(s.host.get(&format!("/api/rooms/{}/files", s.room)).await.1["files"], json!([]));
    let audit = support::audit_of(&s.w.t.app, None, "file.delete", 5).await;
    assert_eq!(audit.len(), 1, "file deletions are audited");
}

async fn bad_uploads_are_refused(db: Db, backend: Backend) {
    let s = setup(db, backend, &[("files.room_quota_bytes", "100")]).await;
    // More bytes than declared: confctl cuts the stream at the declared size (413), the store refuses a
    // length other than the signed one (403); either way nothing is stored and nothing can be completed.
    let (_, ticket) = s.ticket(false, "notes.txt", "text/plain", 5).await;
    let file_id = ticket["fileId"].as_str().unwrap().to_owned();
    let (put, body) = s.put_read(&ticket, vec![b'x'; 1024 * 1024]).await;
    match backend {
        Backend::Local => assert_eq!((put, error_code(&body)), (413, "upload_too_large"), "{body}"),
        Backend::S3 => assert_eq!(put, 403, "Content-Length is signed: {body}"),
    }
    let key = format!("rooms/{}/{file_id}", s.room);
    assert_eq!(s.w.t.app.storage().size(&key).await.unwrap(), None, "no byte of an oversized upload is kept");
    let (status, body) = s.complete(&file_id).await;
    assert_eq!((status, error_code(&body)), (409, "upload_missing"));
    // Fewer bytes than declared: refused by the store, or (local) caught at complete and discarded.
    let (put, _) = s.put_read(&ticket, b"abc".to_vec()).await;
    let (status, body) = s.complete(&file_id).await;
    match backend {
        Backend::Local => {
            assert_eq!(put, 200);
            assert_eq!((status, error_code(&body)), (409, "size_mismatch"), "{body}");
        }
        Backend::S3 => {
            assert_eq!(put, 403, "a shorter body does not match the signed length either");
            assert_eq!((status, error_code(&body)), (409, "upload_missing"), "{body}");
        }
    }
    assert_eq!(s.host.get(&format!("/api/rooms/{}/files", s.room)).await.1["files"], json!([]));

    // A tampered signature is refused by the store (or by confctl for local files).
    let (_, ticket) = s.ticket(false, "a.txt", "text/plain", 3).await;
    let mut tampered = ticket.clone();
    let url = ticket["uploadUrl"].as_str().unwrap();
    let flipped = if url.ends_with('0') { "1" } else { "0" };
    tampered["uploadUrl"] = json!(format!("{}{flipped}", &url[..url.len() - 1]));
    assert_eq!(s.put(&tampered, b"abc".to_vec()).await, 403);
    // The wrong content type breaks an S3 signature too.
    if backend == Backend::S3 {
        let mut wrong_type = ticket.clone();
        wrong_type["headers"]["Content-Type"] = json!("text/html");
        assert_eq!(s.put(&wrong_type, b"abc".to_vec()).await, 403, "the content type is signed");
    }

    // An expired URL is refused.
    match backend {
        Backend::S3 => {
            let storage = s.w.t.app.storage();
            let target =
                storage.upload_target("rooms/x/expired", "text/plain", 4, Duration::from_secs(1)).await.unwrap();
            let confctl::storage::UploadTarget::Presigned(url) = target else { panic!("S3 presigns") };
            tokio::time::sleep(Duration::from_millis(2100)).await;
            let status = reqwest::Client::new()
                .put(url)
                .header("content-type", "text/plain")
                .body("late")
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 403, "expired presigned URL");
        }
        Backend::Local => {
            let key = s.w.t.app.store().instance_value("files_signing_key").await.unwrap().unwrap();
            let id = ticket["fileId"].as_str().unwrap();
            let past = confctl::time::now_ms() / 1000 - 10;
            let sig = confctl::storage::local_signature(&confctl::secret::Secret::new(key), "PUT", id, past);
            let r = reqwest::Client::new()
                .put(format!("{}/api/files/{id}/content?expires={past}&sig={sig}", s.w.t.base))
                .body("abc")
                .send()
                .await
                .unwrap();
            let (status, body) = support::read(r).await;
            assert_eq!((status, error_code(&body)), (403, "link_expired"));
        }
    }

    let (status, body) = s.ticket(false, "virus.exe", "application/octet-stream", 10).await;
    assert_eq!((status, error_code(&body)), (400, "file_type_not_allowed"));
    let (status, body) = s.ticket(false, "big.pdf", "application/pdf", 200 * 1024 * 1024).await;
    assert_eq!((status, error_code(&body)), (413, "file_too_large"));
    let (status, body) = s.ticket(false, "slides.pdf", "not a type", 10).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_content_type"));
    let (status, body) = s.ticket(false, "quota.pdf", "application/pdf", 99).await;
    assert_eq!((status, error_code(&body)), (409, "room_quota_exceeded"), "pending uploads count against the quota");
    // The unfinished tickets above hold their bytes until the sweep removes them.
    let removed = confctl::files::sweep_unfinished(&s.w.t.app, far_future()).await.unwrap();
    assert!(removed >= 1, "{removed}");
    let (status, body) = s.ticket(false, "quota.pdf", "application/pdf", 99).await;
    assert_eq!(status, 201, "the sweep freed the reservations: {body}");
    confctl::files::sweep_unfinished(&s.w.t.app, far_future()).await.unwrap();

    // Guests upload only when the host allows it.
    let (status, body) = s.ticket(true, "mine.pdf", "application/pdf", 10).await;
    assert_eq!((status, error_code(&body)), (403, "uploads_not_allowed"));
    s.host.patch(&format!("/api/rooms/{}", s.room), json!({"guestUploads": true})).await;
    let (status, _) = s.ticket(true, "mine.pdf", "application/pdf", 10).await;
    assert_eq!(status, 201);
}

/// A "now" past every unfinished upload's lifetime, for the sweep.
fn far_future() -> i64 {
    confctl::time::now_ms() + i64::try_from(confctl::files::PENDING_LIFETIME.as_millis()).unwrap() + 1
}

async fn quota_counts_reserved_and_stored_bytes_under_parallel_requests(db: Db, backend: Backend) {
    let s = setup(db, backend, &[("files.room_quota_bytes", "100")]).await;
    // One shared file of 10 bytes: 90 left.
    let (_, ticket) = s.ticket(false, "a.txt", "text/plain", 10).await;
    assert_eq!(s.put(&ticket, vec![b'a'; 10]).await, 200);
    assert_eq!(s.complete(ticket["fileId"].as_str().unwrap()).await.0, 200);

    // Twelve tickets of 20 bytes at once: exactly four fit (80 of the 90 bytes left).
    let requests = (0..12).map(|i| s.ticket(false, if i % 2 == 0 { "p.txt" } else { "q.txt" }, "text/plain", 20));
    let answers = futures::future::join_all(requests).await;
    let granted: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 201).map(|(_, t)| t).collect();
    for (status, body) in &answers {
        assert!(*status == 201 || (*status == 409 && error_code(body) == "room_quota_exceeded"), "{status} {body}");
    }
    assert_eq!(granted.len(), 4, "reservations cannot beat the quota: {answers:?}");
    let (status, _) = s.ticket(false, "r.txt", "text/plain", 11).await;
    assert_eq!(status, 409, "10 + 4 × 20 reserved or stored, 10 left");

    // One of them is uploaded but never completed; the others never upload. The sweep deletes all four
    // (objects and rows), leaves the shared file, and their bytes are free again.
    assert_eq!(s.put(granted[0], vec![b'p'; 20]).await, 200);
    let uploaded = format!("rooms/{}/{}", s.room, granted[0]["fileId"].as_str().unwrap());
    assert_eq!(s.w.t.app.storage().size(&uploaded).await.unwrap(), Some(20));
    assert_eq!(confctl::files::sweep_unfinished(&s.w.t.app, confctl::time::now_ms()).await.unwrap(), 0, "not yet");
    assert_eq!(confctl::files::sweep_unfinished(&s.w.t.app, far_future()).await.unwrap(), 4);
    assert_eq!(s.w.t.app.storage().size(&uploaded).await.unwrap(), None, "the object is gone");
    for t in &granted {
        let id = t["fileId"].as_str().unwrap();
        assert!(s.w.t.app.store().file_by_id(id).await.is_err(), "the row is gone");
        let (status, _) = s.complete(id).await;
        assert_eq!(status, 404);
    }
    assert_eq!(s.host.get(&format!("/api/rooms/{}/files", s.room)).await.1["files"].as_array().unwrap().len(), 1);
    let (status, body) = s.ticket(false, "big.txt", "text/plain", 90).await;
    assert_eq!(status, 201, "{body}");
}

async fn local_quota_counts_reserved_and_stored_bytes(db: Db) {
    quota_counts_reserved_and_stored_bytes_under_parallel_requests(db, Backend::Local).await
}
async fn s3_quota_counts_reserved_and_stored_bytes(db: Db) {
    if !support::require(&[Service::S3]) {
        return;
    }
    quota_counts_reserved_and_stored_bytes_under_parallel_requests(db, Backend::S3).await
}

async fn local_share_and_download(db: Db) {
    share_and_download(db, Backend::Local).await
}
async fn s3_share_and_download(db: Db) {
    if !support::require(&[Service::S3]) {
        return;
    }
    share_and_download(db, Backend::S3).await
}
async fn local_bad_uploads_are_refused(db: Db) {
    bad_uploads_are_refused(db, Backend::Local).await
}
async fn s3_bad_uploads_are_refused(db: Db) {
    if !support::require(&[Service::S3]) {
        return;
    }
    bad_uploads_are_refused(db, Backend::S3).await
}

on_both_databases!(
    local_share_and_download,
    s3_share_and_download,
    local_bad_uploads_are_refused,
    s3_bad_uploads_are_refused,
    local_quota_counts_reserved_and_stored_bytes,
    s3_quota_counts_reserved_and_stored_bytes
);
