//! Owns [`GoogleDouble`]: a stand-in for Google's OAuth 2.0 endpoints (authorize, token, revoke) and the part of
//! Drive API v3 that confctl uses (about, files list/get/create, resumable uploads for create and update), on
//! the same paths as Google's, so confctl's `[google]` URLs are the only thing that changes.
//!
//! It checks what Google checks: the client id and secret; the redirect URI against the registered ones and,
//! at the code exchange, against the authorization request's; the PKCE verifier against the S256 challenge
//! it saw; codes used once; `access_type=offline` and `prompt=consent` before a refresh token is issued; the
//! bearer token on every Drive call (uploads included); Drive's query syntax with its quote escaping; that an
//! update does not write `parents`; and the resumable protocol — `Content-Range` offsets that continue
//! exactly where the upload stands, chunks in multiples of 256 KiB but the last, the declared total, `308`
//! with `Range` and status queries with `bytes */TOTAL`.
//!
//! Failure switches make it fail on purpose: access tokens expired (the next call gets 401), the next Drive
//! calls answering 429 or 503, a chunk that breaks part-way (accepted up to an offset, then 503, and the
//! offset reported on the status query), consent revoked (`invalid_grant`), the storage quota exceeded, the
//! revocation endpoint down, the host refusing consent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::lock;

/// A request check that failed, answered as it is: boxed, since a `Response` is large and mostly the check
/// passes.
type Checked<T> = Result<T, Box<Response>>;

/// The scope confctl asks for.
pub const DRIVE_FILE_SCOPE: &str = "https://www.googleapis.com/auth/drive.file";
const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
const CHUNK_UNIT: u64 = 256 * 1024;

/// The OAuth client registered with the double, and the account that consents.
#[derive(Debug, Clone)]
pub struct GoogleDoubleConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The authorized redirect URIs of the client; an authorization request must use one of them exactly.
    pub redirect_uris: Vec<String>,
    /// The Google account that consents.
    pub email: String,
}

impl GoogleDoubleConfig {
    pub fn new(redirect_uri: &str) -> Self {
        Self {
            client_id: "1234-confctl.apps.googleusercontent.com".into(),
            client_secret: "GOCSPX-double-client-secret".into(),
            redirect_uris: vec![redirect_uri.to_owned()],
            email: "ada.lovelace@gmail.example".into(),
        }
    }
}

/// What the host does on the consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Allow,
    /// "Cancel": back with `error=access_denied`.
    Deny,
}

/// A file (or folder) in the double's Drive.
#[derive(Debug, Clone)]
pub struct DriveFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub content: Vec<u8>,
    /// How many times its content was written (1 after creation).
    pub versions: u32,
    pub trashed: bool,
    created: u64,
}

/// One request, as recorded.
#[derive(Debug, Clone)]
pub struct GoogleCall {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The `Content-Range` of an upload request.
    pub content_range: Option<String>,
    pub body_len: usize,
    pub status: u16,
}

#[derive(Debug)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: Option<(String, String)>,
    scope: String,
    offline: bool,
    consent_prompt: bool,
    used: bool,
    /// Refresh tokens issued from this code, revoked if the code is replayed (RFC 6749 §4.1.2).
    issued: Vec<String>,
}

#[derive(Debug)]
struct Grant {
    scope: String,
    revoked: bool,
}

#[derive(Debug)]
struct Access {
    refresh_token: Option<String>,
    scope: String,
    valid: bool,
}

#[derive(Debug)]
struct Session {
    /// The file an update session writes; `None` creates one.
    file_id: Option<String>,
    name: String,
    mime_type: String,
    parents: Vec<String>,
    total: Option<u64>,
    received: Vec<u8>,
    done: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    consent: Option<Consent>,
    consented_before: bool,
    codes: HashMap<String, CodeGrant>,
    grants: HashMap<String, Grant>,
    access: HashMap<String, Access>,
    files: Vec<DriveFile>,
    sessions: HashMap<String, Session>,
    calls: Vec<GoogleCall>,
    revoked: Vec<String>,
    refreshes: u32,
    // Failure switches.
    fail_next: Vec<u16>,
    break_at: Option<u64>,
    quota_exceeded: bool,
    revoke_down: bool,
    counter: u64,
}

