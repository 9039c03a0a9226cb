//! The store on both databases: migrations (including refusing a newer schema), error mapping, long lists
//! read whole, and the two dialects' schemas staying identical.

use std::collections::BTreeSet;

use confctl::secret::Secret;
use confctl::store::{
    Admission, ChatRecord, NewUser, ParticipantKind, ParticipantRecord, RoomRecord, RoomStatus, SegmentRecord, Store,
    migrations,
};
use sqlx::Row;

use crate::support::{self, Db, Service};

async fn fresh_store(db: Db) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("t.db").display()),
        Db::Postgres => support::fresh_postgres_url().await,
    };
    (Store::connect(&Secret::new(url)).await.unwrap(), dir)
}

/// A migrated store with one account, the host `h`.
async fn store_with_host(db: Db) -> (Store, tempfile::TempDir, confctl::store::UserRecord) {
    let (store, dir) = fresh_store(db).await;
    store.migrate().await.unwrap();
    let host = store
        .create_user(NewUser { id: "h", email: "h@uni.edu", display_name: "H", password_hash: "x", role: None })
        .await
        .unwrap();
    (store, dir, host)
}

on_both_databases!(
    migrations_apply_once_and_refuse_a_newer_schema,
    store_errors_map_to_domain_errors,
    unique_keys_have_their_own_conflict_codes,
    long_lists_read_whole_keep_their_order_and_text
);

async fn migrations_apply_once_and_refuse_a_newer_schema(db: Db) {
    let (store, _dir) = fresh_store(db).await;
    assert!(store.ensure_migrated().await.is_err(), "pending migrations are detected");
    assert_eq!(store.migrate().await.unwrap(), migrations::MIGRATIONS.len());
    assert_eq!(store.migrate().await.unwrap(), 0, "idempotent");
    store.ensure_migrated().await.unwrap();

    sqlx::query("INSERT INTO confctl_migrations (version, name, checksum, applied_at) VALUES (9999, 'future', 'x', 0)")
        .execute(store.raw_pool_for_tests())
        .await
        .unwrap();
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("9999") && err.contains("newer"), "{err}");
    assert!(store.ensure_migrated().await.is_err());
}

async fn store_errors_map_to_domain_errors(db: Db) {
    let (store, _dir) = fresh_store(db).await;
    store.migrate().await.unwrap();
    let err = store.user_by_id("missing").await.unwrap_err();
    assert_eq!(err.code(), "user_not_found");
    let user = |id: &'static str, email: &'static str| NewUser {
        id,
        email,
        display_name: "X",
        password_hash: "h",
        role: None,
    };
    let first = store.create_user(user("u1", "a@uni.edu")).await.unwrap();
    assert_eq!(first.role, confctl::accounts::Role::Admin);
    let second = store.create_user(user("u2", "b@uni.edu")).await.unwrap();
    assert_eq!(second.role, confctl::accounts::Role::Host);
    let err = store.create_user(user("u3", "A@UNI.EDU")).await.unwrap_err();
    assert_eq!(err.code(), "email_taken");
    let err = store.insert_session("s1", "no-such-user", "hash", 0, None, None).await.unwrap_err();
    assert_eq!(err.code(), "conflict", "foreign key violations are conflicts");
}

