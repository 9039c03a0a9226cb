//! Google Drive export against the in-repo Google double (`confctl_doubles::GoogleDouble`), which checks
//! what Google checks. Through the HTTP API on both databases: connecting (PKCE, `state` bound to the
//! session, single use), the refresh token sealed at rest, key rotation, disconnecting (revoked at Google,
//! deleted even when Google is down), a lecture uploaded and re-uploaded into the same files, and revoked
//! consent. Against the client alone: every failure Google can produce — an expired access token (refresh
//! and retry once), 429 and 5xx (backoff), a chunk that breaks mid-upload (resume from the offset Google
//! reports), the storage quota — and the OAuth checks the double makes.

use std::time::Duration;

use crate::support::{Browser, Db, TestApp, error_code};
use confctl::gdrive::{self, DriveError, ExportFile, Google, RetryPolicy, Settings, Source};
use confctl::secret::Secret;
use confctl_doubles::{Consent, GoogleDouble, GoogleDoubleConfig};
use serde_json::json;
use sqlx::Row;

/// The instance's public address; the double has its callback registered as the redirect URI.
const PUBLIC_URL: &str = "http://lectures.example.edu";

async fn double() -> GoogleDouble {
    confctl_doubles::install_crypto_provider();
    GoogleDouble::start(GoogleDoubleConfig::new(&format!("{PUBLIC_URL}/auth/google/callback"))).await.unwrap()
}

