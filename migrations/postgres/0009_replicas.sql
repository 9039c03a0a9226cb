-- One row per running `confctl serve` process (replica), refreshed every few seconds and removed when it
-- stops, so `confctl doctor` sees which replicas share this database and whether their versions and the
-- settings that must agree do. `leader`: whether it runs the background jobs (see src/replicas.rs).
CREATE TABLE replicas (
    id                 TEXT PRIMARY KEY,
    host               TEXT NOT NULL,
    version            TEXT NOT NULL,
    started_at         BIGINT NOT NULL,
    last_seen_at       BIGINT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    leader             INTEGER NOT NULL DEFAULT 0
);
