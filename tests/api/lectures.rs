//! Rooms and lectures on both databases: one room, two sessions with the same invite link; who may read a
//! lecture (host, admin, another host, admitted guests with and without the room's setting, a guest of
//! another lecture, share links valid, expired and revoked); attendance over rejoins; the summary's edits
//! and regeneration; transcript search.

use confctl_doubles::webhook::events;
use livekit_protocol as proto;
use serde_json::{Value, json};

use crate::support::{self, Browser, Db, WithLiveKit, error_code};

on_both_databases!(
    a_room_holds_lectures_week_after_week_with_one_link,
    who_may_read_a_lecture,
    attendance_adds_up_rejoins,
    summaries_are_edited_and_regenerated,
    transcripts_are_searched,
    lectures_download_in_every_format,
);

/// One hour ago, in LiveKit's webhook clock (seconds).
fn an_hour_ago() -> i64 {
    chrono::Utc::now().timestamp() - 3600
}

struct Held {
    w: WithLiveKit,
    admin: Browser,
    ada: Browser,
    bob: Browser,
    room: Value,
    /// The lecture that was held and ended.
    lecture: String,
    /// Ann, admitted to it: her browser and guest session.
    ann: Browser,
    ann_session: String,
    ann_identity: String,
    agent_token: String,
    t0: i64,
}

impl Held {
    fn room_id(&self) -> &str {
        self.room["id"].as_str().unwrap()
    }

    async fn webhook(&self, mut event: proto::WebhookEvent, at: i64) {
        event.created_at = at;
        let d = self.w.lk.send_webhook(&self.w.webhook_url(), event).await.unwrap();
        assert_eq!(d.status, Some(200));
    }

    async fn as_guest(&self, browser: &Browser, session: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
        let r = browser
            .http
            .request(method, format!("{}{path}", self.w.t.base))
            .header("x-confctl-session", session)
            .send()
            .await
            .unwrap();
        support::read(r).await
    }

