-- A page far into a sorted list (`page=` deep) skips its offset inside the sort key's index,
-- without reading the contacts it skips (store/contacts/list.rs, `offset_ids`): each index a
-- list is read through carries what that skip looks at, the id and `deleted_at`, so that an
-- index-only scan serves it once the table's visibility map is set (the service vacuums
-- `contacts` itself when imports pause, store/maintenance.rs). Measured on 891,812 contacts:
-- bench/RESULTS.md, 2026-12-05 (session 9).
DROP INDEX contacts_first_name;
CREATE INDEX contacts_first_name ON contacts (tenant_id, first_name, id) INCLUDE (deleted_at);
DROP INDEX contacts_last_name;
CREATE INDEX contacts_last_name ON contacts (tenant_id, last_name, id) INCLUDE (deleted_at);

-- Phone and email are unique within a tenant, so their stretch of contacts that have one is
-- read in that order alone; those without one are read by id through the partial indexes.
DROP INDEX contacts_phone;
CREATE UNIQUE INDEX contacts_phone ON contacts (tenant_id, phone) INCLUDE (id, deleted_at);
DROP INDEX contacts_email;
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email) INCLUDE (id, deleted_at);
DROP INDEX contacts_no_phone;
CREATE INDEX contacts_no_phone ON contacts (tenant_id, id) INCLUDE (deleted_at) WHERE phone IS NULL;
DROP INDEX contacts_no_email;
CREATE INDEX contacts_no_email ON contacts (tenant_id, id) INCLUDE (deleted_at) WHERE email IS NULL;

-- Creation order is the key's order (migration 0022).
ALTER TABLE contact_groups DROP CONSTRAINT contact_groups_contact_id_fkey;
ALTER TABLE contacts DROP CONSTRAINT contacts_pkey;
ALTER TABLE contacts ADD PRIMARY KEY (tenant_id, id) INCLUDE (deleted_at);
ALTER TABLE contact_groups ADD CONSTRAINT contact_groups_contact_id_fkey
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE;
