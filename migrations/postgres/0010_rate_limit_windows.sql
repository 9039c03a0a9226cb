-- Attempt limits (PIN guesses, logins, registrations, joins, chat) shared by every replica on one
-- PostgreSQL database: one row per key with its current fixed window, counted with one atomic upsert (see
-- src/store/replicas.rs). A single SQLite process counts in memory and leaves this table empty.
CREATE TABLE rate_limit_windows (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    window_ms    BIGINT NOT NULL,
    taken        BIGINT NOT NULL
);