    async fn as_share(&self, token: &str, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.w.t.base))
            .header("x-confctl-share", token)
            .send()
            .await
            .unwrap();
        support::read(r).await
    }

    async fn caption(&self, lecture: &str, seg: &str, start_ms: i64, text: &str) {
        let body = json!({"segmentId": seg, "speakerIdentity": "h_x", "speakerName": "Prof. Ada", "text": text,
            "final": true, "startMs": start_ms, "endMs": start_ms + 3000, "language": "en", "provider": "whisper"});
        let r = self.as_agent(reqwest::Method::POST, &format!("/api/agent/lectures/{lecture}/captions"), &body).await;
        assert_eq!(r.status(), 202);
    }

    /// Ann asks to join the room (again) under `name`, from her one browser.
    async fn ann_joins(&self, name: &str) -> (u16, Value) {
        self.ann
            .post(
                &format!("/api/rooms/{}/join", self.room_id()),
                json!({"displayName": name, "sessionFingerprint": "fp-ann-000000000000000",
                       "inviteCode": self.room["inviteCode"]}),
            )
            .await
    }

    /// A request of the lecture assistant, with its token.
    async fn as_agent(&self, method: reqwest::Method, path: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.w.t.base))
            .bearer_auth(&self.agent_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Ada's room, one lecture held an hour ago and ended: Ann admitted, a reload in the middle, captions, and
/// the assistant's summary citing them.
async fn held(db: Db) -> Held {
    let w = WithLiveKit::spawn(db, &[]).await;
    let admin = w.t.client();
    admin.register("root@uni.edu", "Root").await;
    let ada = w.t.client();
    ada.register("ada@uni.edu", "Prof. Ada").await;
    let bob = w.t.client();
    bob.register("bob@uni.edu", "Bob").await;
    let (s, room) = ada.post("/api/rooms", json!({"name": "Биология 101"})).await;
    assert_eq!(s, 201, "{room}");
    let lecture = room["lectureId"].as_str().unwrap().to_owned();
    let (_, agent_token) =
        confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "t").await.unwrap();
    let mut h = Held {
        ann: w.t.client(),
        w,
        admin,
        ada,
        bob,
        room,
        lecture: lecture.clone(),
        ann_session: String::new(),
        ann_identity: String::new(),
        agent_token,
        t0: an_hour_ago(),
    };
    let lk_room = h.w.lk.add_room(h.room["livekitRoomName"].as_str().unwrap());
    h.webhook(events::room_started(&lk_room), h.t0).await;

    let (s, joined) = h.ann_joins("Ann Student").await;
    assert_eq!((s, joined["lectureId"].as_str()), (201, Some(lecture.as_str())), "{joined}");
    h.ann_session = joined["sessionId"].as_str().unwrap().to_owned();
    let (_, lobby) = h.ada.get(&format!("/api/rooms/{}/lobby", h.room_id())).await;
    let entry = lobby["entries"][0]["id"].as_str().unwrap();
    h.ada.post(&format!("/api/rooms/{}/lobby/{entry}/approve", h.room_id()), json!({})).await;
    let ann = h.w.t.app.store().participant_by_session(&confctl::ids::session_hash(&h.ann_session)).await.unwrap();
    h.ann_identity = ann.unwrap().identity;

    // The host from the start; Ann 10 minutes, a reload, then 5 more.
    let (_, token) = h.ada.post(&format!("/api/rooms/{}/token", h.room_id()), json!({})).await;
    let host = h.w.lk.add_participant(&lk_room.name, token["identity"].as_str().unwrap(), "Prof. Ada", "{}", None);
    h.webhook(events::participant_joined(&lk_room, &host), h.t0).await;
    let mut ann_p = h.w.lk.add_participant(&lk_room.name, &h.ann_identity, "Ann Student", "{}", None);
    h.webhook(events::participant_joined(&lk_room, &ann_p), h.t0 + 60).await;
    h.webhook(events::participant_left(&lk_room, &ann_p), h.t0 + 660).await;
    h.webhook(events::participant_joined(&lk_room, &ann_p), h.t0 + 900).await;
    ann_p.joined_at = h.t0 + 900;
    h.webhook(events::participant_left(&lk_room, &ann_p), h.t0 + 1200).await;

    h.caption(&lecture, "s1", 1_000, "Plants convert sunlight into chemical energy.").await;
    h.caption(&lecture, "s2", 5_000, "Хлорофилл отражает зелёный свет.").await;
    h.caption(&lecture, "s3", 9_000, "Read chapter four before Friday.").await;
    let (s, ended) = h.ada.post(&format!("/api/rooms/{}/end", h.room_id()), json!({})).await;
    assert_eq!((s, ended["endedLectureId"].as_str()), (200, Some(lecture.as_str())));
    let summary = json!({"abstract": "Photosynthesis.", "kind": "extractive", "language": "en",
        "keyTopics": [{"topic": "photosynthesis", "startMs": 1000, "endMs": 4000}],
        "actionItems": [{"text": "Read chapter four", "startMs": 9000, "endMs": 12000}],
        "qa": []});
    let artifact = json!({"transcriptText": "t", "transcriptVtt": "WEBVTT\n", "summary": summary,
        "summaryKind": "extractive", "provider": "confctl", "model": "extractive-v1", "status": "complete"});
    let r = h.as_agent(reqwest::Method::PUT, &format!("/api/agent/lectures/{lecture}/artifact"), &artifact).await;
    assert_eq!(r.status(), 200);
    h
}

