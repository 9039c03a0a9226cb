//! Schema version 6 (rooms and lectures) over a database filled by version 5, on both databases: every room
//! becomes a room with one lecture (whose id is the room's), ended rooms archived with their ended lecture,
//! and nothing that pointed at a participant is lost on the way (SQLite rebuilds those tables).

use confctl::secret::Secret;
use confctl::store::{LectureStatus, RoomStatus, Store};

use crate::support::{self, Db};

on_both_databases!(rooms_of_schema_5_become_rooms_with_lectures);

async fn exec(store: &Store, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(store.raw_pool_for_tests()).await.unwrap();
}

async fn rooms_of_schema_5_become_rooms_with_lectures(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("t.db").display()),
        Db::Postgres => support::fresh_postgres_url().await,
    };
    let store = Store::connect(&Secret::new(url)).await.unwrap();
    store.migrate_to(5).await.unwrap();
    // A host with three rooms as schema 5 knew them: created, live, ended; each with people and content.
    exec(
        &store,
        "INSERT INTO users (id, email, email_lower, display_name, password_hash, role, created_at, updated_at) \
         VALUES ('u1', 'h@uni.edu', 'h@uni.edu', 'Prof', 'x', 'ADMIN', 1, 1);
         INSERT INTO rooms (id, name, invite_code, host_id, status, created_at, started_at, ended_at) VALUES
           ('rc', 'Created', 'aaa-bbbb-ccc', 'u1', 'CREATED', 10, NULL, NULL),
           ('ra', 'Active', 'ddd-eeee-fff', 'u1', 'ACTIVE', 20, 25, NULL),
           ('re', 'Ended', 'ggg-hhhh-iii', 'u1', 'ENDED', 30, 35, 95);
         INSERT INTO participants (id, room_id, identity, kind, display_name, fingerprint, session_hash, admission,
           created_at, joined_at, left_at) VALUES
           ('pc', 'rc', 'g_c', 'GUEST', 'Waiting Wendy', 'fp-wendy-0000000000', 'sh-c', 'PENDING', 11, NULL, NULL),
           ('pa', 'ra', 'g_a', 'GUEST', 'Live Larry', 'fp-larry-0000000000', 'sh-a', 'APPROVED', 21, 26, NULL),
           ('pe', 're', 'g_e', 'GUEST', 'Ended Erin', 'fp-erin-00000000000', 'sh-e', 'APPROVED', 31, 36, 90),
           ('he', 're', 'h_u1', 'HOST', 'Prof', NULL, NULL, 'APPROVED', 31, 35, 95);
         INSERT INTO chat_messages (id, room_id, participant_id, sender_name, sender_role, text, created_at) VALUES
           ('c1', 're', 'pe', 'Ended Erin', 'guest', 'a question', 40),
           ('c2', 'ra', 'pa', 'Live Larry', 'guest', 'hello', 27);
         INSERT INTO shared_files (id, room_id, object_key, file_name, content_type, size, participant_id,
           uploader_name, status, created_at) VALUES
           ('f1', 're', 'rooms/re/f1', 'notes.pdf', 'application/pdf', 100, 'pe', 'Ended Erin', 'SHARED', 41);
         INSERT INTO transcript_segments (id, room_id, segment_id, speaker_identity, speaker_name, text, start_ms,
           end_ms, language, provider, created_at) VALUES
           ('t1', 're', 's1', 'h_u1', 'Prof', 'Plants convert sunlight.', 0, 2000, 'en', 'whisper', 50),
           ('t2', 're', 's2', 'h_u1', 'Prof', 'Хлорофилл отражает зелёный свет.', 2000, 4000, 'ru', 'whisper', 51);
         INSERT INTO lecture_artifacts (room_id, transcript_key, vtt_key, summary, summary_kind, status,
           created_at, updated_at) VALUES
           ('re', 'rooms/re/transcript.txt', 'rooms/re/transcript.vtt', '{\"abstract\":\"a\"}', 'extractive',
            'complete', 96, 96);
         INSERT INTO bans (id, room_id, host_id, fingerprint, created_at) VALUES ('b1', 're', 'u1', 'fp-x', 60);",
    )
    .await;

    store.migrate().await.unwrap();
    store.ensure_migrated().await.unwrap();

    // Rooms keep their ids and invite codes; each has a lecture whose id is the room's.
    let created = store.room_by_id("rc").await.unwrap();
    assert_eq!((created.status, created.lecture_id.as_str(), created.lecture_number), (RoomStatus::Ready, "rc", 1));
    let active = store.room_by_id("ra").await.unwrap();
    assert_eq!((active.status, active.lecture_id.as_str(), active.started_at), (RoomStatus::Live, "ra", Some(25)));
    let ended = store.room_by_id("re").await.unwrap();
    assert_eq!(ended.status, RoomStatus::Archived, "an ended room admits no one, as before");
    assert_eq!(ended.invite_code, "ggg-hhhh-iii");
    assert_eq!(ended.lecture_number, 2, "ready for the day it is unarchived");
    assert_ne!(ended.lecture_id, "re");
    let lectures = store.lectures_of_room("re").await.unwrap();
    assert_eq!(lectures.len(), 1);
    let old = &lectures[0];
    assert_eq!(
        (old.id.as_str(), old.status, old.started_at, old.ended_at),
        ("re", LectureStatus::Ended, Some(35), Some(95))
    );
    assert_eq!(ended.last_ended_at, Some(95));

    // Everything that belonged to the room now belongs to its lecture, and nothing lost its links.
    let waiting = store.pending_lobby("rc").await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].display_name, "Waiting Wendy");
    let erin = store.participant_by_identity("re", "g_e").await.unwrap().unwrap();
    assert_eq!((erin.room_id.as_str(), erin.lecture_id.as_str()), ("re", "re"));
    let chat = store.list_chat("re", Some(0), 100).await.unwrap();
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].participant_id.as_deref(), Some("pe"), "the rebuild kept the sender");
    assert_eq!(store.list_chat("ra", Some(0), 100).await.unwrap()[0].text, "hello");
    let files = store.shared_files("re").await.unwrap();
    assert_eq!((files.len(), files[0].participant_id.as_deref()), (1, Some("pe")));
    assert_eq!(store.segments("re").await.unwrap()[0].text, "Plants convert sunlight.");
    // Old segments are searchable like new ones, case-insensitively beyond ASCII (folded in Rust after
    // the migration, since SQLite's LOWER knows only ASCII).
    assert_eq!(store.search_segments("re", "ХЛОРОФИЛЛ").await.unwrap().len(), 1);
    let artifact = store.artifact("re").await.unwrap().unwrap();
    assert_eq!(artifact.transcript_key.as_deref(), Some("rooms/re/transcript.txt"));
    assert!(store.is_banned("re", "u1", "fp-x", None).await.unwrap(), "bans stay with the room");
    // Attendance: a stay for everyone who had joined.
    let stays = store.attendance("re").await.unwrap();
    assert_eq!(stays.len(), 2);
    assert!(stays.iter().any(|s| s.identity == "g_e" && s.joined_at == 36 && s.left_at == Some(90)));
    assert_eq!(store.attendance("ra").await.unwrap().len(), 1);
    // The room's storage keys are still found for deletion.
    let keys = store.room_object_keys("re").await.unwrap();
    assert!(keys.contains(&"rooms/re/f1".to_owned()) && keys.contains(&"rooms/re/transcript.vtt".to_owned()));
}
