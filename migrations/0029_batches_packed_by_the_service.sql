-- The service compresses a batch's `payload` and `raw` itself, as lz4 frames (store/packed.rs):
-- a 3000-contact request's three payloads cost the database 4-8 ms of CPU as JSON and 2 ms
-- packed (bench/RESULTS.md, session 19). PostgreSQL is not to compress them again: EXTERNAL
-- keeps a large value out of line, uncompressed. Values stored before stay as they are (JSON,
-- compressed by PostgreSQL) and are read as such.
ALTER TABLE import_batches
    ALTER COLUMN payload SET STORAGE EXTERNAL,
    ALTER COLUMN raw SET STORAGE EXTERNAL;
