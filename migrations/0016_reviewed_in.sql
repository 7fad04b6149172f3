-- A dry run committed (POST /api/v1/imports/{id}/commit) becomes a new import of the very rows
-- it reviewed; that import names the dry run. The unique index makes a dry run committable
-- once only, however many requests race for it.
ALTER TABLE imports ADD COLUMN reviewed_in uuid;
CREATE UNIQUE INDEX imports_reviewed_in ON imports (tenant_id, reviewed_in)
    WHERE reviewed_in IS NOT NULL;
