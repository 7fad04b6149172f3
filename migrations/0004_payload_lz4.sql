-- Batch payloads are JSON of ~100 kB per 500 rows, always TOASTed. PostgreSQL's default pglz
-- compression took ~30 ms per 3000-contact request at intake (the bulk of its latency); lz4
-- compresses about as well for this data at a fraction of the CPU, and decompresses faster for
-- the worker. Existing values keep their compression until rewritten.
ALTER TABLE import_batches ALTER COLUMN payload SET COMPRESSION lz4;
