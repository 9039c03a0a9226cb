-- Rooms and lectures. A room is a course's meeting place (invite link, PIN, settings, bans); a lecture is one
-- session of it, from going live to its end. Participants, lobby entries, chat, files, caption segments and
-- the artifact belong to a lecture; bans stay with the room. Every room has exactly one lecture that has not
-- ended (OPEN: not started yet, LIVE: under way); ending it opens the next one, so the invite link stays.
--
-- Existing data: every room becomes a room with one lecture whose id is the room's id, so the LiveKit rooms
-- (named after it) and the links of live lectures keep working. A room that had ended becomes an archived
-- room (no joins, as before) with its one ended lecture and a fresh open one for the day it is unarchived.
--
-- SQLite changes constraints by rebuilding a table; the migration runner turns foreign-key enforcement off
-- around this file and checks every reference before it commits.

CREATE TABLE lectures (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('OPEN', 'LIVE', 'ENDED')),
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at   BIGINT,
    UNIQUE (room_id, number)
);
-- At most one lecture per room has not ended: two parallel "end"s cannot open two next lectures.
CREATE UNIQUE INDEX lectures_current ON lectures (room_id) WHERE status <> 'ENDED';
CREATE INDEX lectures_status ON lectures (status);

INSERT INTO lectures (id, room_id, number, status, created_at, started_at, ended_at)
SELECT id, id, 1,
       CASE status WHEN 'CREATED' THEN 'OPEN' WHEN 'ACTIVE' THEN 'LIVE' ELSE 'ENDED' END,
       created_at, started_at, CASE status WHEN 'ENDED' THEN COALESCE(ended_at, started_at, created_at) END
FROM rooms;
INSERT INTO lectures (id, room_id, number, status, created_at)
SELECT id || '-2', id, 2, 'OPEN', COALESCE(ended_at, created_at) FROM rooms WHERE status = 'ENDED';

ALTER TABLE rooms ADD COLUMN archived_at BIGINT;
-- Whether guests admitted to a lecture may read its page afterwards (off: only the host and admins).
ALTER TABLE rooms ADD COLUMN lectures_for_participants INTEGER NOT NULL DEFAULT 0
    CHECK (lectures_for_participants IN (0, 1));
UPDATE rooms SET archived_at = COALESCE(ended_at, created_at) WHERE status = 'ENDED';
DROP INDEX rooms_status;
ALTER TABLE rooms DROP COLUMN status;
ALTER TABLE rooms DROP COLUMN started_at;
ALTER TABLE rooms DROP COLUMN ended_at;

-- Participants: one row per person and lecture; the host's identity repeats across lectures.
CREATE TABLE participants_new (
    id              TEXT PRIMARY KEY,
    room_id         TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    lecture_id      TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    identity        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('GUEST', 'HOST')),
    user_id         TEXT REFERENCES users (id),
    display_name    TEXT NOT NULL,
    fingerprint     TEXT,
    session_hash    TEXT UNIQUE,
    ip              TEXT,
    user_agent      TEXT,
    admission       TEXT NOT NULL CHECK (admission IN ('PENDING', 'APPROVED', 'REJECTED')),
    reason          TEXT,
    decided_at      BIGINT,
    decided_by      TEXT,
    created_at      BIGINT NOT NULL,
    joined_at       BIGINT,
    left_at         BIGINT,
    removed_at      BIGINT,
    removed_reason  TEXT,
    hand_raised_at  BIGINT,
    publish_granted INTEGER,
    UNIQUE (lecture_id, identity)
);
INSERT INTO participants_new (id, room_id, lecture_id, identity, kind, user_id, display_name, fingerprint,
    session_hash, ip, user_agent, admission, reason, decided_at, decided_by, created_at, joined_at, left_at,
    removed_at, removed_reason, hand_raised_at, publish_granted)
SELECT id, room_id, room_id, identity, kind, user_id, display_name, fingerprint, session_hash, ip, user_agent,
    admission, reason, decided_at, decided_by, created_at, joined_at, left_at, removed_at, removed_reason,
    hand_raised_at, publish_granted
FROM participants;
DROP TABLE participants;
ALTER TABLE participants_new RENAME TO participants;
CREATE INDEX participants_lobby ON participants (lecture_id, admission, created_at);
CREATE INDEX participants_room ON participants (room_id);

CREATE TABLE chat_messages_new (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    room_id        TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    lecture_id     TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    participant_id TEXT REFERENCES participants (id) ON DELETE SET NULL,
    user_id        TEXT REFERENCES users (id),
    sender_name    TEXT NOT NULL,
    sender_role    TEXT NOT NULL CHECK (sender_role IN ('guest', 'host', 'admin')),
    text           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    deleted_at     BIGINT,
    deleted_by     TEXT
);
INSERT INTO chat_messages_new (seq, id, room_id, lecture_id, participant_id, user_id, sender_name, sender_role,
    text, created_at, deleted_at, deleted_by)
