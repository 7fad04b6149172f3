-- Contact search by the start of words (API.md): a term matches the start of a word of the
-- names or of the email (its local part and its domain count as words), case- and
-- accent-insensitively; a term of digits matches the start of the phone, with or without its
-- country code, or its end. This replaces migration 0013's trigram index over one text of five
-- fields (~40 entries a row, a quarter of the pipeline's rows/s) by a GIN index over the words
-- themselves (~10 entries a row), searched with prefix queries.
--
-- The functions are written with SQL-standard bodies (PostgreSQL 14+): they are parsed once,
-- here, so that what they call is bound now and an index build or a VACUUM run under another
-- search_path computes the same words.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- A text as search compares it: lower case, accents removed (unaccent's rules: é → e, ß → ss).
CREATE FUNCTION search_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(unaccent('unaccent'::regdictionary, t));

-- A text as a tsquery lexeme, taken literally (quotes doubled, backslashes escaped).
CREATE FUNCTION tsquery_quote(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN '''' || replace(replace(t, '\', '\\'), '''', '''''') || '''';

-- A contact's search words, as lexemes taken as they are (array_to_tsvector parses nothing):
-- - each word of the names, whole as written between spaces ("jean-pierre", "o'brien") and in
--   its parts of letters and digits ("jean", "pierre", "o", "brien");
-- - the email, whole (its start is the local part's) and its domain;
-- - the phone's digits with the country code, without it, and reversed behind a `~` (a term's
--   digits reversed match its end). The country code's length follows from its first digits:
--   E.164 codes are prefix-free; 1 and 7 are the codes of one digit, the list below those of
--   two, every other code has three.
CREATE FUNCTION contact_search_words(first_name text, last_name text, full_name text,
                                     email text, phone text)
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN array_to_tsvector(array_remove(array_remove(
        regexp_split_to_array(search_fold(concat_ws(' ', first_name, last_name, full_name)), '\s+')
        || regexp_split_to_array(search_fold(concat_ws(' ', first_name, last_name, full_name)),
                                 '[^[:alnum:]]+')
        || ARRAY[search_fold(email), search_fold(split_part(email, '@', 2)),
                 substr(phone, 2),
                 substr(phone, CASE
                     WHEN phone ~ '^\+[17]' THEN 3
                     WHEN phone ~ '^\+(2[07]|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])' THEN 4
                     ELSE 5 END),
                 '~' || reverse(substr(phone, 2))],
        ''), NULL));

-- The query of a search text: its terms (split on spaces, folded, punctuation at either end
-- dropped) must all match as prefixes; a term of digits (with `+`, `-`, `.`, `/` or brackets
-- between them) matches the phone's start or, reversed, its end. NULL when no term is left
-- (a search of punctuation only): such a search matches nothing.
CREATE FUNCTION contact_search_query(search text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT string_agg(CASE
               WHEN term ~ '^\+?[0-9()./-]*[0-9][0-9()./-]*$' THEN
                   '(' || tsquery_quote(regexp_replace(term, '[^0-9]', '', 'g')) || ':* | '
                   || tsquery_quote('~' || reverse(regexp_replace(term, '[^0-9]', '', 'g')))
                   || ':*)'
               ELSE tsquery_quote(regexp_replace(term, '^[[:punct:]]+|[[:punct:]]+$', '', 'g'))
                    || ':*'
           END, ' & ')::tsquery
    FROM regexp_split_to_table(search_fold(search), '\s+') AS term
    WHERE regexp_replace(term, '^[[:punct:]]+|[[:punct:]]+$', '', 'g') <> ''
       OR term ~ '[0-9]';
END;

DROP INDEX contacts_search;
CREATE INDEX contacts_words ON contacts
    USING gin (contact_search_words(first_name, last_name, full_name, email, phone));
-- As migration 0015 did for the trigram index: a larger pending list, merged by the
-- maintenance task once no import is being applied.
ALTER INDEX contacts_words SET (gin_pending_list_limit = 32768);

-- Most contacts have no tag: the tag index holds only those that have one (a query for a tag
-- says `tags <> '{}'` as well, so that the planner can use it).
DROP INDEX contacts_tags;
CREATE INDEX contacts_tags ON contacts USING gin (tags) WHERE tags <> '{}';

-- Keyset pages sorted by phone or email (`?after=`) read the contacts without one in id order;
-- those indexes are unique on (tenant_id, phone) and (tenant_id, email) and do not hold the id.
-- These hold only the contacts without one.
CREATE INDEX contacts_no_phone ON contacts (tenant_id, id) WHERE phone IS NULL;
CREATE INDEX contacts_no_email ON contacts (tenant_id, id) WHERE email IS NULL;
