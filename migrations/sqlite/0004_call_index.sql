-- Search index over recorded tool calls. Keep in step with migrations/postgres/0004_call_index.sql.
--
-- One row per call, derived from its events and maintained by the recorder in the same transaction that appends
-- them (gateway-core/src/search.rs), so it never diverges from the chain. It is not evidence: the chain is; this
-- table can be rebuilt from `events` (the backfill below does exactly that) and is deleted with its session.
CREATE TABLE call_index (
    -- An explicit INTEGER PRIMARY KEY: FTS5 rows point at it, and implicit rowids may change on VACUUM.
    id          INTEGER PRIMARY KEY,
    call_id     TEXT   NOT NULL UNIQUE,
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
    approval_id TEXT
);
CREATE INDEX call_index_by_time ON call_index (started_ms);
CREATE INDEX call_index_by_session ON call_index (session_id, started_ms);
CREATE INDEX call_index_by_subject ON call_index (subject, started_ms);
CREATE INDEX call_index_by_connection ON call_index (connection, started_ms);
CREATE INDEX call_index_by_tool ON call_index (tool, started_ms);
CREATE INDEX call_index_by_status ON call_index (status, started_ms);
CREATE INDEX call_index_by_rule ON call_index (rule, started_ms);

-- Backfill calls recorded before this migration (latest decision and result win, as in the recorder).
INSERT INTO call_index (call_id, session_id, subject, connection, tool, status, started_ms, statement)
SELECT e.call_id, e.session_id,
       COALESCE(json_extract(e.payload, '$.identity.subject'), s.subject, ''),
       COALESCE(json_extract(e.payload, '$.connection'), ''),
       COALESCE(json_extract(e.payload, '$.tool'), ''),
       'pending', e.ts_ms,
       substr(COALESCE(json_extract(e.payload, '$.statement'), ''), 1, 16384)
FROM events e LEFT JOIN sessions s ON s.id = e.session_id
WHERE e.kind = 'request' AND e.call_id IS NOT NULL
-- In start order: text searches list calls by id (recording order), newest first.
ORDER BY e.ts_ms, e.session_id, e.seq
ON CONFLICT (call_id) DO NOTHING;

UPDATE call_index SET rule = (
    SELECT json_extract(d.payload, '$.rule') FROM events d
    WHERE d.call_id = call_index.call_id AND d.kind = 'decision' ORDER BY d.seq DESC LIMIT 1
);

UPDATE call_index SET
    status = COALESCE((SELECT json_extract(r.payload, '$.status') FROM events r
                       WHERE r.call_id = call_index.call_id AND r.kind = 'result' ORDER BY r.seq DESC LIMIT 1), status),
    rule = COALESCE((SELECT json_extract(r.payload, '$.rule') FROM events r
                     WHERE r.call_id = call_index.call_id AND r.kind = 'result' ORDER BY r.seq DESC LIMIT 1), rule),
    finished_ms = (SELECT r.ts_ms FROM events r
                   WHERE r.call_id = call_index.call_id AND r.kind = 'result' ORDER BY r.seq DESC LIMIT 1),
    approval_id = (SELECT json_extract(r.payload, '$.approval_id') FROM events r
                   WHERE r.call_id = call_index.call_id AND r.kind = 'result' ORDER BY r.seq DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM events r WHERE r.call_id = call_index.call_id AND r.kind = 'result');

UPDATE call_index SET output = substr(COALESCE((
    SELECT group_concat(t, '') FROM (
        SELECT json_extract(f.value, '$[2]') AS t FROM events o, json_each(o.payload, '$.frames') f
        WHERE o.call_id = call_index.call_id AND o.kind = 'output' ORDER BY o.seq, f.key
    )), ''), 1, 49152)
WHERE EXISTS (SELECT 1 FROM events o WHERE o.call_id = call_index.call_id AND o.kind = 'output');

-- Full text over the masked statement and output. External content: the text lives once, in call_index; the
-- triggers keep the FTS index in step with every insert, update and delete (purge) of call_index.
CREATE VIRTUAL TABLE call_fts USING fts5(statement, output, content = 'call_index', content_rowid = 'id');
INSERT INTO call_fts (call_fts) VALUES ('rebuild');

CREATE TRIGGER call_index_fts_insert AFTER INSERT ON call_index
BEGIN
    INSERT INTO call_fts (rowid, statement, output) VALUES (new.id, new.statement, new.output);
END;
CREATE TRIGGER call_index_fts_delete AFTER DELETE ON call_index
BEGIN
    INSERT INTO call_fts (call_fts, rowid, statement, output) VALUES ('delete', old.id, old.statement, old.output);
END;
-- Only text changes touch the FTS index (status, rule and time updates do not).
CREATE TRIGGER call_index_fts_update AFTER UPDATE OF statement, output ON call_index
WHEN old.statement IS NOT new.statement OR old.output IS NOT new.output
BEGIN
    INSERT INTO call_fts (call_fts, rowid, statement, output) VALUES ('delete', old.id, old.statement, old.output);
    INSERT INTO call_fts (rowid, statement, output) VALUES (new.id, new.statement, new.output);
END;