/// An instance configured for Drive with the double, a signed-in host, and the host's user id.
async fn setup(db: Db) -> (TestApp, GoogleDouble, Browser, String) {
    let g = double().await;
    let settings = g.settings();
    let mut overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.push(("public_url", PUBLIC_URL));
    let t = TestApp::spawn(db, &overrides).await;
    let host = t.client();
    let user = host.register("ada@uni.edu", "Ada").await;
    (t, g, host, user["id"].as_str().unwrap().to_owned())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Starts connecting and lets the double's consent screen answer: the URL Google sends the browser back to
/// (on the public address), and the authorization URL's query.
async fn consent(host: &Browser, g: &GoogleDouble) -> (url::Url, Vec<(String, String)>) {
    let (status, body) = host.post("/api/drive/connect", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let authorize = url::Url::parse(body["authorizeUrl"].as_str().unwrap()).unwrap();
    assert!(authorize.as_str().starts_with(&g.url()), "{authorize}");
    let query = authorize.query_pairs().into_owned().collect();
    let response = no_redirects().get(authorize).send().await.unwrap();
    assert_eq!(response.status(), 302, "the double's consent screen redirects back");
    let back = response.headers()["location"].to_str().unwrap();
    (url::Url::parse(back).unwrap(), query)
}

/// The browser follows Google's redirect to the callback: the account page URL it ends on.
async fn come_back(host: &Browser, back: &url::Url) -> String {
    let url = format!("{}{}?{}", host.base, back.path(), back.query().unwrap_or_default());
    let response = host.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let end = response.url();
    format!("{}?{}", end.path(), end.query().unwrap_or_default())
}

async fn connect(host: &Browser, g: &GoogleDouble) {
    let (back, _) = consent(host, g).await;
    assert_eq!(come_back(host, &back).await, "/account?drive=connected");
}

fn with_param(url: &url::Url, name: &str, value: &str) -> url::Url {
    let mut out = url.clone();
    let pairs: Vec<(String, String)> =
        url.query_pairs().into_owned().map(|(k, v)| if k == name { (k, value.to_owned()) } else { (k, v) }).collect();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

async fn connection_row(t: &TestApp, user_id: &str) -> Option<(String, i64, String, Option<String>)> {
    let row =
        sqlx::query("SELECT refresh_token, key_version, scope, google_email FROM drive_connections WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(t.app.store().raw_pool_for_tests())
            .await
            .unwrap()?;
    Some((row.get("refresh_token"), row.get("key_version"), row.get("scope"), row.get("google_email")))
}

async fn drive_not_offered_without_the_oauth_client(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let host = t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (status, body) = host.get("/api/drive").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"configured": false, "connected": false, "email": null, "connectedAt": null}));
    let (status, body) = host.post("/api/drive/connect", json!({})).await;
    assert_eq!((status, error_code(&body)), (409, "drive_not_configured"), "{body}");
    let (status, body) = host.delete("/api/drive").await;
    assert_eq!((status, error_code(&body)), (409, "drive_not_connected"), "{body}");
    let (status, _) = t.client().get("/api/drive").await;
    assert_eq!(status, 401, "signed in only");
}

async fn connecting_checks_state_and_pkce_and_seals_the_token(db: Db) {
    let (t, g, host, user_id) = setup(db).await;
    let (status, body) = host.get("/api/drive").await;
    assert_eq!((status, &body["configured"], &body["connected"]), (200, &json!(true), &json!(false)));

    // What confctl asks Google for.
    let (back, asked) = consent(&host, &g).await;
    let param = |name: &str| asked.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("scope"), "https://www.googleapis.com/auth/drive.file");
    assert_eq!(param("access_type"), "offline");
    assert_eq!(param("prompt"), "consent");
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(param("code_challenge").len(), 43);
    assert_eq!(param("redirect_uri"), format!("{PUBLIC_URL}/auth/google/callback"));
    assert!(param("state").len() >= 43, "a 256-bit state");

    // A state confctl did not issue is refused, and does not connect.
    let forged = with_param(&back, "state", "forged-state-forged-state-forged-state-1234");
    assert_eq!(come_back(&host, &forged).await, "/account?drive=drive_state_invalid");
    assert_eq!(host.get("/api/drive").await.1["connected"], false);

    // A state is bound to the session that started it: another session of the same host is refused, and
    // the attempt uses the state up.
    let other = t.client();
    let (status, _) =
        other.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!(status, 200);
    assert_eq!(come_back(&other, &back).await, "/account?drive=drive_state_invalid");
    assert_eq!(come_back(&host, &back).await, "/account?drive=drive_state_invalid", "single use");
    assert!(connection_row(&t, &user_id).await.is_none());

    // A state lives 10 minutes.
    let (back, _) = consent(&host, &g).await;
    t.app.clock().advance(Duration::from_secs(11 * 60));
    assert_eq!(come_back(&host, &back).await, "/account?drive=drive_state_invalid", "expired");

    // The host said no at Google.
    g.set_consent(Consent::Deny);
    let (back, _) = consent(&host, &g).await;
    assert_eq!(come_back(&host, &back).await, "/account?drive=drive_consent_denied");
    g.set_consent(Consent::Allow);

    // The real thing; then the same callback again is refused.
    let (back, _) = consent(&host, &g).await;
    assert_eq!(come_back(&host, &back).await, "/account?drive=connected");
    assert_eq!(come_back(&host, &back).await, "/account?drive=drive_state_invalid", "a state works once");
    let (_, body) = host.get("/api/drive").await;
    assert_eq!(body["connected"], true);
    assert_eq!(body["email"], g.config().email.as_str());
    assert!(body["connectedAt"].is_string());
    assert!(!body.to_string().contains("1//"), "the token is never shown: {body}");

    // At rest: sealed, not the token Google issued.
    let issued = g.refresh_tokens();
    assert_eq!(issued.len(), 1, "one grant with a refresh token");
    let (sealed, version, scope, email) = connection_row(&t, &user_id).await.unwrap();
    assert!(!sealed.contains(&issued[0]) && !sealed.contains(issued[0].trim_start_matches("1//")), "{sealed}");
    assert_eq!(
        (version, scope.as_str(), email.as_deref()),
        (1, gdrive::DRIVE_FILE_SCOPE, Some(g.config().email.as_str()))
    );
    let audit = sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'drive.connect'")
        .fetch_one(t.app.store().raw_pool_for_tests())
        .await
        .unwrap();
    assert_eq!(audit.get::<i64, _>("n"), 1);
}

