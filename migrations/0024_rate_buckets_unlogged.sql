-- The rate limit's buckets are state worth no durability: after a crash an empty table only
-- gives every tenant a full burst again. Unlogged, a draw writes no WAL, so its commit does
-- not wait for a WAL flush; it did once per POST and DELETE, behind the workers' flushes
-- (bench/RESULTS.md, 2026-12-06). An unlogged table is also not copied to a standby: a
-- promoted standby starts with full buckets, as after a crash.
ALTER TABLE rate_buckets SET UNLOGGED;
