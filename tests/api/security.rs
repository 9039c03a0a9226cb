//! Security properties checked through the real API on both databases (docs/security.md, "Verified by
//! tests"): display names cannot impersonate a role, upstream errors stay in the log, guest tokens cannot set
//! their own metadata, stored password hashes are argon2id with the documented parameters, the password
//! length rules, and the length and source of every id and secret.

use serde_json::{Value, json};

use crate::support::{self, Browser, Db, TestApp, WithLiveKit, error_code, jwt_claims};

on_both_databases!(
    display_names_are_normalised_and_cannot_imitate_a_role,
    upstream_errors_reach_the_log_not_the_client,
    no_guest_token_lets_a_guest_change_its_own_metadata,
    stored_passwords_are_argon2id_and_length_is_the_only_rule,
    ids_and_secrets_carry_at_least_128_random_bits
);

async fn host_with_room(w: &WithLiveKit, settings: Value) -> (Browser, String) {
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (s, room) = host.post("/api/rooms", settings).await;
    assert_eq!(s, 201, "{room}");
    (host, room["id"].as_str().unwrap().to_owned())
}

async fn join(w: &WithLiveKit, room: &str, name: &str, fingerprint: &str) -> (u16, Value) {
    let code = w.t.invite_code(room).await;
    w.t.client()
        .post(
            &format!("/api/rooms/{room}/join"),
            json!({"displayName": name, "sessionFingerprint": fingerprint, "inviteCode": code}),
        )
        .await
}

async fn display_names_are_normalised_and_cannot_imitate_a_role(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let (host, room) = host_with_room(&w, json!({"name": "Names", "lobbyEnabled": true})).await;

    // The reported attack: an invisible space and a right-to-left override around a fake host label.
    let (s, body) = join(&w, &room, "Host A\u{200b} (Host)\u{202e}", "fp-fake-host-0123456789").await;
    assert_eq!((s, error_code(&body)), (400, "invalid_display_name"));
    assert!(body["error"]["message"].as_str().unwrap().contains("direction"), "{body}");
    for fake in ["Host A (Host)", "Борис (ведущий)", "Eve (Assistant)", "Eve [admin]", "Eve (you)", "Ann (Ноѕt)"]
    {
        let (s, body) = join(&w, &room, fake, "fp-fake-label-0123456789").await;
        assert_eq!((s, error_code(&body)), (400, "invalid_display_name"), "{fake}");
        assert!(body["error"]["message"].as_str().unwrap().contains("may not end in"), "{body}");
    }

    // Invisible characters are removed and whitespace collapsed; the host's lobby shows the clean name.
    let (s, joined) = join(&w, &room, "  Ann\u{200b}\u{feff}   Lee\u{00ad} ", "fp-ann-0123456789abcdef").await;
    assert_eq!(s, 201, "{joined}");
    let (_, lobby) = host.get(&format!("/api/rooms/{room}/lobby")).await;
    let names: Vec<&str> =
        lobby["entries"].as_array().unwrap().iter().map(|e| e["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ann Lee"], "{lobby}");

    // Account names go through the same rules, except the role labels: an account's name is its owner's own.
    let other = w.t.client();
    for (name, problem) in [("Ada\u{0007}", "control"), ("Ada\u{202e}", "direction"), ("\u{200b}", "visible")] {
        let (s, body) = other
            .post(
                "/api/auth/register",
                json!({"email": "eve@uni.edu", "password": "correct horse battery", "name": name}),
            )
            .await;
        assert_eq!((s, error_code(&body)), (400, "invalid_name"), "{name:?}");
        assert!(body["error"]["message"].as_str().unwrap().contains(problem), "{body}");
    }
    let user = other.register("bob@uni.edu", "Bob\u{2060}  Smith").await;
    assert_eq!(user["name"], "Bob Smith", "{user}");
}

async fn upstream_errors_reach_the_log_not_the_client(db: Db) {
    // A LiveKit that is not there: a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let t = TestApp::spawn(
        db,
        &[
            ("livekit.url", url.as_str()),
            ("livekit.api_key", "APItestkey"),
            ("livekit.api_secret", "test-secret-that-is-long-enough"),
        ],
    )
    .await;
    let host = t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Down", "lobbyEnabled": false})).await;
    let id = room["id"].as_str().unwrap();
    for (method, path) in
        [("GET", format!("/api/rooms/{id}/participants")), ("POST", format!("/api/rooms/{id}/mute-all"))]
    {
        let r = host.http.request(method.parse().unwrap(), format!("{}{path}", t.base)).json(&json!({})).send().await;
        let (s, body) = support::read(r.unwrap()).await;
        assert_eq!((s, error_code(&body)), (503, "livekit_unavailable"), "{path}: {body}");
        let text = body.to_string();
        for secret in [url.as_str(), "127.0.0.1", &port.to_string(), "Connection refused", "twirp", "reqwest"] {
            assert!(!text.to_lowercase().contains(&secret.to_lowercase()), "{path} leaks {secret:?}: {text}");
        }
        assert_eq!(body["error"]["message"], "the media server is not answering; try again shortly");
    }
}