async fn a_lecture_uploads_into_its_folder_and_again_into_the_same_files(db: Db) {
    let (t, g, host, user_id) = setup(db).await;
    connect(&host, &g).await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Photosynthesis 101"})).await;
    let lecture = room["lectureId"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("lecture.pdf");
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&pdf, &big).unwrap();
    let files = |text: &str| {
        vec![
            ExportFile {
                name: "lecture.pdf".into(),
                mime: "application/pdf".into(),
                source: Source::Path(pdf.clone()),
            },
            ExportFile {
                name: "transcript.txt".into(),
                mime: "text/plain".into(),
                source: Source::Bytes(text.as_bytes().to_vec().into()),
            },
        ]
    };
    let label = "2026-11-28 Lecture 1";
    let first =
        gdrive::upload_lecture(&t.app, &user_id, &lecture, "Photosynthesis 101", label, files("v1")).await.unwrap();
    assert!(first.files.iter().all(|f| !f.updated));
    let pdf_id = &first.files[0].file_id;
    assert_eq!(g.path_of(pdf_id), ["confctl", "Photosynthesis 101", label]);
    assert_eq!(g.file(pdf_id).unwrap().content, big);
    assert_eq!(g.file(&first.files[1].file_id).unwrap().content, b"v1");

    let second =
        gdrive::upload_lecture(&t.app, &user_id, &lecture, "Photosynthesis 101", label, files("v2")).await.unwrap();
    assert_eq!(second.folder_id, first.folder_id);
    for (a, b) in first.files.iter().zip(&second.files) {
        assert_eq!(a.file_id, b.file_id, "{} is updated in place", a.name);
        assert!(b.updated);
    }
    assert_eq!(g.file(&second.files[1].file_id).unwrap().content, b"v2");
    assert_eq!(g.file(&second.files[1].file_id).unwrap().versions, 2);
    assert_eq!(g.files().len(), 5, "three folders and two files, no copies");

    // Rotation re-seals the token; the old key goes; uploads go on.
    let (before, ..) = connection_row(&t, &user_id).await.unwrap();
    let rotation = gdrive::rotate_key(&t.app, &confctl::audit::Actor::system()).await.unwrap();
    assert_eq!((rotation.version, rotation.resealed, rotation.removed_versions.as_slice()), (2, 1, &[1][..]));
    let (after, version, ..) = connection_row(&t, &user_id).await.unwrap();
    assert_eq!(version, 2);
    assert_ne!(before, after);
    let keys = sqlx::query("SELECT version FROM drive_token_keys")
        .fetch_all(t.app.store().raw_pool_for_tests())
        .await
        .unwrap();
    assert_eq!(keys.iter().map(|r| r.get::<i64, _>("version")).collect::<Vec<_>>(), [2]);

    // The host deleted the transcript in Drive: the next export makes a new one, and updates the PDF.
    g.delete_file(&second.files[1].file_id);
    let third =
        gdrive::upload_lecture(&t.app, &user_id, &lecture, "Photosynthesis 101", label, files("v3")).await.unwrap();
    assert_eq!(third.files[0].file_id, *pdf_id);
    assert!(third.files[0].updated && !third.files[1].updated);
    assert_ne!(third.files[1].file_id, second.files[1].file_id);
}

async fn disconnecting_revokes_at_google_and_deletes_even_when_google_is_down(db: Db) {
    let (t, g, host, user_id) = setup(db).await;
    connect(&host, &g).await;
    let token = g.refresh_tokens().pop().unwrap();
    let (status, body) = host.delete("/api/drive").await;
    assert_eq!((status, body), (200, json!({"revoked": true})));
    assert!(!g.refresh_token_live(&token), "revoked at Google");
    assert_eq!(g.revoked(), [token]);
    assert!(connection_row(&t, &user_id).await.is_none());
    assert_eq!(host.get("/api/drive").await.1["connected"], false);

    connect(&host, &g).await;
    g.set_revoke_down(true);
    let (status, body) = host.delete("/api/drive").await;
    assert_eq!(
        (status, body),
        (200, json!({"revoked": false})),
        "deleted here, and the answer says Google was not told"
    );
    assert!(connection_row(&t, &user_id).await.is_none());
    let (status, body) = host.delete("/api/drive").await;
    assert_eq!((status, error_code(&body)), (409, "drive_not_connected"));
}

async fn revoked_consent_asks_the_host_to_reconnect(db: Db) {
    let (t, g, host, user_id) = setup(db).await;
    connect(&host, &g).await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Optics"})).await;
    let lecture = room["lectureId"].as_str().unwrap().to_owned();
    g.revoke_consent();
    let file =
        || vec![ExportFile { name: "a.txt".into(), mime: "text/plain".into(), source: Source::Bytes("a".into()) }];
    // The access token from the connection is cached; Google refuses it (401), the refresh gets invalid_grant.
    let err = gdrive::upload_lecture(&t.app, &user_id, &lecture, "Optics", "x", file()).await.unwrap_err();
    assert!(matches!(err, DriveError::Reconnect), "{err:?}");
    let api: confctl::Error = err.into();
    assert_eq!(api.code(), "drive_reconnect");
    assert!(api.to_string().contains("reconnect Google Drive"), "{api}");
    assert_eq!(host.get("/api/drive").await.1["connected"], false, "the dead grant is forgotten");
    let err = gdrive::upload_lecture(&t.app, &user_id, &lecture, "Optics", "x", file()).await.unwrap_err();
    assert!(matches!(err, DriveError::NotConnected), "{err:?}");
}

