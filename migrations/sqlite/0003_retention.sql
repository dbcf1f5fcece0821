-- Retention: whole sessions past their retention are purged, and each purge leaves a permanent record here (and a
-- `session_purged` event in the gateway's audit session). Keep in step with migrations/postgres/0003_retention.sql.
CREATE TABLE session_purges (
    session_id  TEXT PRIMARY KEY,
    purged_ms   BIGINT NOT NULL,
    subject     TEXT NOT NULL,
    events      BIGINT NOT NULL,
    first_ms    BIGINT,
    last_ms     BIGINT,
    head_hash   TEXT
);

CREATE TRIGGER session_purges_no_update BEFORE UPDATE ON session_purges
BEGIN
    SELECT RAISE(ABORT, 'purge records are permanent');
END;
CREATE TRIGGER session_purges_no_delete BEFORE DELETE ON session_purges
BEGIN
    SELECT RAISE(ABORT, 'purge records are permanent');
END;

-- Events stay append-only; the one exception is deleting a whole session whose purge is recorded above (in the
-- same transaction). Nothing can delete part of a session.
DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN NOT EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id)
BEGIN
    SELECT RAISE(ABORT, 'events are append-only (only whole sessions past retention are purged)');
END;