impl Inner {
    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let random: String =
            URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{prefix}{}", self.counter))).chars().take(20).collect();
        format!("{prefix}{random}")
    }
}

#[derive(Debug)]
struct Shared {
    config: GoogleDoubleConfig,
    addr: SocketAddr,
    inner: Mutex<Inner>,
}

/// A running Google double on 127.0.0.1. Clones share the server, which stops with the last one.
#[derive(Debug, Clone)]
pub struct GoogleDouble {
    shared: Arc<Shared>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for GoogleDouble {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl GoogleDouble {
    pub async fn start(config: GoogleDoubleConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::start_with_listener(listener, config).await
    }

    /// Serves on a listener the caller bound (a browser test's fixed port).
    pub async fn start_with_listener(
        listener: tokio::net::TcpListener,
        config: GoogleDoubleConfig,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { config, addr, inner: Mutex::default() });
        let app = axum::Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, task: Arc::new(task) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn config(&self) -> &GoogleDoubleConfig {
        &self.shared.config
    }

    /// The `[google]` settings that point confctl at this double, as (key, value).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let base = self.url();
        vec![
            ("google.client_id", self.shared.config.client_id.clone()),
            ("google.client_secret", self.shared.config.client_secret.clone()),
            ("google.auth_url", format!("{base}/o/oauth2/v2/auth")),
            ("google.token_url", format!("{base}/token")),
            ("google.revoke_url", format!("{base}/revoke")),
            ("google.drive_url", base),
        ]
    }

    // ---- failure switches ----

    /// What the host answers on the consent screen (default: allow).
    pub fn set_consent(&self, consent: Consent) {
        lock(&self.shared.inner).consent = Some(consent);
    }

    /// Every access token issued so far stops working: the next Drive call with one gets 401.
    pub fn expire_access_tokens(&self) {
        for access in lock(&self.shared.inner).access.values_mut() {
            access.valid = false;
        }
    }

    /// The next `count` Drive calls answer `status` (429 `rateLimitExceeded`, 5xx `backendError`).
    pub fn fail_next_drive_calls(&self, count: usize, status: u16) {
        lock(&self.shared.inner).fail_next.extend(std::iter::repeat_n(status, count));
    }

    /// The next upload chunk that reaches past byte `offset` is cut there: the bytes before it are kept, the
    /// request answers 503, and a status query reports `offset` bytes received.
    pub fn break_upload_at(&self, offset: u64) {
        lock(&self.shared.inner).break_at = Some(offset);
    }

    /// The host removed confctl's access at Google: refresh tokens get `invalid_grant`, access tokens 401.
    pub fn revoke_consent(&self) {
        let mut inner = lock(&self.shared.inner);
        for grant in inner.grants.values_mut() {
            grant.revoked = true;
        }
        for access in inner.access.values_mut() {
            access.valid = false;
        }
    }

    /// Uploads are refused with 403 `storageQuotaExceeded` while on.
    pub fn set_quota_exceeded(&self, on: bool) {
        lock(&self.shared.inner).quota_exceeded = on;
    }

    /// The revocation endpoint answers 503 while on.
    pub fn set_revoke_down(&self, on: bool) {
        lock(&self.shared.inner).revoke_down = on;
    }

    // ---- shortcuts and inspection ----

    /// A refresh token as if the host had consented (for client tests that skip the browser).
    pub fn grant_refresh_token(&self) -> String {
        let mut inner = lock(&self.shared.inner);
        let token = format!("1//{}", inner.next_id("r"));
        inner.grants.insert(token.clone(), Grant { scope: DRIVE_FILE_SCOPE.into(), revoked: false });
        token
    }

    /// Every refresh token issued, live or revoked.
    pub fn refresh_tokens(&self) -> Vec<String> {
        lock(&self.shared.inner).grants.keys().cloned().collect()
    }

    /// True when the refresh token exists and is not revoked.
    pub fn refresh_token_live(&self, token: &str) -> bool {
        lock(&self.shared.inner).grants.get(token).is_some_and(|g| !g.revoked)
    }

    /// Tokens revoked through the revocation endpoint.
    pub fn revoked(&self) -> Vec<String> {
        lock(&self.shared.inner).revoked.clone()
    }

    /// How many refresh-token grants the token endpoint answered.
    pub fn refreshes(&self) -> u32 {
        lock(&self.shared.inner).refreshes
    }

    pub fn files(&self) -> Vec<DriveFile> {
        lock(&self.shared.inner).files.clone()
    }

    pub fn file(&self, id: &str) -> Option<DriveFile> {
        lock(&self.shared.inner).files.iter().find(|f| f.id == id).cloned()
    }

    /// The host deletes a file or folder in Drive.
    pub fn delete_file(&self, id: &str) {
        lock(&self.shared.inner).files.retain(|f| f.id != id);
    }

    /// The folder path of a file by names, from My Drive down (`["confctl", "Room", "…"]`).
    pub fn path_of(&self, id: &str) -> Vec<String> {
        let inner = lock(&self.shared.inner);
        let mut path = Vec::new();
        let mut current = inner.files.iter().find(|f| f.id == id).and_then(|f| f.parents.first().cloned());
        while let Some(parent) = current.filter(|p| p != "root") {
            let Some(folder) = inner.files.iter().find(|f| f.id == parent) else { break };
            path.insert(0, folder.name.clone());
            current = folder.parents.first().cloned();
        }
        path
    }

    pub fn calls(&self) -> Vec<GoogleCall> {
        lock(&self.shared.inner).calls.clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.shared.inner).calls.clear();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let request =
        Request { shared: &shared, method: &method, path: &path, query: &query, headers: &headers, body: &body };
    let response = request.route();
    let mut inner = lock(&shared.inner);
    inner.calls.push(GoogleCall {
        method: method.to_string(),
        path,
        query: uri.query().unwrap_or_default().to_owned(),
        content_range: headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        body_len: body.len(),
        status: response.status().as_u16(),
    });
    response
}

struct Request<'a> {
    shared: &'a Shared,
    method: &'a Method,
    path: &'a str,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

impl Request<'_> {
    fn route(&self) -> Response {
        let m = self.method;
        match self.path {
            "/o/oauth2/v2/auth" if m == Method::GET => self.authorize(),
            "/token" if m == Method::POST => self.token(),
            "/revoke" if m == Method::POST => self.revoke(),
            path if path.starts_with("/drive/v3/") || path.starts_with("/upload/drive/v3/") => self.drive(),
            _ => (StatusCode::NOT_FOUND, "no such endpoint in the Google double").into_response(),
        }
    }