on_both_databases!(
    drive_not_offered_without_the_oauth_client,
    connecting_checks_state_and_pkce_and_seals_the_token,
    a_lecture_uploads_into_its_folder_and_again_into_the_same_files,
    disconnecting_revokes_at_google_and_deletes_even_when_google_is_down,
    revoked_consent_asks_the_host_to_reconnect
);

// ---- the client alone ----

/// A client of the double with quick retries and the smallest chunk Drive takes.
fn client(g: &GoogleDouble) -> Google {
    let setting = |key: &str| g.settings().into_iter().find(|(k, _)| *k == key).unwrap().1;
    let url = |key: &str| url::Url::parse(&setting(key)).unwrap();
    Google::new(Settings {
        client_id: setting("google.client_id"),
        client_secret: Secret::new(setting("google.client_secret")),
        auth_url: url("google.auth_url"),
        token_url: url("google.token_url"),
        revoke_url: url("google.revoke_url"),
        drive_url: url("google.drive_url"),
        retry: RetryPolicy { attempts: 4, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) },
        chunk_size: gdrive::CHUNK_UNIT,
    })
    .unwrap()
}

/// The statuses of the Drive calls so far (OAuth calls left out).
fn statuses(g: &GoogleDouble) -> Vec<u16> {
    g.calls().iter().filter(|c| !matches!(c.path.as_str(), "/token" | "/revoke")).map(|c| c.status).collect()
}

