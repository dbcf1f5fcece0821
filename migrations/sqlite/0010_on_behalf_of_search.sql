-- Search by the human an agent acted for (`on_behalf_of`, from an OIDC claim or a trusted agent's header). Filled by
-- the recorder from each request's identity (gateway-core/src/search.rs); calls recorded before on-behalf-of
-- existed have none, so there is nothing to backfill. Keep in step with the other backend's file.
ALTER TABLE call_index ADD COLUMN on_behalf_of TEXT;
CREATE INDEX call_index_by_on_behalf_of ON call_index (on_behalf_of, started_ms);
