-- The outbox of events the live streams deliver (lobby arrivals and decisions, room state, hands, the
-- assistants' lecture list, the admin feed), shared by every replica on one PostgreSQL database: a replica
-- appends what happened on it, `NOTIFY confctl_events` wakes the others, and each reads the rows after the
-- last id it delivered. Ids are the events' ids on every stream (`Last-Event-ID` resumes on any replica);
-- appends take a transaction-level advisory lock, so ids become visible in increasing order and a reader
-- that went past an id never sees a smaller one appear later. The leader prunes rows older than an hour.
-- A single SQLite process delivers in memory and leaves this table empty.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       BIGINT NOT NULL,
    origin   TEXT NOT NULL,
    room_id  TEXT,
    payload  TEXT NOT NULL
);
CREATE INDEX events_room_idx ON events (room_id, id);
CREATE INDEX events_at_idx ON events (at);
