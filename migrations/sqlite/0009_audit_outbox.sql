-- The audit stream's durable outbox (gateway-core/src/audit.rs). The recorder writes one row per typed audit
-- event and configured sink in the same transaction as the recorded event, so the stream can lag but never
-- diverge from the chain: a crash or a SIEM outage loses nothing. Each sink's rows are delivered in id order by
-- the one replica holding that sink's lease (`leases`), and marked delivered afterwards (at least once: a receiver dedupes
-- on event_id). Delivered rows are deleted a day later. Keep in step with the other backend's 0009_audit_outbox.sql.
CREATE TABLE audit_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sink         TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    session_id   TEXT   NOT NULL,
    created_ms   BIGINT NOT NULL,
    body         TEXT   NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_ms BIGINT
);
CREATE UNIQUE INDEX audit_outbox_event ON audit_outbox (sink, event_id);
CREATE INDEX audit_outbox_pending ON audit_outbox (sink, id) WHERE delivered_ms IS NULL;
CREATE INDEX audit_outbox_delivered ON audit_outbox (delivered_ms) WHERE delivered_ms IS NOT NULL;

-- Work that one replica at a time must do (deliver an audit sink: `audit:<sink>`; the retention purge), and
-- which replica holds it until when. A holder renews its lease while it works; when it dies, another replica
-- takes the work over once the lease has run out.
CREATE TABLE leases (
    name      TEXT   PRIMARY KEY,
    owner     TEXT   NOT NULL,
    until_ms  BIGINT NOT NULL
);
