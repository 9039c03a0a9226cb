//! Admin API tokens on the accounts and audit routes, on SQLite and PostgreSQL: the same rules as on the
//! monitor's routes — a `read` token may only `GET`, an `admin` token may act and is audited under its name,
//! nothing else gets in.
use crate::support::{Db, TestApp, error_code, with_token};
use confctl::admin::tokens;
use confctl::audit::Actor;
use confctl::store::ApiTokenScope;
use serde_json::json;

on_both_databases!(the_accounts_and_audit_routes_take_api_tokens);

async fn the_accounts_and_audit_routes_take_api_tokens(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let admin = t.client();
    let root = admin.register("root@uni.edu", "Root").await;
    let host = t.client();
    let ada = host.register("ada@uni.edu", "Ada").await;
    let ada_id = ada["id"].as_str().unwrap();
    let (_, read) = tokens::create(&t.app, &Actor::cli(), "auditor", ApiTokenScope::Read, None).await.unwrap();
    let (_, full) = tokens::create(&t.app, &Actor::cli(), "provisioning", ApiTokenScope::Admin, None).await.unwrap();

    let writes = [
        ("POST", "/api/admin/users".to_owned(), json!({"email": "bob@uni.edu", "name": "Bob"})),
        ("PATCH", format!("/api/admin/users/{ada_id}"), json!({"disabled": true})),
        ("POST", format!("/api/admin/users/{ada_id}/password"), json!({})),
        ("POST", format!("/api/admin/users/{ada_id}/revoke-sessions"), json!({})),
    ];

    // A read token reads and may not change anything.
    for path in ["/api/admin/users", "/api/admin/audit?limit=5"] {
        let (s, body) = with_token(&t.base, &read, "GET", path, None).await;
        assert_eq!(s, 200, "{path}: {body}");
    }
    for (method, path, body) in &writes {
        let (s, answer) = with_token(&t.base, &read, method, path, Some(body.clone())).await;
        assert_eq!((s, error_code(&answer)), (403, "read_only_token"), "{method} {path}");
    }
    assert_eq!(t.app.store().count_users().await.unwrap(), 2);

    // Without a credential, with a stranger's token or a host's session: refused as before.
    let (s, body) =
        crate::support::read(reqwest::Client::new().get(format!("{}/api/admin/users", t.base)).send().await.unwrap())
            .await;
    assert_eq!((s, error_code(&body)), (401, "not_signed_in"));
    let (s, body) = with_token(&t.base, "cfm_guessed", "GET", "/api/admin/users", None).await;
    assert_eq!((s, error_code(&body)), (401, "invalid_api_token"));
    let (s, body) = host.get("/api/admin/audit").await;
    assert_eq!((s, error_code(&body)), (403, "admin_only"));

    // An admin token does it all, each change audited under the token's name.
    for ((method, path, body), want) in writes.iter().zip([201, 200, 200, 200]) {
        let (s, answer) = with_token(&t.base, &full, method, path, Some(body.clone())).await;
        assert_eq!(s, want, "{method} {path}: {answer}");
    }
    let (_, audit) = admin.get("/api/admin/audit?limit=50").await;
    let by_token: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actorLabel"] == "token:provisioning")
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["user.create", "user.disabled", "user.password_reset", "user.sessions_revoked"] {
        assert!(by_token.contains(&action), "{action}: {by_token:?}");
    }
    // A token is nobody's account: the self-lockout rule is about sessions, and still holds for them.
    let (s, body) =
        admin.patch(&format!("/api/admin/users/{}", root["email"].as_str().unwrap()), json!({"role": "HOST"})).await;
    assert_eq!((s, error_code(&body)), (409, "cannot_change_self"), "by email as well as by id");
}
