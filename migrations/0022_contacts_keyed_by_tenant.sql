-- Contacts are keyed by (tenant_id, id), like every key that grows with the tenants' data (the
-- schema stays ready to be distributed by tenant), and that key also serves the `createdAt`
-- order: ids are UUIDv7, so a tenant's contacts in id order are in creation order. The index
-- on (tenant_id, created_at, id) goes: it cost 15 % of the rate of a COPY into contacts
-- (bench/RESULTS.md, session 6).
--
-- For the two orders to be one, a contact's created_at is the time its id carries (to the
-- millisecond; the worker that creates a contact makes its id). Contacts stored before this
-- migration took the time of their transaction instead, a few milliseconds off: they are set
-- from their ids here, once, before the new key is built.
ALTER TABLE contact_groups DROP CONSTRAINT contact_groups_contact_id_fkey;
ALTER TABLE contacts DROP CONSTRAINT contacts_pkey;
DROP INDEX contacts_tenant_created;

UPDATE contacts
SET created_at = to_timestamp(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::int8 / 1000.0)
WHERE substr(id::text, 15, 1) = '7'
  AND created_at <> to_timestamp(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::int8 / 1000.0);

ALTER TABLE contacts ADD PRIMARY KEY (tenant_id, id);

-- A membership names its contact within its tenant, and is found that way when the contact
-- is deleted.
DROP INDEX contact_groups_contact;
CREATE INDEX contact_groups_contact ON contact_groups (tenant_id, contact_id);
ALTER TABLE contact_groups ADD CONSTRAINT contact_groups_contact_id_fkey
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE;