async fn a_room_holds_lectures_week_after_week_with_one_link(db: Db) {
    let h = held(db).await;
    let (_, room) = h.ada.get(&format!("/api/rooms/{}", h.room_id())).await;
    assert_eq!((room["status"].as_str(), room["lectureNumber"].as_i64()), (Some("READY"), Some(2)));
    assert_eq!(room["inviteCode"], h.room["inviteCode"], "the same invite link");
    let next = room["lectureId"].as_str().unwrap().to_owned();
    assert_ne!(next, h.lecture);

    // Last week's session admits no one to this week's lecture: Ann joins again through the link.
    let (s, body) = h
        .as_guest(&h.ann, &h.ann_session, reqwest::Method::POST, &format!("/api/rooms/{}/guest-token", h.room_id()))
        .await;
    assert_eq!((s, error_code(&body)), (410, "room_ended"));
    let (s, joined) = h.ann_joins("Ann Student").await;
    assert_eq!(
        (s, joined["lectureId"].as_str(), joined["status"].as_str()),
        (201, Some(next.as_str()), Some("PENDING"))
    );
    let (_, lobby) = h.ada.get(&format!("/api/rooms/{}/lobby", h.room_id())).await;
    assert_eq!(lobby["entries"].as_array().unwrap().len(), 1, "only this week's lobby");

    // The second session goes live and ends too; the room lists both, newest first.
    let lk_room = h.w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    assert_eq!(lk_room.name, confctl::livekit::room_name(&next));
    h.webhook(events::room_started(&lk_room), chrono::Utc::now().timestamp()).await;
    assert_eq!(h.ada.get(&format!("/api/rooms/{}", h.room_id())).await.1["status"], "LIVE");
    h.ada.post(&format!("/api/rooms/{}/end", h.room_id()), json!({})).await;
    let (_, list) = h.ada.get(&format!("/api/rooms/{}/lectures", h.room_id())).await;
    let list = list["lectures"].as_array().unwrap();
    let numbers: Vec<(i64, &str)> =
        list.iter().map(|l| (l["number"].as_i64().unwrap(), l["status"].as_str().unwrap())).collect();
    assert_eq!(numbers, [(2, "ENDED"), (1, "ENDED")]);
    assert_eq!(list[1]["roomName"], "Биология 101");
    let (_, mine) = h.ada.get("/api/lectures").await;
    assert_eq!(mine["lectures"].as_array().unwrap().len(), 2);
    assert_eq!(h.bob.get("/api/lectures").await.1["lectures"].as_array().unwrap().len(), 0);
    assert_eq!(h.bob.get("/api/lectures?all=true").await.0, 403);
    assert_eq!(h.admin.get("/api/lectures?all=true").await.1["lectures"].as_array().unwrap().len(), 2);

    // Archived: no joins, no host token; the lectures stay; unarchived, the same link works again.
    assert_eq!(h.ada.post(&format!("/api/rooms/{}/archive", h.room_id()), json!({})).await.1["status"], "ARCHIVED");
    let (s, body) = h.ann_joins("Ann").await;
    assert_eq!((s, error_code(&body)), (410, "room_archived"));
    assert_eq!(h.ada.get(&format!("/api/lectures/{}", h.lecture)).await.0, 200);
    assert_eq!(h.ada.post(&format!("/api/rooms/{}/unarchive", h.room_id()), json!({})).await.1["status"], "READY");
    let (s, _) = h.ann_joins("Ann").await;
    assert_eq!(s, 201);
}

