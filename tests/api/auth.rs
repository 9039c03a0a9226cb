//! Accounts over HTTP: registration, sign-in, sessions, and the bad inputs around them, on both databases.

use serde_json::json;

use crate::support::{self, Db, TestApp, error_code};

on_both_databases!(
    first_account_is_admin_then_hosts,
    duplicate_email_is_conflict_case_insensitively,
    login_failures_look_alike_and_are_rate_limited,
    bad_bodies_get_clear_errors,
    strange_but_valid_input_round_trips,
    logout_and_password_change_end_sessions_server_side,
    disabled_user_is_signed_out_at_once,
    cross_site_writes_with_cookie_are_refused,
    closed_registration_allows_only_the_first_account,
    public_instance_needs_setup_code_for_first_account,
    readiness_reflects_the_database,
    idle_and_expired_sessions_end,
    admins_manage_accounts_through_the_api,
    limits_are_reserved_before_parallel_attempts_run,
    a_stranger_cannot_lock_the_owner_out,
);

/// Fires `n` copies of a request at once and counts the answers by status.
async fn parallel(n: usize, send: impl Fn() -> reqwest::RequestBuilder) -> std::collections::BTreeMap<u16, usize> {
    let requests: Vec<_> = (0..n).map(|_| send().send()).collect();
    let mut counts = std::collections::BTreeMap::new();
    for r in futures::future::join_all(requests).await {
        *counts.entry(r.unwrap().status().as_u16()).or_default() += 1;
    }
    counts
}

async fn audit_count(t: &TestApp, action: &str) -> usize {
    support::audit_of(&t.app, None, action, 1000).await.len()
}

async fn limits_are_reserved_before_parallel_attempts_run(db: Db) {
    let t = TestApp::spawn(
        db,
        &[
            ("rate_limits.login_per_account_per_minute", "5"),
            ("rate_limits.login_per_ip_per_minute", "1000"),
            ("rate_limits.register_per_ip_per_hour", "3"),
        ],
    )
    .await;
    let ada = t.client();
    ada.register("ada@uni.edu", "Ada").await;

    // 40 wrong passwords at once from a fresh browser: exactly 5 are checked, the rest wait.
    let stranger = reqwest::Client::new();
    let url = format!("{}/api/auth/login", t.base);
    let counts =
        parallel(40, || stranger.post(&url).json(&json!({"email": "ada@uni.edu", "password": "wrong password"}))).await;
    assert_eq!((counts.get(&401), counts.get(&429)), (Some(&5), Some(&35)), "{counts:?}");
    assert_eq!(audit_count(&t, "auth.login_failed").await, 5, "only five passwords were evaluated");

    // A stolen session guessing the current password is limited the same way.
    let url = format!("{}/api/auth/password", t.base);
    let counts = parallel(20, || {
        ada.http.post(&url).json(&json!({"currentPassword": "guess guess", "newPassword": "new password 123"}))
    })
    .await;
    assert_eq!((counts.get(&403), counts.get(&429)), (Some(&5), Some(&15)), "{counts:?}");
    assert_eq!(audit_count(&t, "user.password_change_failed").await, 5);

    // Registrations: the first one above used one of three slots.
    let url = format!("{}/api/auth/register", t.base);
    let n = std::sync::atomic::AtomicUsize::new(0);
    let counts = parallel(20, || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        stranger
            .post(&url)
            .json(&json!({"email": format!("r{i}@uni.edu"), "password": "correct horse battery", "name": "R"}))
    })
    .await;
    assert_eq!((counts.get(&201), counts.get(&429)), (Some(&2), Some(&18)), "{counts:?}");
}

