-- A batch's results (500 statuses, contact ids, errors and warnings as arrays) are several kB
-- and compressed. PostgreSQL's default pglz showed as 1.7 % of the database's CPU in a
-- re-import (perf). Measured on 800 batches' results: writing them took 180–207 ms with pglz,
-- 33–38 ms with lz4, for 7 % more disk (5.3 MB against 4.9 MB), and reading them back 5 ms
-- against 8 ms (bench/RESULTS.md, session 15). The payloads use lz4 already (migration 0004).
-- Existing values keep their compression until rewritten.
ALTER TABLE batch_results
    ALTER COLUMN statuses SET COMPRESSION lz4,
    ALTER COLUMN contact_ids SET COMPRESSION lz4,
    ALTER COLUMN errors SET COMPRESSION lz4,
    ALTER COLUMN warnings SET COMPRESSION lz4;