    fn form(&self) -> Checked<HashMap<String, String>> {
        let ctype = self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !ctype.starts_with("application/x-www-form-urlencoded") {
            return Err(Box::new(oauth_error(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            )));
        }
        Ok(url::form_urlencoded::parse(self.body).into_owned().collect())
    }

    fn param(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The consent screen, answered at once by the configured [`Consent`].
    fn authorize(&self) -> Response {
        let config = &self.shared.config;
        if self.param("client_id") != config.client_id {
            return (StatusCode::UNAUTHORIZED, "Error 401: invalid_client. The OAuth client was not found.")
                .into_response();
        }
        let redirect = self.param("redirect_uri");
        // An unregistered redirect URI is never redirected to: Google shows an error page instead.
        if !config.redirect_uris.iter().any(|r| r == redirect) {
            return (StatusCode::BAD_REQUEST, "Error 400: redirect_uri_mismatch").into_response();
        }
        let Ok(mut back) = url::Url::parse(redirect) else {
            return (StatusCode::BAD_REQUEST, "Error 400: invalid_request (redirect_uri)").into_response();
        };
        let state = self.query.get("state").cloned();
        let mut fail = |error: &str| {
            back.query_pairs_mut().append_pair("error", error);
            if let Some(state) = &state {
                back.query_pairs_mut().append_pair("state", state);
            }
            redirect_to(back.as_str())
        };
        if self.param("response_type") != "code" {
            return fail("unsupported_response_type");
        }
        let scope = self.param("scope").to_owned();
        if scope.is_empty() {
            return fail("invalid_scope");
        }
        let challenge = match (self.query.get("code_challenge"), self.param("code_challenge_method")) {
            (None, _) => None,
            (Some(c), "S256") if c.len() == 43 => Some((c.clone(), "S256".to_owned())),
            (Some(c), "" | "plain") => Some((c.clone(), "plain".to_owned())),
            _ => return fail("invalid_request"),
        };
        let mut inner = lock(&self.shared.inner);
        if inner.consent == Some(Consent::Deny) {
            drop(inner);
            return fail("access_denied");
        }
        let code = format!("4/0{}", inner.next_id("c"));
        inner.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: config.client_id.clone(),
                redirect_uri: redirect.to_owned(),
                challenge,
                scope: scope.clone(),
                offline: self.param("access_type") == "offline",
                consent_prompt: self.param("prompt").split(' ').any(|p| p == "consent"),
                used: false,
                issued: Vec::new(),
            },
        );
        drop(inner);
        back.query_pairs_mut().append_pair("code", &code).append_pair("scope", &scope);
        if let Some(state) = &state {
            back.query_pairs_mut().append_pair("state", state);
        }
        redirect_to(back.as_str())
    }

    fn token(&self) -> Response {
        let form = match self.form() {
            Ok(form) => form,
            Err(response) => return *response,
        };
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let config = &self.shared.config;
        if get("client_id") != config.client_id || get("client_secret") != config.client_secret {
            return oauth_error(401, "invalid_client", "Unauthorized");
        }
        let mut inner = lock(&self.shared.inner);
        match get("grant_type") {
            "authorization_code" => {
                let code = get("code");
                let Some(grant) = inner.codes.get_mut(code) else {
                    return oauth_error(400, "invalid_grant", "Malformed auth code.");
                };
                if grant.used {
                    // A replayed code: refuse, and revoke what it gave the first time.
                    let issued = std::mem::take(&mut grant.issued);
                    for token in issued {
                        if let Some(g) = inner.grants.get_mut(&token) {
                            g.revoked = true;
                        }
                    }
                    return oauth_error(400, "invalid_grant", "Bad Request");
                }
                grant.used = true;
                if grant.client_id != get("client_id") {
                    return oauth_error(400, "invalid_grant", "Bad Request");
                }
                if grant.redirect_uri != get("redirect_uri") {
                    return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
                }
                if let Some((challenge, method)) = &grant.challenge {
                    let verifier = get("code_verifier");
                    let valid_form = (43..=128).contains(&verifier.len())
                        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                    let expected = if method == "S256" {
                        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
                    } else {
                        verifier.to_owned()
                    };
                    if verifier.is_empty() {
                        return oauth_error(400, "invalid_request", "code_verifier is missing");
                    }
                    if !valid_form || &expected != challenge {
                        return oauth_error(400, "invalid_grant", "Invalid code verifier.");
                    }
                }
                let scope = grant.scope.clone();
                // Google gives a refresh token for offline access on first consent, or when consent was asked
                // again; otherwise only an access token.
                let refresh = (grant.offline && (grant.consent_prompt || !inner.consented_before))
                    .then(|| format!("1//{}", inner.next_id("r")));
                if let Some(token) = &refresh {
                    if let Some(grant) = inner.codes.get_mut(code) {
                        grant.issued.push(token.clone());
                    }
                    inner.grants.insert(token.clone(), Grant { scope: scope.clone(), revoked: false });
                }
                inner.consented_before = true;
                let access = issue_access(&mut inner, refresh.clone(), &scope);
                let mut body =
                    json!({"access_token": access, "expires_in": 3599, "scope": scope, "token_type": "Bearer"});
                if let Some(token) = refresh {
                    body["refresh_token"] = json!(token);
                }
                axum::Json(body).into_response()
            }
            "refresh_token" => {
                let token = get("refresh_token").to_owned();
                let scope = match inner.grants.get(&token) {
                    Some(grant) if !grant.revoked => grant.scope.clone(),
                    _ => return oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
                };
                inner.refreshes += 1;
                let access = issue_access(&mut inner, Some(token), &scope);
                axum::Json(json!({"access_token": access, "expires_in": 3599, "scope": scope, "token_type": "Bearer"}))
                    .into_response()
            }
            _ => oauth_error(400, "unsupported_grant_type", "Invalid grant_type"),
        }
    }

    fn revoke(&self) -> Response {
        let form = match self.form() {
            Ok(form) => form,
            Err(response) => return *response,
        };
        let mut inner = lock(&self.shared.inner);
        if inner.revoke_down {
            return (StatusCode::SERVICE_UNAVAILABLE, "revocation is down").into_response();
        }
        let token = form.get("token").cloned().unwrap_or_default();
        // A refresh token, or an access token standing for its grant: the whole grant goes.
        let live_grant = inner.grants.get(&token).is_some_and(|g| !g.revoked);
        let live_access = inner.access.get(&token).filter(|a| a.valid).map(|a| a.refresh_token.clone());
        let refresh = match (live_grant, live_access) {
            (true, _) => Some(token.clone()),
            (false, Some(refresh)) => refresh,
            (false, None) => return oauth_error(400, "invalid_token", "Token expired or revoked"),
        };
        if let Some(grant) = refresh.as_ref().and_then(|r| inner.grants.get_mut(r)) {
            grant.revoked = true;
        }
        for (key, access) in inner.access.iter_mut() {
            if *key == token || (refresh.is_some() && access.refresh_token == refresh) {
                access.valid = false;
            }
        }
        inner.revoked.push(token);
        axum::Json(json!({})).into_response()
    }

    /// Drive: the bearer token first, then the failure switches, then the API.
    fn drive(&self) -> Response {
        let mut inner = lock(&self.shared.inner);
        let bearer = self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let access = inner.access.get(bearer).filter(|a| {
            a.valid && a.refresh_token.as_ref().is_none_or(|r| inner.grants.get(r).is_some_and(|g| !g.revoked))
        });
        let Some(access) = access else {
            return drive_error(401, "authError", "Request had invalid authentication credentials.")
                .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"https://accounts.google.com/\"");
        };
        if !access.scope.split(' ').any(|s| s == DRIVE_FILE_SCOPE) {
            return drive_error(403, "insufficientPermissions", "Request had insufficient authentication scopes.");
        }
        if !inner.fail_next.is_empty() {
            let status = inner.fail_next.remove(0);
            let reason = if status == 429 { "rateLimitExceeded" } else { "backendError" };
            return drive_error(status, reason, "The double was told to fail this call.");
        }
        let m = self.method;
        let path = self.path;
        if path == "/drive/v3/about" && m == Method::GET {
            return axum::Json(json!({"user": {"emailAddress": self.shared.config.email, "displayName": "Ada"}}))
                .into_response();
        }
        if path == "/drive/v3/files" && m == Method::GET {
            return self.list(&inner);
        }
        if path == "/drive/v3/files" && m == Method::POST {
            return self.create_metadata(&mut inner);
        }
        if let Some(id) = path.strip_prefix("/drive/v3/files/").filter(|_| m == Method::GET) {
            return match inner.files.iter().find(|f| f.id == id) {
                Some(file) => axum::Json(file_json(file)).into_response(),
                None => not_found(id),
            };
        }
        if path.starts_with("/upload/drive/v3/files") {
            if self.param("uploadType") != "resumable" {
                return drive_error(400, "invalid", "Only uploadType=resumable is served by the double.");
            }
            if let Some(upload_id) = self.query.get("upload_id") {
                if m != Method::PUT {
                    return drive_error(400, "invalid", "An upload session takes PUT.");
                }
                return self.session_put(&mut inner, upload_id);
            }
            let existing = path.strip_prefix("/upload/drive/v3/files/");
            return match (m, existing) {
                (&Method::POST, None) => self.start_session(&mut inner, None),
                (&Method::PATCH, Some(id)) => self.start_session(&mut inner, Some(id)),
                _ => drive_error(405, "methodNotAllowed", "Create with POST, update with PATCH."),
            };
        }
        drive_error(404, "notFound", "No such Drive method in the double.")
    }

    fn list(&self, inner: &Inner) -> Response {
        let terms = match parse_query(self.param("q")) {
            Ok(terms) => terms,
            Err(message) => return drive_error(400, "invalid", &format!("Invalid Value: {message}")),
        };
        let page_size: usize = self.param("pageSize").parse().unwrap_or(100);
        let mut found: Vec<&DriveFile> = inner.files.iter().filter(|f| terms.iter().all(|t| t.matches(f))).collect();
        found.sort_by_key(|f| f.created);
        let files: Vec<Value> = found.into_iter().take(page_size).map(file_json).collect();
        axum::Json(json!({"kind": "drive#fileList", "files": files})).into_response()
    }

    fn metadata(&self) -> Checked<Value> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(self.body).map_err(|_| Box::new(drive_error(400, "parseError", "Parse Error")))
    }

    fn parents_exist(inner: &Inner, parents: &[String]) -> Checked<()> {
        for parent in parents {
            if parent != "root" && !inner.files.iter().any(|f| &f.id == parent && f.mime_type == FOLDER_MIME) {
                return Err(Box::new(not_found(parent)));
            }
        }
        Ok(())
    }

    fn create_metadata(&self, inner: &mut Inner) -> Response {
        let meta = match self.metadata() {
            Ok(meta) => meta,
            Err(response) => return *response,
        };
        let parents = string_list(&meta["parents"]);
        if let Err(response) = Self::parents_exist(inner, &parents) {
            return *response;
        }
        let file = new_file(inner, &meta, parents, Vec::new());
        axum::Json(file_json(&file)).into_response()
    }

    fn start_session(&self, inner: &mut Inner, existing: Option<&str>) -> Response {
        let meta = match self.metadata() {
            Ok(meta) => meta,
            Err(response) => return *response,
        };
        let total =
            match self.headers.get("x-upload-content-length").map(|v| v.to_str().ok().and_then(|v| v.parse().ok())) {
                None => None,
                Some(Some(total)) => Some(total),
                Some(None) => return drive_error(400, "invalid", "X-Upload-Content-Length is not a number."),
            };
        let declared_type = self.headers.get("x-upload-content-type").and_then(|v| v.to_str().ok());
        let (parents, base) = match existing {
            Some(id) => {
                if meta.get("parents").is_some() {
                    return drive_error(
                        403,
                        "fieldNotWritable",
                        "The parents field is not directly writable in update requests. Use the addParents and removeParents parameters instead.",
                    );
                }
                let Some(file) = inner.files.iter().find(|f| f.id == id) else { return not_found(id) };
                (file.parents.clone(), format!("/upload/drive/v3/files/{id}"))
            }
            None => {
                let parents = string_list(&meta["parents"]);
                if let Err(response) = Self::parents_exist(inner, &parents) {
                    return *response;
                }
                (parents, "/upload/drive/v3/files".to_owned())
            }
        };
        if inner.quota_exceeded {
            return drive_error(403, "storageQuotaExceeded", "The user's Drive storage quota has been exceeded.");
        }
        let upload_id = inner.next_id("u");
        let name = meta["name"].as_str().unwrap_or("Untitled").to_owned();
        let mime_type = meta["mimeType"].as_str().or(declared_type).unwrap_or("application/octet-stream").to_owned();
        inner.sessions.insert(
            upload_id.clone(),
            Session {
                file_id: existing.map(str::to_owned),
                name,
                mime_type,
                parents,
                total,
                received: Vec::new(),
                done: None,
            },
        );
        let location =
            format!("{}{base}?uploadType=resumable&upload_id={upload_id}", format_args!("http://{}", self.shared.addr));
        (StatusCode::OK, [(header::LOCATION, location)]).into_response()
    }

    fn session_put(&self, inner: &mut Inner, upload_id: &str) -> Response {
        let Some(session) = inner.sessions.get(upload_id) else {
            return drive_error(404, "notFound", "Upload session not found.");
        };
        if let Some(id) = &session.done {
            return finished(inner, id, false);
        }
        let range = self.headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some((span, total)) = range.strip_prefix("bytes ").and_then(|r| r.split_once('/')) else {
            return drive_error(400, "invalid", "Content-Range must be `bytes START-END/TOTAL` or `bytes */TOTAL`.");
        };
        let Ok(total) = total.parse::<u64>() else {
            return drive_error(400, "invalid", "This double needs the total size in Content-Range.");
        };
        if session.total.is_some_and(|t| t != total) {
            return drive_error(400, "invalid", "Content-Range total differs from X-Upload-Content-Length.");
        }
        let received = session.received.len() as u64;
        if span == "*" {
            if !self.body.is_empty() {
                return drive_error(400, "invalid", "A status query has no body.");
            }
            if total == 0 && received == 0 {
                return complete(inner, upload_id);
            }
            return incomplete(received);
        }
        let Some((start, end)) =
            span.split_once('-').and_then(|(s, e)| Some((s.parse::<u64>().ok()?, e.parse::<u64>().ok()?)))
        else {
            return drive_error(400, "invalid", "Malformed Content-Range.");
        };
        if end < start || end >= total || self.body.len() as u64 != end - start + 1 {
            return drive_error(400, "invalid", "Content-Range does not match the body's length or the total.");
        }
        if start > received {
            return drive_error(
                400,
                "invalid",
                &format!(
                    "The upload offset is {start} byte(s), which exceeds the {received} byte(s) already uploaded."
                ),
            );
        }
        if end + 1 != total && (end - start + 1) % CHUNK_UNIT != 0 {
            return drive_error(400, "invalid", "Every chunk but the last must be a multiple of 256 KiB.");
        }
        // Bytes already received again (a resend after a break) are skipped, as Google does.
        let skip = usize::try_from(received - start).unwrap_or(usize::MAX);
        let mut take = &self.body[skip.min(self.body.len())..];
        let broken = inner.break_at.filter(|at| *at > received && *at <= end);
        if let Some(at) = broken {
            take = &take[..usize::try_from(at - received).unwrap_or(0)];
            inner.break_at = None;
        }
        let Some(session) = inner.sessions.get_mut(upload_id) else { return not_found(upload_id) };
        session.received.extend_from_slice(take);
        if broken.is_some() {
            return drive_error(503, "backendError", "The connection broke mid-chunk (double).");
        }
        if session.received.len() as u64 == total {
            return complete(inner, upload_id);
        }
        incomplete(session.received.len() as u64)
    }
}

