-- The number of contacts per tenant, for GET /api/v1/contacts without filters (meta.total):
-- counting a million rows per page request costs 150 ms. Kept like group member counts:
-- whatever creates, deletes or restores contacts appends a delta in its transaction
-- (insert-only, no waiting on a shared row); the maintenance task folds them every second.
CREATE TABLE contact_counts (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- Contacts not deleted, and all of them, as of the last fold.
    live      bigint NOT NULL DEFAULT 0,
    total     bigint NOT NULL DEFAULT 0
);
CREATE TABLE contact_count_deltas (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    live      bigint NOT NULL,
    total     bigint NOT NULL
);
CREATE INDEX contact_count_deltas_tenant ON contact_count_deltas (tenant_id);
-- Contacts stored before this migration.
INSERT INTO contact_counts (tenant_id, live, total)
SELECT tenant_id, count(*) FILTER (WHERE deleted_at IS NULL), count(*) FROM contacts GROUP BY tenant_id;