async fn no_guest_token_lets_a_guest_change_its_own_metadata(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let (host, open) = host_with_room(&w, json!({"name": "Open", "lobbyEnabled": false})).await;
    let (_, lobby) = host.post("/api/rooms", json!({"name": "Lobby", "lobbyEnabled": true, "webinarMode": true})).await;
    let lobby = lobby["id"].as_str().unwrap().to_owned();
    let mut tokens: Vec<(String, String)> = Vec::new();

    let (s, joined) = join(&w, &open, "Ann", "fp-ann-0123456789abcdef").await;
    assert_eq!(s, 201, "{joined}");
    tokens.push(("join without lobby".into(), joined["token"].as_str().unwrap().to_owned()));
    let refresh = |room: String, session: String| {
        let base = w.t.base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/rooms/{room}/guest-token"))
                .header("x-confctl-session", session)
                .send()
                .await
                .unwrap();
            support::read(r).await
        }
    };
    let (_, refreshed) = refresh(open.clone(), joined["sessionId"].as_str().unwrap().to_owned()).await;
    tokens.push(("guest-token".into(), refreshed["token"].as_str().unwrap().to_owned()));

    let (_, waiting) = join(&w, &lobby, "Ben", "fp-ben-0123456789abcdef").await;
    assert_eq!(waiting["status"], "PENDING");
    let (_, entries) = host.get(&format!("/api/rooms/{lobby}/lobby")).await;
    let entry = entries["entries"][0]["id"].as_str().unwrap();
    let (s, approved) = host.post(&format!("/api/rooms/{lobby}/lobby/{entry}/approve"), json!({})).await;
    assert_eq!(s, 200, "{approved}");
    let (_, admitted) = refresh(lobby.clone(), waiting["sessionId"].as_str().unwrap().to_owned()).await;
    tokens.push(("after approval (webinar)".into(), admitted["token"].as_str().unwrap().to_owned()));

    for (from, token) in &tokens {
        let video = &jwt_claims(token)["video"];
        assert_eq!(video["canUpdateOwnMetadata"], false, "{from}: {video}");
        assert_ne!(video["roomAdmin"], true, "{from}: {video}");
    }
}

async fn stored_passwords_are_argon2id_and_length_is_the_only_rule(db: Db) {
    let t = TestApp::spawn(db, &[]).await;
    let register = |email: &'static str, password: String| {
        let b = t.client();
        async move { b.post("/api/auth/register", json!({"email": email, "password": password, "name": "Someone"})).await }
    };
    let (s, body) = register("short@uni.edu", "a".repeat(7)).await;
    assert_eq!((s, error_code(&body)), (400, "weak_password"));
    let (s, body) = register("long@uni.edu", "a".repeat(129)).await;
    assert_eq!((s, error_code(&body)), (400, "invalid_password"));
    // No composition rules: eight lowercase letters and 128 characters of one kind are both fine, and the
    // length is counted in characters (eight Cyrillic letters are sixteen bytes).
    for (email, password) in [
        ("eight@uni.edu", "aaaaaaaa".to_owned()),
        ("max@uni.edu", "b".repeat(128)),
        ("ru@uni.edu", "пароль12".to_owned()),
    ] {
        let (s, body) = register(email, password).await;
        assert_eq!(s, 201, "{email}: {body}");
    }
    for email in ["eight@uni.edu", "max@uni.edu", "ru@uni.edu"] {
        let user = t.app.store().user_by_email(email).await.unwrap().unwrap();
        let phc = argon2::PasswordHash::new(&user.password_hash).unwrap();
        assert_eq!(phc.algorithm.as_str(), "argon2id", "{email}");
        assert_eq!(phc.version, Some(0x13));
        let params = argon2::Params::try_from(&phc).unwrap();
        assert_eq!((params.m_cost(), params.t_cost(), params.p_cost()), (19 * 1024, 2, 1), "OWASP's argon2id row");
        // $argon2id$v=19$m=…,t=…,p=…$SALT$HASH, salt and hash in unpadded base64.
        let fields: Vec<&str> = user.password_hash.split('$').collect();
        assert!(fields[4].len() >= 22, "a 128-bit salt or more: {}", user.password_hash);
        assert!(phc.salt.is_some());
        assert_eq!(fields[5].len(), 43, "a 256-bit hash: {}", user.password_hash);
    }
}

/// Bits of entropy a uniformly random string of this length over this alphabet has at most.
fn bits(len: usize, alphabet: usize) -> f64 {
    len as f64 * (alphabet as f64).log2()
}

fn url_safe(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn ids_and_secrets_carry_at_least_128_random_bits(db: Db) {
    let w = WithLiveKit::spawn(db, &[]).await;
    let host = w.t.client();
    let user = host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Ids", "lobbyEnabled": false})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let (_, joined) = join(&w, &room_id, "Ann", "fp-ann-0123456789abcdef").await;
    let (_, agent_token) =
        confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "gpu").await.unwrap();
    let cookie = {
        let r = reqwest::Client::new()
            .post(format!("{}/api/auth/login", w.t.base))
            .json(&json!({"email": "ada@uni.edu", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        set.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
    };
    let ids = [
        ("user id", user["id"].as_str().unwrap().to_owned()),
        ("room id", room_id.clone()),
        ("guest session", joined["sessionId"].as_str().unwrap().to_owned()),
        ("session cookie", cookie),
        ("agent token", agent_token.strip_prefix("cfa_").unwrap().to_owned()),
        ("new id", confctl::ids::new_id()),
        ("new secret", confctl::ids::new_secret()),
    ];
    for (what, value) in &ids {
        assert!(url_safe(value) && bits(value.len(), 64) >= 128.0, "{what}: {value:?}");
    }
    let generated = confctl::accounts::generate_password();
    assert!(bits(generated.len(), 55) >= 128.0, "generated passwords: {generated:?}");
    // Distinct across many draws: a broken generator would repeat.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        assert!(seen.insert(confctl::ids::new_id()));
    }

    // Every random value comes from the OS CSPRNG through src/ids.rs: no other generator is used anywhere.
    let mut offenders = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for needle in ["rand::", "thread_rng", "fastrand", "SmallRng", "StdRng", "getrandom::"] {
                    if text.contains(needle) && !path.ends_with("src/ids.rs") {
                        offenders.push(format!("{} uses {needle}", path.display()));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}