async fn a_stranger_cannot_lock_the_owner_out(db: Db) {
    let t =
        TestApp::spawn(db, &[("trusted_proxies", "127.0.0.1/32"), ("rate_limits.login_per_account_per_minute", "3")])
            .await;
    let owner = t.client();
    owner.register("ada@uni.edu", "Ada").await;
    owner.post("/api/auth/logout", json!({})).await;
    let login = |b: &reqwest::Client, ip: &str, password: &str| {
        b.post(format!("{}/api/auth/login", t.base))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": "ada@uni.edu", "password": password}))
            .send()
    };
    // Someone elsewhere burns the account's budget, from a new address every time.
    let stranger = reqwest::Client::new();
    for i in 0..3 {
        assert_eq!(login(&stranger, &format!("203.0.113.{i}"), "wrong password").await.unwrap().status(), 401);
    }
    let r = login(&stranger, "203.0.113.9", "correct horse battery").await.unwrap();
    assert_eq!(r.status(), 429, "the account's limit holds for browsers that never signed in");
    let forged = reqwest::Client::new();
    let r = forged
        .post(format!("{}/api/auth/login", t.base))
        .header(
            "cookie",
            "confctl_device=AAAAAAAAAAAAAAAAAAAAAA.0000000000000000000000000000000000000000000000000000000000000000",
        )
        .json(&json!({"email": "ada@uni.edu", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "a forged device cookie counts for nothing");
    // The owner's browser signed in before: it carries a signed device cookie and gets in.
    let r = login(&owner.http, "198.51.100.7", "correct horse battery").await.unwrap();
    assert_eq!(r.status(), 200, "the owner is not locked out");
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let device = cookies.iter().find(|c| c.starts_with("confctl_device=")).expect("the device cookie is renewed");
    assert!(device.contains("HttpOnly") && device.contains("SameSite=Lax"), "{device}");
}

async fn admins_manage_accounts_through_the_api(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let admin = t.client();
    let me = admin.register("ada@uni.edu", "Ada").await;
    let (s, created) =
        admin.post("/api/admin/users", json!({"email": "ta@uni.edu", "name": "TA", "role": "HOST"})).await;
    assert_eq!(s, 201, "{created}");
    let password = created["password"].as_str().expect("a generated password is returned once").to_owned();
    let id = created["user"]["id"].as_str().unwrap().to_owned();
    let ta = t.client();
    let (s, _) = ta.post("/api/auth/login", json!({"email": "ta@uni.edu", "password": password})).await;
    assert_eq!(s, 200);
    assert_eq!(ta.get("/api/admin/users").await.0, 403, "hosts are not admins");

    let (s, changed) = admin.patch(&format!("/api/admin/users/{id}"), json!({"role": "ADMIN"})).await;
    assert_eq!((s, changed["user"]["role"].as_str()), (200, Some("ADMIN")));
    let (s, changed) = admin.patch(&format!("/api/admin/users/{id}"), json!({"disabled": true})).await;
    assert_eq!((s, changed["user"]["disabled"].as_bool()), (200, Some(true)));
    assert_eq!(ta.get("/api/auth/me").await.0, 401, "disabling signs out at once");

    let own = me["id"].as_str().unwrap();
    let (s, body) = admin.patch(&format!("/api/admin/users/{own}"), json!({"role": "HOST"})).await;
    assert_eq!((s, error_code(&body)), (409, "cannot_change_self"), "no self-lockout");
    let (s, body) = admin.patch("/api/admin/users/nobody", json!({"disabled": true})).await;
    assert_eq!((s, error_code(&body)), (404, "user_not_found"));
    let (_, list) = admin.get("/api/admin/users").await;
    assert_eq!(list["users"].as_array().unwrap().len(), 2);
    let (_, audit) = admin.get("/api/admin/audit?action=user.role_changed").await;
    assert_eq!(audit["entries"][0]["actorId"], me["id"], "the admin's change is audited under their name");
    t.stop().await;
}

async fn idle_and_expired_sessions_end(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let b = t.client();
    b.register("ada@uni.edu", "Ada").await;
    assert_eq!(b.get("/api/auth/me").await.0, 200);
    // Idle past the timeout (12 h by default): the session is gone, and stays gone.
    let pool = t.app.store().raw_pool_for_tests();
    sqlx::query("UPDATE sessions SET last_seen_at = 0").execute(pool).await.unwrap();
    assert_eq!(b.get("/api/auth/me").await.0, 401);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions").fetch_one(pool).await.unwrap();
    assert_eq!(n, 0, "an idle session is deleted, not just refused");

    // Past the absolute lifetime, however active.
    b.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!(b.get("/api/auth/me").await.0, 200);
    sqlx::query("UPDATE sessions SET expires_at = 1").execute(pool).await.unwrap();
    assert_eq!(b.get("/api/auth/me").await.0, 401);
    t.stop().await;
}

async fn first_account_is_admin_then_hosts(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let admin = t.client().register("ada@uni.edu", "Ada").await;
    assert_eq!(admin["role"], "ADMIN");
    let host = t.client().register("bob@uni.edu", "Bob").await;
    assert_eq!(host["role"], "HOST");
    assert!(admin.get("passwordHash").is_none() && admin.get("password_hash").is_none());

    let r = t
        .client()
        .http
        .post(format!("{}/api/auth/register", t.base))
        .json(&json!({"email": "cy@uni.edu", "password": "correct horse battery", "name": "Cy"}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("confctl_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(token.len() >= 43, "256-bit token");
    t.stop().await;
}

async fn duplicate_email_is_conflict_case_insensitively(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    t.client().register("Ada@Uni.edu", "Ada").await;
    let (status, body) = t
        .client()
        .post("/api/auth/register", json!({"email": "ada@UNI.edu", "password": "another password", "name": "Imposter"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error_code(&body), "email_taken");
    t.stop().await;
}

async fn login_failures_look_alike_and_are_rate_limited(db: Db) {
    let t = TestApp::spawn(db, &[("rate_limits.login_per_account_per_minute", "3")]).await;
    let b = t.client();
    b.register("ada@uni.edu", "Ada").await;
    let (s1, wrong_pw) = b.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "wrong password"})).await;
    let (s2, unknown) =
        b.post("/api/auth/login", json!({"email": "nobody@uni.edu", "password": "wrong password"})).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_pw, unknown, "same answer for unknown email and wrong password");
    let (s, _) = b.post("/api/auth/login", json!({"email": "ADA@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!(s, 200, "email is case-insensitive at login");
    let (s, _) = b.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "wrong password"})).await;
    assert_eq!(s, 401);
    let r = b
        .http
        .post(format!("{}/api/auth/login", t.base))
        .json(&json!({"email": "ada@uni.edu", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "fourth attempt in a minute on one account");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (_, body) = support::read(r).await;
    assert_eq!(error_code(&body), "rate_limited");

    let audit = support::audit_of(&t.app, None, "auth.login_failed", 10).await;
    assert!(audit.len() >= 2, "failed logins are audited");
    t.stop().await;
}

async fn bad_bodies_get_clear_errors(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let b = t.client();
    let url = format!("{}/api/auth/register", t.base);
    let send = |body: String, ctype: &'static str| {
        let http = b.http.clone();
        let url = url.clone();
        async move { support::read(http.post(url).header("content-type", ctype).body(body).send().await.unwrap()).await }
    };

    let (s, body) = send("{\"email\": ".into(), "application/json").await;
    assert_eq!((s, error_code(&body)), (400, "malformed_json"));
    let (s, body) = send(json!({"email": 5, "password": "x", "name": "y"}).to_string(), "application/json").await;
    assert_eq!((s, error_code(&body)), (400, "invalid_body"));
    assert!(body["error"]["message"].as_str().unwrap().contains("email"), "names the field: {body}");
    let (s, body) = send(
        json!({"email": "a@b.edu", "password": "long enough", "name": "A", "role": "ADMIN"}).to_string(),
        "application/json",
    )
    .await;
    assert_eq!((s, error_code(&body)), (400, "invalid_body"), "unknown fields such as role are refused");
    // The server answers before reading the rest of an oversized body and closes that connection; without
    // `Connection: close` the client could pick the closing connection for the next request (a flaky
    // `IncompleteMessage` under load).
    let oversized = b.http.post(&url).header("content-type", "application/json").header("connection", "close");
    let (s, body) = support::read(oversized.body("x".repeat(200_000)).send().await.unwrap()).await;
    assert_eq!((s, error_code(&body)), (413, "body_too_large"));
    let (s, body) = send("email=a".into(), "application/x-www-form-urlencoded").await;
    assert_eq!((s, error_code(&body)), (415, "unsupported_media_type"));

    let long_email = format!("{}@uni.edu", "a".repeat(300));
    let (s, body) =
        b.post("/api/auth/register", json!({"email": long_email, "password": "long enough", "name": "A"})).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_email"));
    let (s, body) =
        b.post("/api/auth/register", json!({"email": "not-an-email", "password": "long enough", "name": "A"})).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_email"));
    let (s, body) = b.post("/api/auth/register", json!({"email": "a@uni.edu", "password": "short", "name": "A"})).await;
    assert_eq!((s, error_code(&body)), (400, "weak_password"));
    let (s, body) =
        b.post("/api/auth/register", json!({"email": "a@uni.edu", "password": "x".repeat(129), "name": "A"})).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_password"));
    let (s, body) =
        b.post("/api/auth/register", json!({"email": "a@uni.edu", "password": "long enough", "name": "  "})).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_name"));
    let (s, body) = b
        .post("/api/auth/register", json!({"email": "a@uni.edu", "password": "long enough", "name": "bell\u{7}"}))
        .await;
    assert_eq!((s, error_code(&body)), (400, "invalid_name"));
    let (s, body) = b.get("/api/no/such/route").await;
    assert_eq!((s, error_code(&body)), (404, "not_found"));
    let (s, body) = b.get("/api/auth/login").await;
    assert_eq!((s, error_code(&body)), (405, "method_not_allowed"));
    let (s, body) = b.get("/api/rooms/some-room/lobby/stream?session=typo").await;
    assert_eq!((s, error_code(&body)), (400, "invalid_query"), "query errors are JSON too");
    assert_eq!(t.app.store().count_users().await.unwrap(), 0, "nothing was created by bad input");
    t.stop().await;
}

async fn strange_but_valid_input_round_trips(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let sqlish = "Robert'); DROP TABLE users;--";
    let user = t.client().register("o'brien+tag@uni.edu", sqlish).await;
    assert_eq!(user["name"], sqlish);
    assert_eq!(user["email"], "o'brien+tag@uni.edu");
    let user = t.client().register("lena@uni.edu", "Елена Петрова 👩‍🏫").await;
    assert_eq!(user["name"], "Елена Петрова 👩‍🏫");
    let b = t.client();
    let (s, me) =
        b.post("/api/auth/login", json!({"email": "o'brien+tag@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(t.app.store().count_users().await.unwrap(), 2);
    t.stop().await;
}

async fn logout_and_password_change_end_sessions_server_side(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let laptop = t.client();
    laptop.register("ada@uni.edu", "Ada").await;
    let phone = t.client();
    let (s, _) =
        phone.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!(s, 200);
    let tablet = t.client();
    tablet.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "correct horse battery"})).await;

    // Logging out on the tablet ends that session only.
    let r = tablet.http.post(format!("{}/api/auth/logout", t.base)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(tablet.get("/api/auth/me").await.0, 401);
    assert_eq!(phone.get("/api/auth/me").await.0, 200);

    let (s, body) =
        laptop.post("/api/auth/password", json!({"currentPassword": "wrong", "newPassword": "a new passphrase"})).await;
    assert_eq!((s, error_code(&body)), (403, "invalid_credentials"));
    let (s, _) = laptop
        .post(
            "/api/auth/password",
            json!({"currentPassword": "correct horse battery", "newPassword": "a new passphrase"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(laptop.get("/api/auth/me").await.0, 200, "the browser that changed it gets a fresh session");
    assert_eq!(phone.get("/api/auth/me").await.0, 401, "every other session ended");
    let (s, _) = phone.post("/api/auth/login", json!({"email": "ada@uni.edu", "password": "a new passphrase"})).await;
    assert_eq!(s, 200);
    t.stop().await;
}

async fn disabled_user_is_signed_out_at_once(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    t.client().register("ada@uni.edu", "Ada").await;
    let bob = t.client();
    let user = bob.register("bob@uni.edu", "Bob").await;
    let id = user["id"].as_str().unwrap();
    confctl::accounts::set_disabled(&t.app, &confctl::audit::Actor::cli(), id, true).await.unwrap();
    let (s, body) = bob.get("/api/auth/me").await;
    assert_eq!((s, error_code(&body)), (401, "not_signed_in"));
    let (s, body) =
        bob.post("/api/auth/login", json!({"email": "bob@uni.edu", "password": "correct horse battery"})).await;
    assert_eq!((s, error_code(&body)), (403, "account_disabled"));
    let audit = support::audit_of(&t.app, None, "user.disabled", 5).await;
    assert_eq!(audit.len(), 1);
    assert!(audit[0].actor_label.starts_with("cli:"));
    t.stop().await;
}

async fn cross_site_writes_with_cookie_are_refused(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let b = t.client();
    b.register("ada@uni.edu", "Ada").await;
    let logout = |site: Option<&'static str>, origin: Option<String>| {
        let mut req = b.http.post(format!("{}/api/auth/logout", t.base));
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        async move { support::read(req.send().await.unwrap()).await }
    };
    let (s, body) = logout(Some("cross-site"), None).await;
    assert_eq!((s, error_code(&body)), (403, "csrf_rejected"));
    let (s, body) = logout(None, Some("https://evil.example".into())).await;
    assert_eq!((s, error_code(&body)), (403, "csrf_rejected"));
    assert_eq!(b.get("/api/auth/me").await.0, 200, "refused requests changed nothing");
    let (s, _) = logout(Some("same-origin"), Some(t.base.clone())).await;
    assert_eq!(s, 204);
    t.stop().await;
}

async fn closed_registration_allows_only_the_first_account(db: Db) {
    let t = TestApp::spawn(db, &[("auth.registration", "closed")]).await;
    let admin = t.client().register("ada@uni.edu", "Ada").await;
    assert_eq!(admin["role"], "ADMIN");
    let (s, body) = t
        .client()
        .post("/api/auth/register", json!({"email": "bob@uni.edu", "password": "long enough", "name": "Bob"}))
        .await;
    assert_eq!((s, error_code(&body)), (403, "registration_closed"));
    t.stop().await;
}

async fn public_instance_needs_setup_code_for_first_account(db: Db) {
    let t = TestApp::spawn(db, &[("domains", "lectures.example.edu")]).await;
    let body = json!({"email": "ada@uni.edu", "password": "correct horse battery", "name": "Ada"});
    // Over plain HTTP in the test, so the __Host- cookie (Secure) would not come back; check the API answers.
    let b = t.client();
    let (s, err) = b.post("/api/auth/register", body.clone()).await;
    assert_eq!((s, error_code(&err)), (403, "setup_code_required"));
    let mut wrong = body.clone();
    wrong["setupCode"] = json!("aaaa-bbbb-cccc");
    assert_eq!(b.post("/api/auth/register", wrong).await.0, 403);

    let code = confctl::accounts::setup_code(&t.app).await.unwrap().expect("a code while no account exists");
    let mut right = body.clone();
    right["setupCode"] = json!(code);
    let r = b.http.post(format!("{}/api/auth/register", t.base)).json(&right).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-confctl_session=") && cookie.contains("Secure"), "{cookie}");
    assert!(confctl::accounts::setup_code(&t.app).await.unwrap().is_none(), "the code is gone once used");
    t.stop().await;
}

async fn readiness_reflects_the_database(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let b = t.client();
    assert_eq!(b.get("/healthz").await.0, 200);
    assert_eq!(b.get("/readyz").await.0, 200);
    t.app.store().close().await;
    let (s, body) = b.get("/readyz").await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(b.get("/healthz").await.0, 200, "alive even when not ready");
}