fn issue_access(inner: &mut Inner, refresh_token: Option<String>, scope: &str) -> String {
    let token = format!("ya29.{}", inner.next_id("a"));
    inner.access.insert(token.clone(), Access { refresh_token, scope: scope.to_owned(), valid: true });
    token
}

fn new_file(inner: &mut Inner, meta: &Value, parents: Vec<String>, content: Vec<u8>) -> DriveFile {
    let id = inner.next_id("f");
    let created = inner.counter;
    let file = DriveFile {
        id,
        name: meta["name"].as_str().unwrap_or("Untitled").to_owned(),
        mime_type: meta["mimeType"].as_str().unwrap_or("application/octet-stream").to_owned(),
        parents: if parents.is_empty() { vec!["root".into()] } else { parents },
        content,
        versions: 1,
        trashed: false,
        created,
    };
    inner.files.push(file.clone());
    file
}

/// The upload is whole: create the file, or write the updated one.
fn complete(inner: &mut Inner, upload_id: &str) -> Response {
    let Some(session) = inner.sessions.get(upload_id) else { return not_found(upload_id) };
    let content = session.received.clone();
    let (file_id, created) = match session.file_id.clone() {
        Some(id) => {
            let (name, mime) = (session.name.clone(), session.mime_type.clone());
            let Some(file) = inner.files.iter_mut().find(|f| f.id == id) else { return not_found(&id) };
            file.content = content;
            file.name = name;
            file.mime_type = mime;
            file.versions += 1;
            (id, false)
        }
        None => {
            let meta = json!({"name": session.name, "mimeType": session.mime_type});
            let parents = session.parents.clone();
            (new_file(inner, &meta, parents, content).id, true)
        }
    };
    if let Some(session) = inner.sessions.get_mut(upload_id) {
        session.done = Some(file_id.clone());
    }
    finished(inner, &file_id, created)
}

