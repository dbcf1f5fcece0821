-- Web sign-in at an OpenID Connect provider (authorization code + PKCE). Keep in step with the other backend's
-- 0008_web_oidc.sql.
--
-- A sign-in in progress, stored server-side so that any replica can finish it. The state is a random 256-bit
-- value, stored hashed; the PKCE verifier and the nonce are only good together with the provider's one-time
-- code, and the row is deleted when the callback uses it (or 10 minutes later).
CREATE TABLE web_oidc_flows (
    state_hash     TEXT PRIMARY KEY,
    code_verifier  TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    next           TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    expires_ms     BIGINT NOT NULL
);
CREATE INDEX web_oidc_flows_expires ON web_oidc_flows (expires_ms);

-- People signed in through OIDC need not be `[[humans]]`: their groups come from the ID token and are kept
-- with the session (roles are still derived from them at every request). NULL for local sign-ins.
ALTER TABLE web_sessions ADD COLUMN groups_json TEXT;
