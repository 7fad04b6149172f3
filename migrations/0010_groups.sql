-- Groups (audiences) and their members. A group is created on first use (an import that adds
-- to it); its member count is kept without counting: every change to a membership of a live
-- contact, or to the deleted state of a member, appends a delta in the same transaction
-- (insert-only, so concurrent batches never wait on a group row), and the maintenance task
-- folds the deltas into groups.members every second. GET /api/v1/groups reads
-- members + the deltas not folded yet: exact at any moment, a handful of rows per group.
CREATE TABLE groups (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL,
    -- Members that are not deleted, as of the last fold.
    members    bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE contact_groups (
    group_id   uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tenant_id  uuid NOT NULL,
    PRIMARY KEY (group_id, contact_id)
);
CREATE INDEX contact_groups_contact ON contact_groups (contact_id);

CREATE TABLE group_member_deltas (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    delta    bigint NOT NULL
);
CREATE INDEX group_member_deltas_group ON group_member_deltas (group_id);
