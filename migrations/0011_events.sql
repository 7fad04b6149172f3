-- Events for new contacts (eventKeyForNewContacts): one row per created contact, written in
-- the batch's transaction (so exactly once per contact), published by the relay to the topic
-- exchange {prefix}.events with publisher confirms and then marked. A crash between the two
-- publishes the row again, with the same id: consumers dedupe on eventId.
CREATE TABLE event_outbox (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    import_id    uuid NOT NULL,
    routing_key  text NOT NULL,
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX event_outbox_unpublished ON event_outbox (created_at) WHERE published_at IS NULL;
CREATE INDEX event_outbox_published ON event_outbox (published_at) WHERE published_at IS NOT NULL;
