-- How many attempts the last count of a key granted: one statement counts the attempts of many callers at
-- once (src/store/replicas.rs, `take_attempts`), and PostgreSQL's RETURNING shows only the new row, so the
-- statement leaves there how many of the callers it let in.
ALTER TABLE rate_limit_windows ADD COLUMN granted BIGINT NOT NULL DEFAULT 0;
