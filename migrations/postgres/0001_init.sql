-- Airlock store, Postgres flavour. Keep in step with migrations/sqlite/0001_init.sql.

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    created_ms    BIGINT NOT NULL,
    subject       TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    groups_json   TEXT NOT NULL,
    transport     TEXT NOT NULL,
    client        TEXT NOT NULL DEFAULT ''
);

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

CREATE FUNCTION airlock_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION airlock_append_only();

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    revoked_ms  BIGINT
);