async fn who_may_read_a_lecture(db: Db) {
    let h = held(db).await;
    let path = format!("/api/lectures/{}", h.lecture);
    let (s, host_view) = h.ada.get(&path).await;
    assert_eq!(s, 200, "{host_view}");
    assert_eq!(host_view["viewer"]["role"], "host");
    assert!(host_view["attendance"].is_array());

    let (s, admin_view) = h.admin.get(&path).await;
    assert_eq!((s, admin_view["viewer"]["role"].as_str()), (200, Some("admin")));
    for (who, status) in [(h.bob.get(&path).await, 404), (h.w.t.client().get(&path).await, 404)] {
        assert_eq!((who.0, error_code(&who.1)), (status, "lecture_not_found"), "another host and strangers: {}", who.1);
    }
    assert_eq!(h.bob.get(&format!("{path}/transcript")).await.0, 404);
    assert_eq!(h.bob.get("/api/lectures/no-such-lecture").await.0, 404, "the same answer as for no lecture");

    // Ann was admitted, but the room keeps lecture pages to the host until it says otherwise.
    let (s, _) = h.as_guest(&h.ann, &h.ann_session, reqwest::Method::GET, &path).await;
    assert_eq!(s, 404);
    h.ada.patch(&format!("/api/rooms/{}", h.room_id()), json!({"lecturesForParticipants": true})).await;
    let (s, ann_view) = h.as_guest(&h.ann, &h.ann_session, reqwest::Method::GET, &path).await;
    assert_eq!((s, ann_view["viewer"]["role"].as_str()), (200, Some("participant")), "{ann_view}");
    assert!(ann_view.get("attendance").is_none(), "guests do not see attendance");
    assert_eq!(ann_view["summary"]["state"], "ready");
    let (s, body) = h.as_guest(&h.ann, &h.ann_session, reqwest::Method::POST, &format!("{path}/shares")).await;
    assert_eq!((s, error_code(&body)), (404, "lecture_not_found"), "a participant cannot share");

    // A guest of another lecture of the same room proves nothing here.
    let carl = h.w.t.client();
    let (_, joined) = carl
        .post(
            &format!("/api/rooms/{}/join", h.room_id()),
            json!({"displayName": "Carl", "sessionFingerprint": "fp-carl-00000000000000", "inviteCode": h.room["inviteCode"]}),
        )
        .await;
    let carl_session = joined["sessionId"].as_str().unwrap();
    let (_, lobby) = h.ada.get(&format!("/api/rooms/{}/lobby", h.room_id())).await;
    h.ada
        .post(
            &format!("/api/rooms/{}/lobby/{}/approve", h.room_id(), lobby["entries"][0]["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(h.as_guest(&carl, carl_session, reqwest::Method::GET, &path).await.0, 404);

    // Share links: read-only, no attendance, expiring, revocable.
    let (s, share) = h.ada.post(&format!("{path}/shares"), json!({"expiresIn": "2h"})).await;
    assert_eq!(s, 201, "{share}");
    let token = share["token"].as_str().unwrap().to_owned();
    assert!(share["path"].as_str().unwrap().ends_with(&format!("?share={token}")));
    let (s, shared) = h.as_share(&token, &path).await;
    assert_eq!(
        (s, shared["viewer"]["role"].as_str(), shared["viewer"]["canEdit"].as_bool()),
        (200, Some("share"), Some(false))
    );
    assert!(shared.get("attendance").is_none());
    assert_eq!(h.as_share(&token, &format!("{path}/transcript")).await.0, 200);
    let (_, list) = h.ada.get(&format!("{path}/shares")).await;
    assert_eq!(list["shares"][0]["state"], "active");
    assert!(list["shares"][0].get("token").is_none(), "the token is shown once");
    assert!(!list.to_string().contains(&token));
    assert_eq!(h.as_share("not-a-token", &path).await.0, 404);
    assert_eq!(h.ada.post(&format!("{path}/shares"), json!({"expiresIn": "forever"})).await.0, 400);
    assert_eq!(h.bob.post(&format!("{path}/shares"), json!({})).await.0, 404);
    h.w.t.app.clock().advance(std::time::Duration::from_secs(3 * 3600));
    assert_eq!(h.as_share(&token, &path).await.0, 404, "expired");
    let (_, fresh) = h.ada.post(&format!("{path}/shares"), json!({})).await;
    let fresh_token = fresh["token"].as_str().unwrap();
    assert_eq!(h.as_share(fresh_token, &path).await.0, 200);
    let (s, _) = h.ada.delete(&format!("{path}/shares/{}", fresh["id"].as_str().unwrap())).await;
    assert_eq!(s, 204);
    assert_eq!(h.as_share(fresh_token, &path).await.0, 404, "revoked");
    assert_eq!(h.ada.delete(&format!("{path}/shares/{}", fresh["id"].as_str().unwrap())).await.0, 404);

    // Every read by someone other than the host is audited; the host's own are not.
    let audit = support::audit_of(&h.w.t.app, None, "lecture.read", 50).await;
    let via: Vec<&str> = audit.iter().filter_map(|e| e.details["via"].as_str()).collect();
    for who in ["admin", "participant", "share"] {
        assert!(via.contains(&who), "a read by a {who} is audited: {via:?}");
    }
    assert!(!via.contains(&"host"));
}

async fn attendance_adds_up_rejoins(db: Db) {
    let h = held(db).await;
    let (_, view) = h.ada.get(&format!("/api/lectures/{}", h.lecture)).await;
    let rows = view["attendance"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ann = rows.iter().find(|r| r["name"] == "Ann Student").unwrap();
    assert_eq!((ann["minutesPresent"].as_f64(), ann["joins"].as_u64()), (Some(15.0), Some(2)), "{ann}");
    assert_eq!(ann["role"], "guest");
    let first = chrono::DateTime::parse_from_rfc3339(ann["firstJoin"].as_str().unwrap()).unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(ann["lastLeave"].as_str().unwrap()).unwrap();
    assert_eq!((first.timestamp(), last.timestamp()), (h.t0 + 60, h.t0 + 1200));
    let host = rows.iter().find(|r| r["role"] == "host").unwrap();
    assert!(host["minutesPresent"].as_f64().unwrap() >= 59.0, "present until the end: {host}");
    assert_eq!(rows[0]["role"], "host", "ordered by first join");
}

async fn summaries_are_edited_and_regenerated(db: Db) {
    let h = held(db).await;
    let path = format!("/api/lectures/{}", h.lecture);
    let (_, view) = h.ada.get(&path).await;
    let block = &view["summary"];
    assert_eq!((block["state"].as_str(), block["edited"].as_bool()), (Some("ready"), Some(false)));
    let version = block["version"].as_i64().unwrap();
    let mut summary = block["summary"].clone();
    assert_eq!(summary["keyTopics"][0]["endMs"], 4000);

    // Bad edits name the field.
    let mut empty = summary.clone();
    empty["keyTopics"][0]["topic"] = json!("  ");
    let (s, body) = h.ada.put(&format!("{path}/summary"), json!({"summary": empty, "version": version})).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_summary"));
    assert!(body["error"]["message"].as_str().unwrap().contains("keyTopics[0].topic"), "{body}");
    let mut outside = summary.clone();
    outside["actionItems"][0]["startMs"] = json!(60_000);
    outside["actionItems"][0]["endMs"] = json!(61_000);
    let (s, body) = h.ada.put(&format!("{path}/summary"), json!({"summary": outside, "version": version})).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_citation"));
    assert!(body["error"]["message"].as_str().unwrap().contains("actionItems[0]"), "{body}");

    // A good edit is kept and marked; an edit of a stale version is refused.
    summary["keyTopics"].as_array_mut().unwrap().push(json!({"topic": "Хлорофилл", "startMs": 5000, "endMs": 8000}));
    let (s, saved) = h.ada.put(&format!("{path}/summary"), json!({"summary": summary, "version": version})).await;
    assert_eq!(s, 200, "{saved}");
    assert_eq!((saved["edited"].as_bool(), saved["editedBy"].as_str()), (Some(true), Some("Prof. Ada")));
    let topics = saved["summary"]["keyTopics"].as_array().unwrap();
    assert_eq!((topics[0]["edited"].as_bool(), topics[1]["edited"].as_bool()), (None, Some(true)));
    let (s, body) = h.ada.put(&format!("{path}/summary"), json!({"summary": summary, "version": version})).await;
    assert_eq!((s, error_code(&body)), (409, "summary_changed"));
    let (_, again) = h.ada.get(&path).await;
    assert_eq!(again["summary"]["summary"]["keyTopics"][1]["topic"], "Хлорофилл", "the edit persists");
    assert_eq!(h.bob.put(&format!("{path}/summary"), json!({"summary": summary, "version": version})).await.0, 404);

    // Regenerating asks before it replaces edits, then writes the summary again in the background.
    let (s, body) = h.ada.post(&format!("{path}/summary/regenerate"), json!({})).await;
    assert_eq!((s, error_code(&body)), (409, "summary_edited"));
    let (s, pending) = h.ada.post(&format!("{path}/summary/regenerate"), json!({"replaceEdits": true})).await;
    assert_eq!((s, pending["state"].as_str()), (202, Some("pending")), "{pending}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let fresh = loop {
        let (_, v) = h.ada.get(&path).await;
        if v["summary"]["state"] != "pending" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "the summary was never written again");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (fresh["summary"]["state"].as_str(), fresh["summary"]["edited"].as_bool()),
        (Some("ready"), Some(false))
    );
    let regenerated = &fresh["summary"]["summary"];
    let segments = [(1_000, 4_000), (5_000, 8_000), (9_000, 12_000)];
    for item in
        regenerated["keyTopics"].as_array().unwrap().iter().chain(regenerated["actionItems"].as_array().unwrap())
    {
        let (start, end) = (item["startMs"].as_i64().unwrap(), item["endMs"].as_i64().unwrap());
        assert!(segments.iter().any(|(s, e)| *s <= end && start <= *e), "cites the transcript: {item}");
    }
}

async fn transcripts_are_searched(db: Db) {
    let h = held(db).await;
    let path = format!("/api/lectures/{}/transcript", h.lecture);
    let (s, all) = h.ada.get(&path).await;
    assert_eq!((s, all["segmentCount"].as_u64()), (200, Some(3)));
    let paragraphs = all["paragraphs"].as_array().unwrap();
    assert_eq!(paragraphs.len(), 1, "one speaker turn");
    assert_eq!(paragraphs[0]["speakerName"], "Prof. Ada");
    assert_eq!(paragraphs[0]["segments"].as_array().unwrap().len(), 3);

    // Case-insensitive beyond ASCII, on both databases.
    let (_, found) = h.ada.get(&format!("{path}?q=%D0%A5%D0%9B%D0%9E%D0%A0%D0%9E%D0%A4%D0%98%D0%9B%D0%9B")).await;
    assert_eq!(found["matches"], 1, "ХЛОРОФИЛЛ finds Хлорофилл: {found}");
    let (_, found) = h.ada.get(&format!("{path}?q=SUNLIGHT")).await;
    assert_eq!(found["paragraphs"][0]["segments"][0]["id"], "s1");
    let (_, none) = h.ada.get(&format!("{path}?q=100%25")).await;
    assert_eq!(none["matches"], 0, "LIKE wildcards are literal");
    let (s, body) = h.ada.get(&format!("{path}?q=a")).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_query"));

    // Across the host's lectures.
    let (_, hits) = h.ada.get("/api/lectures?q=chapter%20four").await;
    let hits = hits["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0]["lecture"]["id"].as_str(), hits[0]["startMs"].as_i64()),
        (Some(h.lecture.as_str()), Some(9_000))
    );
    assert_eq!(h.bob.get("/api/lectures?q=chapter%20four").await.1["hits"].as_array().unwrap().len(), 0);
}

async fn lectures_download_in_every_format(db: Db) {
    let h = held(db).await;
    let export = |format: &str| format!("{}/api/lectures/{}/export?format={format}", h.w.t.base, h.lecture);
    let get = |browser: &Browser, url: String| {
        let http = browser.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    for (format, content_type, needle) in [
        ("md", "text/markdown", "Read chapter four"),
        ("json", "application/json", "\"schemaVersion\": 1"),
        ("vtt", "text/vtt", "WEBVTT"),
        ("srt", "application/x-subrip", "00:00:05,000 --> 00:00:08,000"),
        ("txt", "text/plain", "Хлорофилл отражает зелёный свет."),
        ("attendance.csv", "text/csv", "Ann Student"),
    ] {
        let r = get(&h.ada, export(format)).await;
        assert_eq!(r.status(), 200, "{format}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(content_type), "{format}");
        let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        let text = r.text().await.unwrap();
        assert!(text.contains(needle), "{format} lacks {needle:?}:\n{text}");
    }
    let pdf = get(&h.ada, export("pdf")).await.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "a real PDF");
    let zip = get(&h.ada, export("zip")).await;
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let zip = zip.bytes().await.unwrap();
    assert!(zip.starts_with(b"PK") && zip.windows(14).any(|w| w == b"attendance.csv"));

    // Bad input and access: the allowed formats named, another host's lecture not found, attendance only
    // for the host, a share link's reader reads the rest.
    let r = get(&h.ada, export("docx")).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "unknown_format");
    assert!(body["error"]["message"].as_str().unwrap().contains("pdf, md, json, vtt, srt, txt, attendance.csv, zip"));
    assert_eq!(get(&h.bob, export("pdf")).await.status(), 404);
    let (_, share) = h.ada.post(&format!("/api/lectures/{}/shares", h.lecture), json!({})).await;
    let token = share["token"].as_str().unwrap();
    let stranger = h.w.t.client();
    assert_eq!(get(&stranger, format!("{}&share={token}", export("md"))).await.status(), 200);
    assert_eq!(get(&stranger, format!("{}&share={token}", export("attendance.csv"))).await.status(), 403);
    let zip = get(&stranger, format!("{}&share={token}", export("zip"))).await.bytes().await.unwrap();
    assert!(!zip.windows(14).any(|w| w == b"attendance.csv"), "no attendance in a shared ZIP");
}
