-- In-room control and room content: removal from a room, hands and speaking rights, the panic mute, guest
-- uploads, chat and shared files.
ALTER TABLE participants ADD COLUMN removed_at BIGINT;
ALTER TABLE participants ADD COLUMN removed_reason TEXT;
ALTER TABLE participants ADD COLUMN hand_raised_at BIGINT;
-- NULL: the room's default rights; 0/1: the host's explicit decision for this participant.
ALTER TABLE participants ADD COLUMN publish_granted INTEGER;

ALTER TABLE rooms ADD COLUMN guests_muted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN guest_uploads INTEGER NOT NULL DEFAULT 0;

CREATE TABLE chat_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    room_id        TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    participant_id TEXT REFERENCES participants (id) ON DELETE SET NULL,
    user_id        TEXT REFERENCES users (id),
    sender_name    TEXT NOT NULL,
    sender_role    TEXT NOT NULL CHECK (sender_role IN ('guest', 'host', 'admin')),
    text           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    deleted_at     BIGINT,
    deleted_by     TEXT
);
CREATE INDEX chat_messages_room ON chat_messages (room_id, seq);

CREATE TABLE shared_files (
    id             TEXT PRIMARY KEY,
    room_id        TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
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
CREATE INDEX shared_files_room ON shared_files (room_id, status, created_at);
