-- Per-tenant rate limit: one token bucket per tenant, kept in PostgreSQL so that every `serve`
-- process draws from the same bucket. `allowed` is the outcome of the last draw (the statement
-- that draws returns it).
CREATE TABLE rate_buckets (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    tokens       double precision NOT NULL,
    refreshed_at timestamptz NOT NULL,
    allowed      boolean NOT NULL
);

-- What a tenant has queued but not yet applied (the backlog cap at intake).
CREATE INDEX import_batches_queued ON import_batches (tenant_id) WHERE state IN ('held', 'pending');