#[tokio::test]
async fn the_access_token_is_cached_and_a_401_refreshes_it_and_retries_once() {
    let g = double().await;
    let google = client(&g);
    let drive = google.drive("u1", Secret::new(g.grant_refresh_token()));
    let folder = drive.ensure_folder(&["confctl"]).await.unwrap();
    assert_eq!(drive.ensure_folder(&["confctl"]).await.unwrap(), folder, "found, not made twice");
    assert_eq!(g.refreshes(), 1, "one access token for both");

    g.expire_access_tokens();
    g.clear_calls();
    assert_eq!(drive.ensure_folder(&["confctl"]).await.unwrap(), folder);
    assert_eq!(g.refreshes(), 2);
    assert_eq!(statuses(&g), [401, 200], "refused once, then the same call with a fresh token");

    // Consent revoked: the 401's refresh gets invalid_grant.
    g.revoke_consent();
    let err = drive.ensure_folder(&["confctl"]).await.unwrap_err();
    assert!(matches!(err, DriveError::Reconnect), "{err:?}");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff_then_given_up() {
    let g = double().await;
    let google = client(&g);
    let drive = google.drive("u1", Secret::new(g.grant_refresh_token()));
    g.fail_next_drive_calls(2, 429);
    g.fail_next_drive_calls(1, 503);
    drive.ensure_folder(&["confctl"]).await.unwrap();
    assert_eq!(statuses(&g).iter().filter(|s| **s != 200).collect::<Vec<_>>(), [&429, &429, &503]);

    g.fail_next_drive_calls(10, 503);
    let err = drive.ensure_folder(&["other"]).await.unwrap_err();
    assert!(matches!(err, DriveError::Unavailable), "{err:?}");
    let api: confctl::Error = err.into();
    assert_eq!(api.code(), "drive_unavailable");

    let policy = RetryPolicy::default();
    assert!(policy.delay(0, None) >= Duration::from_secs(1) && policy.delay(0, None) <= Duration::from_millis(1500));
    assert!(policy.delay(3, None) >= Duration::from_secs(8));
    assert!(policy.delay(20, None) <= Duration::from_secs(48), "capped");
    assert!(policy.delay(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30), "Retry-After is honoured");
}

#[tokio::test]
async fn a_broken_upload_resumes_from_the_offset_google_reports() {
    let g = double().await;
    let google = client(&g);
    let drive = google.drive("u1", Secret::new(g.grant_refresh_token()));
    let folder = drive.ensure_folder(&["confctl"]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recording.bin");
    let content: Vec<u8> = (0..1_048_676u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let total = content.len();

    g.break_upload_at(600_000);
    g.clear_calls();
    let up =
        drive.upload(&folder, "recording.bin", "application/octet-stream", &Source::Path(path), None).await.unwrap();
    assert_eq!(g.file(&up.file_id).unwrap().content, content);
    let ranges: Vec<(String, u16)> =
        g.calls().iter().filter_map(|c| c.content_range.clone().map(|r| (r, c.status))).collect();
    assert_eq!(
        ranges,
        [
            (format!("bytes 0-262143/{total}"), 308),
            (format!("bytes 262144-524287/{total}"), 308),
            (format!("bytes 524288-786431/{total}"), 503),
            (format!("bytes */{total}"), 308),
            (format!("bytes 600000-862143/{total}"), 308),
            (format!("bytes 862144-{}/{total}", total - 1), 201),
        ],
        "resumed at the reported 600000, not at the chunk's start"
    );
    // A chunk answered 503 before anything arrived: the status query says where to go on.
    g.fail_next_drive_calls(1, 503);
    let again =
        drive.upload(&folder, "r2.bin", "application/octet-stream", &Source::Bytes(content.clone().into()), None).await;
    assert_eq!(g.file(&again.unwrap().file_id).unwrap().content, content);
}

#[tokio::test]
async fn uploading_again_updates_the_same_file_and_an_empty_file_uploads() {
    let g = double().await;
    let google = client(&g);
    let drive = google.drive("u1", Secret::new(g.grant_refresh_token()));
    let folder = drive.ensure_folder(&["confctl", "O'Brien's \\ room", "2026-11-28 Lecture 1"]).await.unwrap();
    assert_eq!(
        drive.ensure_folder(&["confctl", "O'Brien's \\ room", "2026-11-28 Lecture 1"]).await.unwrap(),
        folder,
        "quotes and backslashes are escaped in the query"
    );
    let first = drive.upload(&folder, "a.md", "text/markdown", &Source::Bytes("one".into()), None).await.unwrap();
    let second = drive
        .upload(&folder, "a.md", "text/markdown", &Source::Bytes("two".into()), Some(&first.file_id))
        .await
        .unwrap();
    assert_eq!((second.file_id.as_str(), second.updated), (first.file_id.as_str(), true));
    let file = g.file(&first.file_id).unwrap();
    assert_eq!(
        (file.content.as_slice(), file.versions, file.parents.as_slice()),
        (&b"two"[..], 2, &[folder.clone()][..])
    );

    let empty =
        drive.upload(&folder, "empty.txt", "text/plain", &Source::Bytes(Vec::new().into()), None).await.unwrap();
    assert!(g.file(&empty.file_id).unwrap().content.is_empty());
    assert_eq!(g.files().len(), 5, "three folders, two files");
}

#[tokio::test]
async fn a_full_drive_is_its_own_error() {
    let g = double().await;
    let google = client(&g);
    let drive = google.drive("u1", Secret::new(g.grant_refresh_token()));
    let folder = drive.ensure_folder(&["confctl"]).await.unwrap();
    g.set_quota_exceeded(true);
    let err = drive.upload(&folder, "a.txt", "text/plain", &Source::Bytes("a".into()), None).await.unwrap_err();
    assert!(matches!(err, DriveError::QuotaExceeded), "{err:?}");
    let api: confctl::Error = err.into();
    assert_eq!(api.code(), "drive_quota_exceeded");
}

/// The double refuses what Google refuses at the code exchange: a wrong PKCE verifier, another redirect URI,
/// a code used twice.
#[tokio::test]
async fn the_code_exchange_needs_the_verifier_the_redirect_uri_and_a_fresh_code() {
    let g = double().await;
    let google = client(&g);
    let redirect = format!("{PUBLIC_URL}/auth/google/callback");
    let code = |pkce: &gdrive::Pkce| {
        let url = google.authorize_url(&redirect, "s", &pkce.challenge);
        async move {
            let response = no_redirects().get(url).send().await.unwrap();
            let back = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
            back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
        }
    };
    let pkce = gdrive::Pkce::new();
    let c = code(&pkce).await;
    let wrong = gdrive::Pkce::new();
    assert!(matches!(google.exchange_code(&c, &wrong.verifier, &redirect).await, Err(DriveError::Reconnect)));

    let c = code(&pkce).await;
    let err = google.exchange_code(&c, &pkce.verifier, "http://elsewhere.example/cb").await.unwrap_err();
    assert!(matches!(&err, DriveError::Rejected { reason, .. } if reason == "redirect_uri_mismatch"), "{err:?}");

    let c = code(&pkce).await;
    let grant = google.exchange_code(&c, &pkce.verifier, &redirect).await.unwrap();
    assert!(grant.refresh_token.is_some());
    assert!(
        matches!(google.exchange_code(&c, &pkce.verifier, &redirect).await, Err(DriveError::Reconnect)),
        "used twice"
    );

    // An unregistered redirect URI never gets a code at all.
    let url = google.authorize_url("http://evil.example/cb", "s", &pkce.challenge);
    assert_eq!(no_redirects().get(url).send().await.unwrap().status(), 400);
}