SELECT seq, id, room_id, room_id, participant_id, user_id, sender_name, sender_role, text, created_at,
    deleted_at, deleted_by
FROM chat_messages;
DROP TABLE chat_messages;
ALTER TABLE chat_messages_new RENAME TO chat_messages;
CREATE INDEX chat_messages_lecture ON chat_messages (lecture_id, seq);

-- Files keep their room too: the upload quota is per room, across its lectures.
CREATE TABLE shared_files_new (
    id             TEXT PRIMARY KEY,
    room_id        TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    lecture_id     TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    object_key     TEXT NOT NULL UNIQUE,
    file_name      TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size           BIGINT NOT NULL,
    participant_id TEXT REFERENCES participants (id) ON DELETE SET NULL,
    user_id        TEXT REFERENCES users (id),
    uploader_name  TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('PENDING', 'SHARED')),
    created_at     BIGINT NOT NULL,
    completed_at   BIGINT,
    deleted_at     BIGINT
);
INSERT INTO shared_files_new (id, room_id, lecture_id, object_key, file_name, content_type, size, participant_id,
    user_id, uploader_name, status, created_at, completed_at, deleted_at)
SELECT id, room_id, room_id, object_key, file_name, content_type, size, participant_id, user_id, uploader_name,
    status, created_at, completed_at, deleted_at
FROM shared_files;
DROP TABLE shared_files;
ALTER TABLE shared_files_new RENAME TO shared_files;
CREATE INDEX shared_files_room ON shared_files (room_id, status, created_at);
CREATE INDEX shared_files_lecture ON shared_files (lecture_id, status, created_at);

CREATE TABLE transcript_segments_new (
    id               TEXT PRIMARY KEY,
    lecture_id       TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    segment_id       TEXT NOT NULL,
    speaker_identity TEXT NOT NULL,
    speaker_name     TEXT NOT NULL,
    text             TEXT NOT NULL,
    -- The text lower-cased by confctl (Unicode-aware, unlike SQLite's LOWER) for case-insensitive search.
    text_folded      TEXT NOT NULL,
    start_ms         BIGINT NOT NULL,
    end_ms           BIGINT NOT NULL,
    language         TEXT NOT NULL,
    provider         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (lecture_id, segment_id)
);
-- LOWER covers ASCII only here; confctl folds these rows again in Rust right after this migration.
INSERT INTO transcript_segments_new (id, lecture_id, segment_id, speaker_identity, speaker_name, text, text_folded,
    start_ms, end_ms, language, provider, created_at)
SELECT id, room_id, segment_id, speaker_identity, speaker_name, text, LOWER(text), start_ms, end_ms, language,
    provider, created_at
FROM transcript_segments;
DROP TABLE transcript_segments;
ALTER TABLE transcript_segments_new RENAME TO transcript_segments;
CREATE INDEX transcript_segments_lecture ON transcript_segments (lecture_id, start_ms);

-- The artifact: 'pending' while a summary is being (re)written; the summary as shown (edits included) and
-- who edited it last.
CREATE TABLE lecture_artifacts_new (
    lecture_id        TEXT PRIMARY KEY REFERENCES lectures (id) ON DELETE CASCADE,
    transcript_key    TEXT,
    vtt_key           TEXT,
    summary           TEXT,
    summary_kind      TEXT,
    provider          TEXT,
    model             TEXT,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'complete', 'failed')),
    error             TEXT,
    summary_edited_at BIGINT,
    summary_edited_by TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
INSERT INTO lecture_artifacts_new (lecture_id, transcript_key, vtt_key, summary, summary_kind, provider, model,
    status, error, created_at, updated_at)
SELECT room_id, transcript_key, vtt_key, summary, summary_kind, provider, model, status, error, created_at,
    updated_at
FROM lecture_artifacts;
DROP TABLE lecture_artifacts;
ALTER TABLE lecture_artifacts_new RENAME TO lecture_artifacts;

-- Attendance: one row per stay in the media room (LiveKit's participant_joined → participant_left), so
-- rejoins add up.
CREATE TABLE attendance (
    id         TEXT PRIMARY KEY,
    lecture_id TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    identity   TEXT NOT NULL,
    joined_at  BIGINT NOT NULL,
    left_at    BIGINT
);
CREATE INDEX attendance_lecture ON attendance (lecture_id, identity, joined_at);
INSERT INTO attendance (id, lecture_id, identity, joined_at, left_at)
SELECT id, lecture_id, identity, joined_at, left_at FROM participants WHERE joined_at IS NOT NULL;

-- Share links: read-only, expiring, revocable; only a hash of the token is kept.
CREATE TABLE lecture_shares (
    id           TEXT PRIMARY KEY,
    lecture_id   TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX lecture_shares_lecture ON lecture_shares (lecture_id);
