//! Lectures written straight into the tables for the load scripts (`export_batch`, `lecture_page`): the
//! synthetic lecture's transcript, chat and summary as the assistant and the chat would have stored them.
//! Through the API this would take hours of fsyncs; the readers read the same rows either way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confctl::export::LectureDoc;
use serde_json::json;

/// Writes `doc` as the ended lecture `id` (number `number`) of `room`, started at `start` (ms since the
/// epoch), its segments spoken by the host `h_host`.
pub async fn insert(conn: &mut sqlx::AnyConnection, room: &str, id: &str, number: i64, start: i64, doc: &LectureDoc) {
    let end = start + doc.lecture.duration_ms;
    sqlx::query(
        "INSERT INTO lectures (id, room_id, number, status, created_at, started_at, ended_at) \
         VALUES ($1, $2, $3, 'ENDED', $4, $4, $5)",
    )
    .bind(id)
    .bind(room)
    .bind(number)
    .bind(start)
    .bind(end)
    .execute(&mut *conn)
    .await
    .unwrap();
    for s in &doc.transcript {
        sqlx::query(
            "INSERT INTO transcript_segments (id, lecture_id, segment_id, speaker_identity, speaker_name, text, \
             text_folded, start_ms, end_ms, language, provider, created_at) \
             VALUES ($1, $2, $3, 'h_host', $4, $5, $6, $7, $8, 'ru', 'whisper', $9)",
        )
        .bind(format!("{id}:{}", s.id))
        .bind(id)
        .bind(&s.id)
        .bind(&s.speaker_name)
        .bind(&s.text)
        .bind(s.text.to_lowercase())
        .bind(s.start_ms)
        .bind(s.end_ms)
        .bind(start + s.end_ms)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    for (n, m) in doc.chat.iter().enumerate() {
        sqlx::query(
            "INSERT INTO chat_messages (id, room_id, lecture_id, sender_name, sender_role, text, created_at) \
             VALUES ($1, $2, $3, $4, 'guest', $5, $6)",
        )
        .bind(format!("{id}:chat{n}"))
        .bind(room)
        .bind(id)
        .bind(&m.sender_name)
        .bind(&m.text)
        .bind(start + m.offset_ms)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let s = doc.summary.as_ref().unwrap();
    let item = |text: &str, a: i64, b: i64, key: &str| json!({key: text, "startMs": a, "endMs": b});
    let summary = json!({
        "abstract": s.abstract_text, "kind": "llm", "language": "ru",
        "keyTopics": s.key_topics.iter().map(|t| item(&t.text, t.start_ms, t.end_ms, "topic")).collect::<Vec<_>>(),
        "actionItems": s.action_items.iter().map(|t| item(&t.text, t.start_ms, t.end_ms, "text")).collect::<Vec<_>>(),
        "qa": s.qa.iter().map(|q| json!({"question": q.question, "answer": q.answer, "startMs": q.start_ms, "endMs": q.end_ms})).collect::<Vec<_>>(),
    });
    sqlx::query(
        "INSERT INTO lecture_artifacts (lecture_id, summary, summary_kind, provider, model, status, created_at, \
         updated_at) VALUES ($1, $2, 'llm', 'openai', 'gpt-4o-mini', 'complete', $3, $3)",
    )
    .bind(id)
    .bind(summary.to_string())
    .bind(end)
    .execute(&mut *conn)
    .await
    .unwrap();
}
