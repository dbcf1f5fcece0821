-- The web UI: local sign-in for `[[humans]]`. Secrets are stored hashed only: passwords with argon2id (PHC
-- string), login links and session ids with sha256 (they are random 256-bit values, so a fast hash suffices).
-- Keep in step with the other backend's 0005_web.sql.
CREATE TABLE web_users (
    subject        TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);

-- One-time login links issued by an admin (`airlock users login-link`).
CREATE TABLE web_login_tokens (
    token_hash  TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    used_ms     BIGINT
);

-- Signed-in browsers. The CSRF token is per session; it only matters together with the session cookie.
CREATE TABLE web_sessions (
    id_hash     TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    method      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_ms);
