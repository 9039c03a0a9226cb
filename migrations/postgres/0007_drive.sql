-- Google Drive export. A host connects their Drive once (OAuth 2.0 with PKCE); confctl keeps the refresh token
-- sealed with AES-256-GCM under a key of `drive_token_keys` (rotated by `confctl admin drive rotate-key`), and
-- remembers which Drive folder and files each lecture went to, so exporting it again updates those files.

-- Key material for sealing refresh tokens; the newest version seals, older ones only open until rotation has
-- re-sealed every token that uses them.
CREATE TABLE drive_token_keys (
    version    INTEGER PRIMARY KEY,
    material   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE drive_connections (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- base64url(nonce || ciphertext || tag); the plaintext never touches the database.
    refresh_token TEXT NOT NULL,
    key_version   INTEGER NOT NULL REFERENCES drive_token_keys (version),
    scope         TEXT NOT NULL,
    google_email  TEXT,
    connected_at  BIGINT NOT NULL
);

-- Authorization requests under way: the hash of `state`, bound to the sign-in session that started it, with
-- the PKCE verifier and the exact redirect URI the token request must repeat. Single use, 10 minutes.
CREATE TABLE drive_authorizations (
    state_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    code_verifier TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX drive_authorizations_expiry ON drive_authorizations (expires_at);

-- The Drive folder a lecture was exported to, per host.
CREATE TABLE drive_exports (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lecture_id  TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    folder_id   TEXT NOT NULL,
    exported_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, lecture_id)
);

-- The Drive file each exported file became, so a re-export updates it instead of adding a copy.
CREATE TABLE drive_files (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lecture_id  TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    size        BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, lecture_id, name)
);
