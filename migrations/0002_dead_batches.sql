-- Dead batches: a batch that could not be applied after its delivery limit (or that can never
-- be applied) is recorded here, its rows fail with a clear reason, and its import finishes
-- instead of hanging. The database, not the broker's dead-letter queue, is the record.
ALTER TABLE imports ADD COLUMN batches_dead integer NOT NULL DEFAULT 0;
ALTER TABLE import_batches ADD COLUMN dead_reason text;
ALTER TABLE import_batches ADD COLUMN dead_at timestamptz;
CREATE INDEX import_batches_dead ON import_batches (dead_at) WHERE state = 'dead';
-- The relay looks for batches published long ago and still pending (a lost message).
CREATE INDEX import_batches_in_flight ON import_batches (published_at) WHERE state = 'pending';
