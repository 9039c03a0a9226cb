-- Rooms and lectures. A room is a course's meeting place (invite link, PIN, settings, bans); a lecture is one
-- session of it, from going live to its end. Participants, lobby entries, chat, files, caption segments and
-- the artifact belong to a lecture; bans stay with the room. Every room has exactly one lecture that has not
-- ended (OPEN: not started yet, LIVE: under way); ending it opens the next one, so the invite link stays.
--
-- Existing data: every room becomes a room with one lecture whose id is the room's id, so the LiveKit rooms
-- (named after it) and the links of live lectures keep working. A room that had ended becomes an archived
-- room (no joins, as before) with its one ended lecture and a fresh open one for the day it is unarchived.

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
ALTER TABLE participants ADD COLUMN lecture_id TEXT REFERENCES lectures (id) ON DELETE CASCADE;
UPDATE participants SET lecture_id = room_id;
ALTER TABLE participants ALTER COLUMN lecture_id SET NOT NULL;
ALTER TABLE participants DROP CONSTRAINT participants_room_id_identity_key;
ALTER TABLE participants ADD CONSTRAINT participants_lecture_id_identity_key UNIQUE (lecture_id, identity);
DROP INDEX participants_lobby;
CREATE INDEX participants_lobby ON participants (lecture_id, admission, created_at);
CREATE INDEX participants_room ON participants (room_id);

ALTER TABLE chat_messages ADD COLUMN lecture_id TEXT REFERENCES lectures (id) ON DELETE CASCADE;
UPDATE chat_messages SET lecture_id = room_id;
ALTER TABLE chat_messages ALTER COLUMN lecture_id SET NOT NULL;
DROP INDEX chat_messages_room;
CREATE INDEX chat_messages_lecture ON chat_messages (lecture_id, seq);

-- Files keep their room too: the upload quota is per room, across its lectures.
ALTER TABLE shared_files ADD COLUMN lecture_id TEXT REFERENCES lectures (id) ON DELETE CASCADE;
UPDATE shared_files SET lecture_id = room_id;
ALTER TABLE shared_files ALTER COLUMN lecture_id SET NOT NULL;
CREATE INDEX shared_files_lecture ON shared_files (lecture_id, status, created_at);

ALTER TABLE transcript_segments RENAME COLUMN room_id TO lecture_id;
ALTER TABLE transcript_segments DROP CONSTRAINT transcript_segments_room_id_fkey;
ALTER TABLE transcript_segments ADD CONSTRAINT transcript_segments_lecture_id_fkey
    FOREIGN KEY (lecture_id) REFERENCES lectures (id) ON DELETE CASCADE;
ALTER INDEX transcript_segments_room RENAME TO transcript_segments_lecture;
-- The text lower-cased by confctl for case-insensitive search (the same on both databases).
ALTER TABLE transcript_segments ADD COLUMN text_folded TEXT NOT NULL DEFAULT '';
UPDATE transcript_segments SET text_folded = LOWER(text);
ALTER TABLE transcript_segments ALTER COLUMN text_folded DROP DEFAULT;
ALTER TABLE transcript_segments RENAME CONSTRAINT transcript_segments_room_id_segment_id_key
    TO transcript_segments_lecture_id_segment_id_key;

-- The artifact: 'pending' while a summary is being (re)written; the summary as shown (edits included) and
-- who edited it last.
ALTER TABLE lecture_artifacts RENAME COLUMN room_id TO lecture_id;
ALTER TABLE lecture_artifacts DROP CONSTRAINT lecture_artifacts_room_id_fkey;
ALTER TABLE lecture_artifacts ADD CONSTRAINT lecture_artifacts_lecture_id_fkey
    FOREIGN KEY (lecture_id) REFERENCES lectures (id) ON DELETE CASCADE;
ALTER TABLE lecture_artifacts DROP CONSTRAINT lecture_artifacts_status_check;
ALTER TABLE lecture_artifacts ADD CONSTRAINT lecture_artifacts_status_check
    CHECK (status IN ('pending', 'complete', 'failed'));
ALTER TABLE lecture_artifacts ADD COLUMN summary_edited_at BIGINT;
ALTER TABLE lecture_artifacts ADD COLUMN summary_edited_by TEXT;

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
