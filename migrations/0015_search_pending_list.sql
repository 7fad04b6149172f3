-- The trigram index of contact search takes a row's ~40 trigrams; inserted one row at a time
-- that cost the pipeline a quarter of its rows/s (bench/RESULTS.md). GIN's pending list defers
-- them and merges them in bulk: a larger one (32 MB, default 4 MB) keeps most of that speed
-- (measured: 14.6k rows/s against 11.6k, 15.2k without the index). The maintenance task
-- empties the list every few seconds (gin_clean_pending_list), so that searches do not scan a
-- full list after an import: only autovacuum's analyses would, and it may be off.
ALTER INDEX contacts_search SET (gin_pending_list_limit = 32768);
