-- CSV imports. A file's batches are stored as it streams in, in state 'held' so the relay does
-- not publish them; once the whole file is stored, duplicates are found over every batch's
-- dedupe keys and the batches become 'pending' in one transaction.
ALTER TABLE import_batches DROP CONSTRAINT import_batches_state_check;
ALTER TABLE import_batches ADD CONSTRAINT import_batches_state_check
    CHECK (state IN ('held', 'pending', 'done', 'dead'));
-- The original cells of each record (JSON array of arrays of strings), for results.csv.
ALTER TABLE import_batches ADD COLUMN raw bytea;
-- Normalised dedupe keys of the batch's rows, kept only until the file is complete.
ALTER TABLE import_batches ADD COLUMN dedupe_keys text[];
-- The header of a CSV file, for results.csv.
ALTER TABLE imports ADD COLUMN columns text[];
-- Why an import failed as a whole (e.g. its upload was cut off).
ALTER TABLE imports ADD COLUMN error text;
