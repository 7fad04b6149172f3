-- Retention: an import finished more than RETENTION_DAYS ago keeps its summary (this row) but
-- loses its batches (the rows as sent) and its row results; purged_at says when.
ALTER TABLE imports ADD COLUMN purged_at timestamptz;
CREATE INDEX imports_to_purge ON imports (finished_at) WHERE purged_at IS NULL AND finished_at IS NOT NULL;
