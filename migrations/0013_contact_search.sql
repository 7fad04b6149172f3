-- GET /api/v1/contacts?search=&sort=&order=: fast on a million contacts.
-- search: a substring of the names, phone or email, case-insensitive, through a trigram index
-- on one lower-cased text of those fields (pg_trgm, a trusted extension in PostgreSQL 13+).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_search ON contacts USING gin ((lower(
    coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(full_name, '')
    || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))) gin_trgm_ops);
-- sort: an index per sort key, so a page is read in index order instead of sorting the tenant.
CREATE INDEX contacts_first_name ON contacts (tenant_id, first_name, id);
CREATE INDEX contacts_last_name ON contacts (tenant_id, last_name, id);
-- Phone and email stay unique per tenant, now with every row in the index (NULLs never
-- collide), so that sorting by them walks the index too (same number of indexes as before).
DROP INDEX contacts_phone;
CREATE UNIQUE INDEX contacts_phone ON contacts (tenant_id, phone);
DROP INDEX contacts_email;
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email);
