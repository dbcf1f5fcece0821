-- Retention: whole sessions past their retention are purged, and each purge leaves a permanent record here (and a
-- `session_purged` event in the gateway's audit session). Keep in step with migrations/sqlite/0003_retention.sql.
CREATE TABLE session_purges (
    session_id  TEXT PRIMARY KEY,
    purged_ms   BIGINT NOT NULL,
    subject     TEXT NOT NULL,
    events      BIGINT NOT NULL,
    first_ms    BIGINT,
    last_ms     BIGINT,
    head_hash   TEXT
);

CREATE FUNCTION airlock_purges_permanent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'purge records are permanent';
END
$$;
CREATE TRIGGER session_purges_permanent BEFORE UPDATE OR DELETE ON session_purges
    FOR EACH ROW EXECUTE FUNCTION airlock_purges_permanent();

-- Events stay append-only; the one exception is deleting a whole session whose purge is recorded above (in the
-- same transaction). Nothing can delete part of a session.
CREATE OR REPLACE FUNCTION airlock_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM session_purges WHERE session_id = OLD.session_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'events are append-only (only whole sessions past retention are purged)';
END
$$;
