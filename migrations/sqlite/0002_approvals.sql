-- Approvals held by policy, and every vote on them. Keep in step with migrations/postgres/0002_approvals.sql.
-- Unlike events, approvals change state (pending -> approved|denied|expired -> executing -> executed); every
-- transition is a compare-and-swap on `state`, and every transition is also recorded in the session's chain.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL,
    call_id         TEXT NOT NULL,
    requester       TEXT NOT NULL,
    requester_json  TEXT NOT NULL,
    connection      TEXT NOT NULL,
    tool            TEXT NOT NULL,
    -- exact arguments, needed to execute after a restart; what humans see is `display`, which is masked
    arguments_json  TEXT NOT NULL,
    display         TEXT NOT NULL,
    digest          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    policy_version  TEXT NOT NULL,
    requirement_json TEXT NOT NULL,
    channel         TEXT,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    state           TEXT NOT NULL,
    decided_ms      BIGINT,
    outcome_json    TEXT,
    notifier_ref    TEXT
);
CREATE INDEX approvals_by_state ON approvals (state, expires_ms);

CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL,
    voter       TEXT NOT NULL,
    decision    TEXT NOT NULL,
    reason      TEXT,
    source      TEXT NOT NULL,
    ts_ms       BIGINT NOT NULL,
    PRIMARY KEY (approval_id, voter)
);
