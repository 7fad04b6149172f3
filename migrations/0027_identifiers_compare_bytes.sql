-- A contact's identifiers compare byte by byte (collation "C"), whatever the database's default
-- collation. They are keys, not words: a phone is `+` and digits, an email is trimmed and
-- lower-cased, an external id is the client's own key; equality is byte equality under any
-- deterministic collation, so no key changes meaning. What changes is the cost: every write of
-- a contact compares its identifiers in three unique indexes, and the batch's look-up compares
-- them again. Under a language's collation (an `en_US.UTF-8` cluster, or ICU) each comparison
-- goes through the locale's collation rules; byte comparisons are a `memcmp`
-- (bench/RESULTS.md, session 17). `sort=phone`, `sort=email` and cursors on them then order by
-- bytes (code point order), as they already did on a `C.UTF-8` database.
-- The table is not rewritten; the indexes on these columns are rebuilt, with writes to
-- `contacts` blocked meanwhile.
ALTER TABLE contacts
    ALTER COLUMN phone TYPE text COLLATE "C",
    ALTER COLUMN email TYPE text COLLATE "C",
    ALTER COLUMN external_id TYPE text COLLATE "C";
