-- Consent per channel and the contact's statuses. `consent` is {"sms": {"status": "optedIn",
-- "updatedAt": "…", "source": "…"}, …}, NULL while no channel was ever set (most contacts:
-- nothing stored for them). The statuses are `active` by default, so adding them rewrites
-- nothing (PostgreSQL 11+ keeps a constant default in the catalogue).
ALTER TABLE contacts ADD COLUMN consent jsonb;
ALTER TABLE contacts ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'passive'));
ALTER TABLE contacts ADD COLUMN email_status text NOT NULL DEFAULT 'active'
    CHECK (email_status IN ('active', 'passive'));
ALTER TABLE contacts ADD COLUMN phone_status text NOT NULL DEFAULT 'active'
    CHECK (phone_status IN ('active', 'passive'));
