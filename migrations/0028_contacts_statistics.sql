-- The planner's statistics of `contacts` are gathered only for the columns a statement filters
-- or sorts on: the key and the identifiers (the look-up, exact filters, `sort=phone|email`),
-- the names (their sorts), `deleted_at`, the tags and the search words (the list's filters and
-- their estimated totals). The other columns are written and read back, never compared, and
-- their statistics cost each ANALYZE most of its time: the service analyses `contacts` during
-- a big import (store/maintenance.rs), and on 180,284 generated contacts an ANALYZE took
-- 0.91–1.10 s with every column and 0.41–0.45 s with these (bench/RESULTS.md, session 18;
-- `custom_attributes` alone 0.31–0.40 s). A target of 0 makes ANALYZE skip a column. A column
-- added later gets the default again: give it 0 here too unless a statement compares it.
ALTER TABLE contacts
    ALTER COLUMN full_name SET STATISTICS 0,
    ALTER COLUMN occupation SET STATISTICS 0,
    ALTER COLUMN preferred_channel SET STATISTICS 0,
    ALTER COLUMN gender SET STATISTICS 0,
    ALTER COLUMN birthday SET STATISTICS 0,
    ALTER COLUMN address SET STATISTICS 0,
    ALTER COLUMN city SET STATISTICS 0,
    ALTER COLUMN state SET STATISTICS 0,
    ALTER COLUMN zip SET STATISTICS 0,
    ALTER COLUMN custom_attributes SET STATISTICS 0,
    ALTER COLUMN consent SET STATISTICS 0,
    ALTER COLUMN status SET STATISTICS 0,
    ALTER COLUMN email_status SET STATISTICS 0,
    ALTER COLUMN phone_status SET STATISTICS 0,
    ALTER COLUMN created_at SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0;
