-- Rooms, the people admitted to them (guests and hosts, with their lobby state), bans, and processed webhooks.
CREATE TABLE rooms (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    invite_code        TEXT NOT NULL UNIQUE,
    host_id            TEXT NOT NULL REFERENCES users (id),
    status             TEXT NOT NULL CHECK (status IN ('CREATED', 'ACTIVE', 'ENDED')),
    lobby_enabled      INTEGER NOT NULL DEFAULT 1 CHECK (lobby_enabled IN (0, 1)),
    pin_hash           TEXT,
    webinar_mode       INTEGER NOT NULL DEFAULT 0 CHECK (webinar_mode IN (0, 1)),
    locked             INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    max_participants   INTEGER,
    guest_screen_share INTEGER NOT NULL DEFAULT 0 CHECK (guest_screen_share IN (0, 1)),
    ai_assistant       INTEGER NOT NULL DEFAULT 1 CHECK (ai_assistant IN (0, 1)),
    created_at         BIGINT NOT NULL,
    started_at         BIGINT,
    ended_at           BIGINT
);
CREATE INDEX rooms_host ON rooms (host_id, created_at);
CREATE INDEX rooms_status ON rooms (status);

-- One row per person admitted to (or waiting for) a room: a guest session with its lobby state, or a host.
-- The guest's session id is a bearer secret: only its hash is kept.
CREATE TABLE participants (
    id           TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    identity     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('GUEST', 'HOST')),
    user_id      TEXT REFERENCES users (id),
    display_name TEXT NOT NULL,
    fingerprint  TEXT,
    session_hash TEXT UNIQUE,
    ip           TEXT,
    user_agent   TEXT,
    admission    TEXT NOT NULL CHECK (admission IN ('PENDING', 'APPROVED', 'REJECTED')),
    reason       TEXT,
    decided_at   BIGINT,
    decided_by   TEXT,
    created_at   BIGINT NOT NULL,
    joined_at    BIGINT,
    left_at      BIGINT,
    UNIQUE (room_id, identity)
);
CREATE INDEX participants_lobby ON participants (room_id, admission, created_at);

-- A ban keys on the browser fingerprint (the seed's primary key of a ban); the session hash is a second key
-- and the IP only a stored signal. room_id NULL with host_id set bans from all of that host's rooms.
CREATE TABLE bans (
    id           TEXT PRIMARY KEY,
    room_id      TEXT REFERENCES rooms (id) ON DELETE CASCADE,
    host_id      TEXT NOT NULL REFERENCES users (id),
    fingerprint  TEXT NOT NULL,
    session_hash TEXT,
    ip           TEXT,
    display_name TEXT,
    reason       TEXT,
    created_by   TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX bans_fingerprint ON bans (fingerprint);
CREATE INDEX bans_session ON bans (session_hash);

-- LiveKit webhook event ids already applied: written in the same transaction as the state change.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