/// Each dialect names a violated unique key its own way (PostgreSQL the constraint, SQLite the columns): both
/// must reach the key's code, or callers that retry or ignore that conflict would see a generic one.
async fn unique_keys_have_their_own_conflict_codes(db: Db) {
    let (store, _dir, host) = store_with_host(db).await;
    let room = |id: &str, code: &str| room_record(id, code, &host.id);
    store.insert_room(&room("r1", "code-1")).await.unwrap();
    let err = store.insert_room(&room("r2", "code-1")).await.unwrap_err();
    assert_eq!(err.code(), "invite_code_taken");
    store.insert_room(&room("r2", "code-2")).await.unwrap();
    let err = store.set_invite_code("r2", "code-1").await.unwrap_err();
    assert_eq!(err.code(), "invite_code_taken");

    let participant = |id: &str, identity: &str| ParticipantRecord {
        user_id: Some(host.id.clone()),
        admission: Admission::Approved,
        ..ParticipantRecord::arriving(
            id.into(),
            "r1".into(),
            "r1-l1".into(),
            identity.into(),
            ParticipantKind::Host,
            "H".into(),
            1,
        )
    };
    store.insert_participant(&participant("p1", "h_h")).await.unwrap();
    let err = store.insert_participant(&participant("p2", "h_h")).await.unwrap_err();
    assert_eq!(err.code(), "participant_exists");
    // A clash on a key that is not named (the primary key) stays the generic conflict.
    let err = store.insert_participant(&participant("p1", "h_other")).await.unwrap_err();
    assert_eq!(err.code(), "conflict");
}

/// A transcript and a chat are read whole as one JSON array the database builds (`Store::read_rows_as_json`):
/// spoken order, not insertion order; deleted messages left out; text with quotes, backslashes, line breaks
/// and non-Latin letters as written; an empty lecture is an empty list.
async fn long_lists_read_whole_keep_their_order_and_text(db: Db) {
    let (store, _dir, host) = store_with_host(db).await;
    store.insert_room(&room_record("r1", "code-1", &host.id)).await.unwrap();
    assert!(store.segments("r1-l1").await.unwrap().is_empty());
    assert!(store.lecture_chat("r1-l1").await.unwrap().is_empty());

    let tricky = "\"Quoted\", a back\\slash,\na new line, tab\t, Ωμέγα — Привет 👋 {\"json\": [1]}";
    let segment = |id: &str, start_ms: i64, text: &str| SegmentRecord {
        segment_id: id.into(),
        speaker_identity: "h_h".into(),
        speaker_name: "Анна".into(),
        text: text.into(),
        start_ms,
        end_ms: start_ms + 900,
        language: "ru".into(),
        provider: "whisper".into(),
    };
    let written = [segment("s3", 3_000, "third"), segment("s1", 1_000, tricky), segment("s2", 2_000, "second")];
    for s in &written {
        assert!(store.insert_segment("r1-l1", s).await.unwrap());
    }
    let read = store.segments("r1-l1").await.unwrap();
    assert_eq!(read, vec![written[1].clone(), written[2].clone(), written[0].clone()]);

    let message = |id: &str, text: &str, at: i64| ChatRecord {
        seq: 0,
        id: id.into(),
        room_id: "r1".into(),
        lecture_id: "r1-l1".into(),
        participant_id: None,
        user_id: Some(host.id.clone()),
        sender_name: "H".into(),
        sender_role: "host".into(),
        text: text.into(),
        created_at: at,
        deleted_at: None,
        deleted_by: None,
    };
    for (id, text, at) in [("m1", tricky, 10), ("m2", "to be deleted", 20), ("m3", "last", 30)] {
        store.insert_chat(&message(id, text, at)).await.unwrap();
    }
    store.delete_chat("r1-l1", "m2", &host.id).await.unwrap();
    let chat = store.lecture_chat("r1-l1").await.unwrap();
    let seen: Vec<(&str, &str, i64, Option<&str>)> =
        chat.iter().map(|m| (m.id.as_str(), m.text.as_str(), m.created_at, m.user_id.as_deref())).collect();
    assert_eq!(seen, vec![("m1", tricky, 10, Some("h")), ("m3", "last", 30, Some("h"))]);
    assert!(chat[0].seq < chat[1].seq && chat.iter().all(|m| m.deleted_at.is_none() && m.participant_id.is_none()));
}

