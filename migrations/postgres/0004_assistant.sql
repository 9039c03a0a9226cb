-- The AI assistant: its access tokens, each room's language, caption segments as they arrive, and the
-- lecture artifact (transcript files and summary) written after the lecture.
CREATE TABLE agent_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

ALTER TABLE rooms ADD COLUMN language TEXT;

CREATE TABLE transcript_segments (
    id               TEXT PRIMARY KEY,
    room_id          TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    segment_id       TEXT NOT NULL,
    speaker_identity TEXT NOT NULL,
    speaker_name     TEXT NOT NULL,
    text             TEXT NOT NULL,
    start_ms         BIGINT NOT NULL,
    end_ms           BIGINT NOT NULL,
    language         TEXT NOT NULL,
    provider         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (room_id, segment_id)
);
CREATE INDEX transcript_segments_room ON transcript_segments (room_id, start_ms);

CREATE TABLE lecture_artifacts (
    room_id        TEXT PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    transcript_key TEXT,
    vtt_key        TEXT,
    summary        TEXT,
    summary_kind   TEXT,
    provider       TEXT,
    model          TEXT,
    status         TEXT NOT NULL CHECK (status IN ('complete', 'failed')),
    error          TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
