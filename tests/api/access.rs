//! Instance-wide access controls: development access key, allowed networks, trusted proxies.

use crate::support::{Db, TestApp, error_code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_access_key_is_needed_once_then_remembered() {
    let t = TestApp::spawn(Db::Sqlite, &[("dev_access_key", "let-me-in")]).await;
    let b = t.client();
    assert_eq!(b.get("/healthz").await.0, 200, "health stays open");
    let (s, body) = b.get("/api/auth/me").await;
    assert_eq!((s, error_code(&body)), (401, "dev_access_required"));
    let (s, _) = b.get("/api/auth/me?key=wrong").await;
    assert_eq!(s, 401);
    let (s, body) = b.get("/api/auth/me?key=let-me-in").await;
    assert_eq!((s, error_code(&body)), (401, "not_signed_in"), "past the key gate");
    let (s, body) = b.get("/api/auth/me").await;
    assert_eq!((s, error_code(&body)), (401, "not_signed_in"), "the cookie remembers the key");
    assert_eq!(t.client().get("/api/auth/me").await.0, 401);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_access_key_is_ignored_on_a_public_instance() {
    let t = TestApp::spawn(Db::Sqlite, &[("dev_access_key", "let-me-in"), ("domains", "lectures.example.edu")]).await;
    let (s, body) = t.client().get("/api/auth/me").await;
    assert_eq!((s, error_code(&body)), (401, "not_signed_in"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_ips_restrict_everything_but_health() {
    let t = TestApp::spawn(Db::Sqlite, &[("allowed_ips", "192.0.2.0/24")]).await;
    let b = t.client();
    let (s, body) = b.get("/api/auth/me").await;
    assert_eq!((s, error_code(&body)), (403, "ip_not_allowed"));
    assert_eq!(b.get("/readyz").await.0, 200);
    t.stop().await;

    let t = TestApp::spawn(Db::Sqlite, &[("allowed_ips", "127.0.0.0/8")]).await;
    assert_eq!(t.client().get("/api/auth/me").await.0, 401, "loopback is allowed");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    // Behind a trusted proxy (loopback here), the limiter keys on the forwarded client address.
    let t = TestApp::spawn(
        Db::Sqlite,
        &[("trusted_proxies", "127.0.0.1/32"), ("rate_limits.login_per_ip_per_minute", "2")],
    )
    .await;
    let b = t.client();
    let login = |ip: &'static str| {
        let req = b
            .http
            .post(format!("{}/api/auth/login", t.base))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"email": format!("x{ip}@uni.edu"), "password": "whatever1"}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(login("198.51.100.1").await, 401);
    assert_eq!(login("198.51.100.1").await, 401);
    assert_eq!(login("198.51.100.1").await, 429);
    assert_eq!(login("198.51.100.2").await, 401, "another client behind the proxy has its own budget");
    t.stop().await;

    // Without trust, the header is ignored and every request counts against the socket address.
    let t = TestApp::spawn(Db::Sqlite, &[("rate_limits.login_per_ip_per_minute", "2")]).await;
    let b = t.client();
    let mut statuses = Vec::new();
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let r = b
            .http
            .post(format!("{}/api/auth/login", t.base))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"email": "x@uni.edu", "password": "whatever1"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429]);
    t.stop().await;
}
