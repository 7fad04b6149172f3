-- Completion callbacks (callbackUrl): one per import, stored with the import, delivered by the
-- API processes' callback task once the import is final. `next_attempt_at` is both the retry
-- schedule and a lease: a task claims a due callback by moving it a minute ahead, so a process
-- that dies mid-delivery leaves it to be retried, never lost.
CREATE TABLE import_callbacks (
    import_id       uuid PRIMARY KEY REFERENCES imports (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL,
    url             text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX import_callbacks_due ON import_callbacks (next_attempt_at) WHERE state = 'pending';
