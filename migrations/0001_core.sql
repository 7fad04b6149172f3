-- The core pipeline: tenants and their keys, custom fields, imports with their batches
-- (the outbox), per-row results, and contacts. Every tenant-owned row carries tenant_id.

CREATE TABLE tenants (
    id             uuid PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    -- Signs this tenant's completion callbacks; needed in clear to compute the HMAC.
    signing_secret text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- API keys are random 256-bit strings; only their SHA-256 is stored.
CREATE TABLE api_keys (
    key_hash   bytea PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE custom_fields (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL,
    type       text NOT NULL CHECK (type IN ('string', 'number', 'boolean', 'date', 'enum')),
    options    jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE imports (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source          text NOT NULL CHECK (source IN ('api', 'csv')),
    status          text NOT NULL CHECK (status IN ('queued', 'processing', 'completed',
                        'completedWithErrors', 'failed', 'cancelled')),
    -- The request's options (dedupeOn, mode, overwrite, defaultRegion, restoreDeleted ...).
    options         jsonb NOT NULL,
    total_rows      integer NOT NULL,
    processed_rows  integer NOT NULL DEFAULT 0,
    created         integer NOT NULL DEFAULT 0,
    updated         integer NOT NULL DEFAULT 0,
    skipped         integer NOT NULL DEFAULT 0,
    failed          integer NOT NULL DEFAULT 0,
    batch_count     integer NOT NULL,
    batches_done    integer NOT NULL DEFAULT 0,
    idempotency_key text,
    request_hash    bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CHECK (created + updated + skipped + failed = processed_rows),
    CHECK (processed_rows <= total_rows)
);
CREATE INDEX imports_tenant_created ON imports (tenant_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX imports_idempotency ON imports (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A batch is both the unit of work and the outbox entry: published_at IS NULL means the
-- relay still has to publish its reference to the broker.
CREATE TABLE import_batches (
    import_id    uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    batch_no     integer NOT NULL,
    tenant_id    uuid NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    first_row    integer NOT NULL,
    row_count    integer NOT NULL,
    -- The rows as the client sent them: a JSON array, kept as bytes so that anything
    -- PostgreSQL's json types refuse (a \u0000 in a string) is stored and fails only its row.
    payload      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    publish_count integer NOT NULL DEFAULT 0,
    done_at      timestamptz,
    PRIMARY KEY (import_id, batch_no)
);
CREATE INDEX import_batches_unpublished ON import_batches (created_at)
    WHERE published_at IS NULL AND state = 'pending';

CREATE TABLE row_results (
    import_id  uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    row_index  integer NOT NULL,
    tenant_id  uuid NOT NULL,
    status     text NOT NULL CHECK (status IN ('created', 'updated', 'skipped', 'failed')),
    contact_id uuid,
    errors     jsonb,
    warnings   jsonb,
    PRIMARY KEY (import_id, row_index)
);
CREATE INDEX row_results_failed ON row_results (import_id, row_index) WHERE status = 'failed';

-- Phone (E.164), email (lower-cased) and external id are each unique per tenant, soft-deleted
-- contacts included, so that a dedupe key names at most one contact and a restore never clashes.
CREATE TABLE contacts (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    external_id       text,
    phone             text,
    email             text,
    first_name        text,
    last_name         text,
    full_name         text,
    occupation        text,
    preferred_channel text,
    gender            text CHECK (gender IN ('male', 'female')),
    birthday          date,
    address           text,
    city              text,
    state             text,
    zip               text,
    custom_attributes jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE UNIQUE INDEX contacts_phone ON contacts (tenant_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX contacts_external_id ON contacts (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX contacts_tenant_created ON contacts (tenant_id, created_at DESC, id DESC);

-- Rows that share their identifier with another row of the same import: they fail with
-- duplicate_in_file. Found at intake, over the whole request or file.
CREATE TABLE duplicate_rows (
    import_id uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    row_index integer NOT NULL,
    PRIMARY KEY (import_id, row_index)
);
