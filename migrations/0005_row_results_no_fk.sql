-- row_results is written 500 rows at a time by the workers; its foreign key to imports made
-- PostgreSQL look up and key-share-lock the import row once per row (half the insert's time).
-- Only the worker writes it, inside the transaction that holds its batch (and so its import)
-- locked, so the reference cannot dangle; deleting an import deletes its results explicitly.
ALTER TABLE row_results DROP CONSTRAINT row_results_import_id_fkey;
