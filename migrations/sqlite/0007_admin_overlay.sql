-- Admin changes made at run time (chat slash commands): policy overlay versions and frozen identities.
-- Policy files on disk stay the base layer; each version stores the *whole* overlay (rule name → override) so
-- a rollback is "store a new version equal to an old one". Keep in step with the other backend's 0007.
CREATE TABLE policy_versions (
    version       BIGINT PRIMARY KEY,
    actor         TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    command       TEXT NOT NULL,
    overlay_json  TEXT NOT NULL,
    diff          TEXT NOT NULL
);

-- Identities refused before classification (incident containment) until unfrozen.
CREATE TABLE frozen_identities (
    subject  TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at_ms    BIGINT NOT NULL
);