/// Events appended by two replicas at once become visible in id order (the append lock, taken in the same
/// statement before the rows get their ids): a reader that follows the outbox by "after the last id I
/// delivered" must never see an id before the ones below it are visible, or it would skip them for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_at_once_by_two_replicas_become_visible_in_id_order() {
    if !support::require(&[Service::Postgres]) {
        return;
    }
    let url = support::fresh_postgres_url().await;
    let first = Store::connect(&Secret::new(url.clone())).await.unwrap();
    first.migrate().await.unwrap();
    let second = Store::connect(&Secret::new(url)).await.unwrap();
    const APPENDERS: usize = 8;
    const APPENDS: usize = 40;
    let mut appenders = Vec::new();
    for n in 0..APPENDERS {
        let store = if n % 2 == 0 { first.clone() } else { second.clone() };
        appenders.push(tokio::spawn(async move {
            for i in 0..APPENDS {
                let events = (0..1 + i % 3)
                    .map(|k| confctl::store::NewEvent { room_id: None, payload: format!("{n}-{i}-{k}") })
                    .collect();
                store.append_events(&format!("replica-{}", n % 2), 0, events).await.unwrap();
            }
        }));
    }
    let total: usize = (0..APPENDS).map(|i| 1 + i % 3).sum::<usize>() * APPENDERS;
    let mut last = 0i64;
    let mut seen = 0usize;
    while seen < total {
        // Checked before the read: once every appender has ended, a read that finds nothing new is final (an
        // appender that failed ends the wait here, and its error is raised below instead of a hang).
        let all_ended = appenders.iter().all(|a| a.is_finished());
        let rows = first.events_after(last, 1000).await.unwrap();
        if rows.is_empty() && all_ended {
            break;
        }
        for row in rows {
            assert_eq!(row.id, last + 1, "an event became visible before the one below it");
            last = row.id;
            seen += 1;
        }
    }
    for appender in appenders {
        appender.await.unwrap();
    }
    assert_eq!(seen, total);
    assert_eq!(first.events_after(last, 1000).await.unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_dialects_define_the_same_tables_and_columns() {
    if !support::require(&[Service::Postgres]) {
        return;
    }
    let (sqlite, _d1) = fresh_store(Db::Sqlite).await;
    let (postgres, _d2) = fresh_store(Db::Postgres).await;
    sqlite.migrate().await.unwrap();
    postgres.migrate().await.unwrap();

    let mut lite = BTreeSet::new();
    let tables = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .fetch_all(sqlite.raw_pool_for_tests())
        .await
        .unwrap();
    for t in tables {
        let table: String = t.get("name");
        let cols = sqlx::query("SELECT name FROM pragma_table_info($1)")
            .bind(&table)
            .fetch_all(sqlite.raw_pool_for_tests())
            .await
            .unwrap();
        for c in cols {
            lite.insert(format!("{table}.{}", c.get::<String, _>("name")));
        }
    }
    let mut pg = BTreeSet::new();
    let cols = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(postgres.raw_pool_for_tests())
    .await
    .unwrap();
    for c in cols {
        pg.insert(format!("{}.{}", c.get::<String, _>("t"), c.get::<String, _>("c")));
    }
    assert_eq!(lite, pg, "migrations/sqlite and migrations/postgres must define the same schema");
}

#[test]
fn every_migration_exists_in_both_dialect_folders() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |d: &str| -> BTreeSet<String> {
        std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(list("sqlite"), list("postgres"));
    assert_eq!(list("sqlite").len(), migrations::MIGRATIONS.len(), "every file is embedded in MIGRATIONS");
}

/// A ready room with lobby on and its first lecture, `{id}-l1`.
fn room_record(id: &str, code: &str, host_id: &str) -> RoomRecord {
    RoomRecord {
        id: id.into(),
        name: "R".into(),
        invite_code: code.into(),
        host_id: host_id.into(),
        status: RoomStatus::Ready,
        lobby_enabled: true,
        pin_hash: None,
        webinar_mode: false,
        locked: false,
        max_participants: None,
        guest_screen_share: false,
        ai_assistant: false,
        guests_muted: false,
        guest_uploads: false,
        language: None,
        lectures_for_participants: false,
        created_at: 1,
        archived_at: None,
        lecture_id: format!("{id}-l1"),
        lecture_number: 1,
        started_at: None,
        last_ended_at: None,
        version: 0,
    }
}
