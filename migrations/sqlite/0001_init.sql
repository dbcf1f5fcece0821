-- Airlock store, SQLite flavour. Keep in step with migrations/postgres/0001_init.sql.

-- One row per MCP client session (plus the gateway's own audit session).
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    created_ms    BIGINT NOT NULL,
    subject       TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    groups_json   TEXT NOT NULL,
    transport     TEXT NOT NULL,
    client        TEXT NOT NULL DEFAULT ''
);

-- Append-only, hash-chained events. hash = sha256(prev_hash || canonical event); see gateway-core/src/record.rs.
CREATE TABLE events (
    session_id TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    call_id    TEXT,
    ts_ms      BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    prev_hash  TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX events_by_call ON events (call_id);
CREATE INDEX events_by_kind_time ON events (kind, ts_ms);

-- The application never updates or deletes recorded events; the database refuses it too.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

-- Agent API tokens: only a hash of the secret part is kept.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    revoked_ms  BIGINT
);
