-- Contact tags: a set of short strings per contact (kept in first-added order). `?tag=` finds
-- the contacts with one through the GIN index (tenant_id = $1 AND tags @> '{vip}').
ALTER TABLE contacts ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX contacts_tags ON contacts USING gin (tags);
