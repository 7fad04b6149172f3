-- A contact's identifiers and tags compare byte by byte (collation "C"), whatever the database's
-- default collation. They are keys, not words: a phone is `+` and digits, an email is trimmed
-- and lower-cased, an external id is the client's own key, a tag is matched whole; equality is
-- byte equality under any deterministic collation, so no key changes meaning. What changes is
-- the cost: every contact written compares its identifiers in three unique indexes (and its
-- tags in the tags index), and a batch's look-up compares them again. PostgreSQL compares text
-- with `memcmp` only under "C" and "POSIX"; under any other collation (`C.UTF-8` included) each
-- comparison goes through the locale, and under a language's (an `en_US.UTF-8` cluster, ICU)
-- through its rules (bench/RESULTS.md, session 17). `sort=phone`, `sort=email` and their
-- cursors order by code point, as they already did on a `C.UTF-8` database.
-- The table is not rewritten; the indexes on these columns are rebuilt, with writes to
-- `contacts` blocked meanwhile.
ALTER TABLE contacts
    ALTER COLUMN phone TYPE text COLLATE "C",
    ALTER COLUMN email TYPE text COLLATE "C",
    ALTER COLUMN external_id TYPE text COLLATE "C",
    ALTER COLUMN tags TYPE text[] COLLATE "C";
