-- The key that signs session-scoped replay links (`[web] signed_link_channels`). One row, created by the first
-- replica that starts; every replica reads the same key, so a link posted by one opens on any. Anyone who can read
-- this table can already read every session, so keeping the key here grants nothing new.
-- Keep in step with the other backend's 0006_signed_links.sql.
CREATE TABLE link_keys (
    name        TEXT PRIMARY KEY,
    key_hex     TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
