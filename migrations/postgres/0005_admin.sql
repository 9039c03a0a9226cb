-- Admin API tokens: the credentials `confctl admin monitor` and scripts present as `Authorization: Bearer` on
-- /api/admin/*. Only a hash is stored; `read` tokens may look, `admin` tokens may also act.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