fn finished(inner: &Inner, file_id: &str, created: bool) -> Response {
    match inner.files.iter().find(|f| f.id == file_id) {
        Some(file) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, axum::Json(file_json(file))).into_response()
        }
        None => not_found(file_id),
    }
}

/// `308 Resume Incomplete`, with `Range` once anything arrived.
fn incomplete(received: u64) -> Response {
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Some(value) = received.checked_sub(1).and_then(|end| format!("bytes=0-{end}").parse().ok()) {
        response.headers_mut().insert(header::RANGE, value);
    }
    response
}

fn file_json(file: &DriveFile) -> Value {
    json!({"kind": "drive#file", "id": file.id, "name": file.name, "mimeType": file.mime_type,
           "parents": file.parents, "trashed": file.trashed})
}

fn string_list(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn redirect_to(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({"error": error, "error_description": description}))).into_response()
}

fn drive_error(status: u16, reason: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": {"code": status, "message": message,
        "errors": [{"domain": "global", "reason": reason, "message": message}]}});
    (code, axum::Json(body)).into_response()
}

fn not_found(id: &str) -> Response {
    drive_error(404, "notFound", &format!("File not found: {id}."))
}

trait WithHeader {
    fn with_header(self, name: header::HeaderName, value: &'static str) -> Response;
}

impl WithHeader for Response {
    fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Response {
        self.headers_mut().insert(name, axum::http::HeaderValue::from_static(value));
        self
    }
}

/// One condition of the subset of Drive's query language the double understands.
#[derive(Debug, PartialEq)]
enum Term {
    Name(String),
    MimeType(String),
    InParents(String),
    Trashed(bool),
}

impl Term {
    fn matches(&self, file: &DriveFile) -> bool {
        match self {
            Self::Name(name) => &file.name == name,
            Self::MimeType(mime) => &file.mime_type == mime,
            Self::InParents(parent) => file.parents.iter().any(|p| p == parent),
            Self::Trashed(trashed) => file.trashed == *trashed,
        }
    }
}

/// Parses `term and term …` where a term is `name = '…'`, `mimeType = '…'`, `'…' in parents` or
/// `trashed = true|false`. String literals are single-quoted; inside, `\'` is a quote and `\\` a backslash,
/// and any other backslash or a bare quote is an error, as in Drive.
fn parse_query(q: &str) -> Result<Vec<Term>, String> {
    let mut tokens = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut literal = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(e @ ('\'' | '\\')) => literal.push(e),
                        _ => return Err("bad escape in a string literal".into()),
                    },
                    Some('\'') => break,
                    Some(other) => literal.push(other),
                    None => return Err("unterminated string literal".into()),
                }
            }
            tokens.push(Token::Literal(literal));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '\'' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    let mut terms = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        let (term, after) = match rest {
            [Token::Word(field), Token::Word(eq), Token::Literal(value), after @ ..] if eq == "=" => {
                match field.as_str() {
                    "name" => (Term::Name(value.clone()), after),
                    "mimeType" => (Term::MimeType(value.clone()), after),
                    other => return Err(format!("unknown field {other}")),
                }
            }
            [Token::Literal(parent), Token::Word(is_in), Token::Word(parents), after @ ..]
                if is_in == "in" && parents == "parents" =>
            {
                (Term::InParents(parent.clone()), after)
            }
            [Token::Word(field), Token::Word(eq), Token::Word(value), after @ ..]
                if field == "trashed" && eq == "=" =>
            {
                match value.as_str() {
                    "true" => (Term::Trashed(true), after),
                    "false" => (Term::Trashed(false), after),
                    _ => return Err("trashed takes true or false".into()),
                }
            }
            _ => return Err("unexpected query syntax".into()),
        };
        terms.push(term);
        match after {
            [] => return Ok(terms),
            [Token::Word(and), more @ ..] if and == "and" => rest = more,
            _ => return Err("terms must be joined with and".into()),
        }
    }
}

#[derive(Debug)]
enum Token {
    Word(String),
    Literal(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn queries_parse_with_escaped_quotes_and_refuse_bare_ones() {
        let terms = parse_query(r"name = 'O\'Brien\\s' and 'root' in parents and trashed = false").unwrap();
        assert_eq!(terms, vec![Term::Name(r"O'Brien\s".into()), Term::InParents("root".into()), Term::Trashed(false)]);
        assert!(parse_query("name = 'O'Brien'").is_err());
        assert!(parse_query(r"name = 'a\b'").is_err());
        assert!(parse_query("name contains 'x'").is_err());
    }
}
