-- The fair relay picks the next batches per tenant (oldest first) instead of in global arrival
-- order: index the waiting batches by tenant. The global index served the old FIFO relay only.
DROP INDEX import_batches_unpublished;
CREATE INDEX import_batches_waiting ON import_batches (tenant_id, created_at, import_id, batch_no)
    WHERE published_at IS NULL AND state = 'pending';
