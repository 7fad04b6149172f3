-- Erasure (DELETE /api/v1/contacts/{id}?erase=true): a row of an erased contact keeps its
-- place in its import's results with the status `erased` and nothing else.
ALTER TABLE row_results DROP CONSTRAINT row_results_status_check;
ALTER TABLE row_results ADD CONSTRAINT row_results_status_check
    CHECK (status IN ('created', 'updated', 'skipped', 'failed', 'erased'));
