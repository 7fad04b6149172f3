-- Contact search by the start of words (API.md): a term matches the start of a word of the
-- names or of the email (its local part and its domain count as words), case- and
-- accent-insensitively; a term of digits matches the start of the phone, with or without its
-- country code, or its end. This replaces migration 0013's trigram index over one text of five
-- fields (~40 entries a row, a quarter of the pipeline's rows/s).
--
-- The words are computed by the service as it writes a contact (validate::search::words: the
-- names' words and their parts, the email and its domain, the phone's digits with and without
-- the country code and reversed), folded by the same function as a search's terms, and stored
-- as a tsvector; a GIN index over it answers prefix queries ('dup':*). Computing them in SQL,
-- as an expression index, cost the COPY of the benchmark 60 % of its rows/s (measured: 54k
-- rows/s without the index, 20k with a SQL function, 13 µs a row); stored, the index costs
-- about 2 µs a row.
ALTER TABLE contacts ADD COLUMN search_words tsvector NOT NULL DEFAULT '';

-- Contacts stored before: their words by SQL, as close to the service's as SQL gets without
-- an extension (lower case, the common accents of Latin-1 and Latin Extended-A removed). A
-- contact written again gets the service's own.
UPDATE contacts SET search_words = array_to_tsvector(ARRAY(
    SELECT DISTINCT left(w, 100) FROM unnest(
        regexp_split_to_array(f, '\s+') || regexp_split_to_array(f, '[^[:alnum:]]+')
        || ARRAY[lower(email), split_part(lower(email), '@', 2), substr(phone, 2),
                 substr(phone, CASE WHEN substr(phone, 2, 1) IN ('1', '7') THEN 3
                     WHEN substr(phone, 2, 2) = ANY ('{20,27,30,31,32,33,34,36,39,40,41,43,44,45,46,47,48,49,51,52,53,54,55,56,57,58,60,61,62,63,64,65,66,81,82,84,86,90,91,92,93,94,95,98}')
                     THEN 4 ELSE 5 END),
                 '~' || reverse(substr(phone, 2))]) AS w
    WHERE w IS NOT NULL AND w <> ''))
FROM (SELECT id AS fid, translate(lower(concat_ws(' ', first_name, last_name, full_name)),
                 'àáâãäåāăąçćčďèéêëēėęěìíîïīįñńňòóôõöōőùúûüūůűųýÿśšşźžżťţŕř',
                 'aaaaaaaaacccdeeeeeeeeiiiiiinnnooooooouuuuuuuuyysssszzzttrr') AS f
      FROM contacts) AS folded
WHERE contacts.id = folded.fid
  AND (first_name IS NOT NULL OR last_name IS NOT NULL OR full_name IS NOT NULL
       OR email IS NOT NULL OR phone IS NOT NULL);

DROP INDEX contacts_search;
CREATE INDEX contacts_words ON contacts USING gin (search_words);
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
