-- Search index over recorded tool calls. Keep in step with migrations/sqlite/0004_call_index.sql.
--
-- One row per call, derived from its events and maintained by the recorder in the same transaction that appends
-- them (gateway-core/src/search.rs), so it never diverges from the chain. It is not evidence: the chain is; this
-- table can be rebuilt from `events` (the backfill below does exactly that) and is deleted with its session.
CREATE TABLE call_index (
    call_id     TEXT   PRIMARY KEY,
    session_id  TEXT   NOT NULL,
    subject     TEXT   NOT NULL,
    connection  TEXT   NOT NULL,
    tool        TEXT   NOT NULL,
    -- `pending` until the call's result is recorded, then the result's status (completed, blocked, ...).
    status      TEXT   NOT NULL,
    rule        TEXT,
    started_ms  BIGINT NOT NULL,
    finished_ms BIGINT,
    -- Masked, exactly as recorded (the first 16384 characters; the chain has all of it).
    statement   TEXT   NOT NULL,
    -- Masked command output (stdout and stderr text of every output frame), capped at 49152 characters (with the
    -- statement's 16384, never more text than a Postgres tsvector can hold; see gateway-core/src/search.rs).
    output      TEXT   NOT NULL DEFAULT '',
    approval_id TEXT,
    -- Full text over statement and output. The `simple` configuration: no stemming and no stop words, so a
    -- search finds exactly the words that were recorded, in any language.
    fts         tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, statement || ' ' || output)) STORED
);
CREATE INDEX call_index_by_time ON call_index (started_ms);
CREATE INDEX call_index_by_session ON call_index (session_id, started_ms);
CREATE INDEX call_index_by_subject ON call_index (subject, started_ms);
CREATE INDEX call_index_by_connection ON call_index (connection, started_ms);
CREATE INDEX call_index_by_tool ON call_index (tool, started_ms);
CREATE INDEX call_index_by_status ON call_index (status, started_ms);
CREATE INDEX call_index_by_rule ON call_index (rule, started_ms);
CREATE INDEX call_index_fts ON call_index USING GIN (fts);

-- Backfill calls recorded before this migration (latest decision and result win, as in the recorder). Payloads
-- are canonical JSON text; `\u0000` escapes are dropped first because jsonb refuses them.
CREATE FUNCTION pg_temp.airlock_json(payload TEXT) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(payload, '\u0000', '')::jsonb
$$;

INSERT INTO call_index (call_id, session_id, subject, connection, tool, status, started_ms, statement)
SELECT e.call_id, e.session_id,
       COALESCE(pg_temp.airlock_json(e.payload) #>> '{identity,subject}', s.subject, ''),
       COALESCE(pg_temp.airlock_json(e.payload) ->> 'connection', ''),
       COALESCE(pg_temp.airlock_json(e.payload) ->> 'tool', ''),
       'pending', e.ts_ms,
       left(COALESCE(pg_temp.airlock_json(e.payload) ->> 'statement', ''), 16384)
FROM events e LEFT JOIN sessions s ON s.id = e.session_id
WHERE e.kind = 'request' AND e.call_id IS NOT NULL
ON CONFLICT (call_id) DO NOTHING;

UPDATE call_index c SET rule = d.rule
FROM (SELECT DISTINCT ON (call_id) call_id, pg_temp.airlock_json(payload) ->> 'rule' AS rule
      FROM events WHERE kind = 'decision' AND call_id IS NOT NULL ORDER BY call_id, seq DESC) d
WHERE d.call_id = c.call_id;

UPDATE call_index c SET
    status = COALESCE(r.p ->> 'status', c.status),
    rule = COALESCE(r.p ->> 'rule', c.rule),
    finished_ms = r.ts_ms,
    approval_id = r.p ->> 'approval_id'
FROM (SELECT DISTINCT ON (call_id) call_id, ts_ms, pg_temp.airlock_json(payload) AS p
      FROM events WHERE kind = 'result' AND call_id IS NOT NULL ORDER BY call_id, seq DESC) r
WHERE r.call_id = c.call_id;

UPDATE call_index c SET output = left(o.text, 49152)
FROM (SELECT e.call_id, string_agg(f.value ->> 2, '' ORDER BY e.seq, f.ord) AS text
      FROM events e,
           jsonb_array_elements(COALESCE(pg_temp.airlock_json(e.payload) -> 'frames', '[]'::jsonb))
               WITH ORDINALITY AS f(value, ord)
      WHERE e.kind = 'output' AND e.call_id IS NOT NULL
      GROUP BY e.call_id) o
WHERE o.call_id = c.call_id AND o.text IS NOT NULL;
