//! Groups and memberships. Member counts are kept as insert-only deltas folded every second
//! (migration 0010 says why); every statement here is scoped by tenant.

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// A group as `GET /api/v1/groups` shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub name: String,
    /// Its contacts that are not deleted.
    pub members: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Every group of the tenant, by name, with exact member counts.
pub async fn list(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<GroupView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.name, g.members + coalesce(
                    (SELECT sum(d.delta) FROM group_member_deltas d WHERE d.group_id = g.id), 0
                )::int8 AS members,
                g.created_at
         FROM groups g WHERE g.tenant_id = $1 ORDER BY g.name",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Creates the groups of these names the tenant does not have yet (in a fixed order, so two
/// intakes naming the same new groups cannot deadlock).
pub async fn ensure(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    names: &[String],
) -> Result<(), sqlx::Error> {
    if names.is_empty() {
        return Ok(());
    }
    let mut names = names.to_vec();
    names.sort_unstable();
    names.dedup();
    let ids: Vec<Uuid> = names.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO groups (id, tenant_id, name)
         SELECT u.id, $1, u.name FROM UNNEST($2::uuid[], $3::text[]) AS u(id, name)
         ORDER BY u.name
         ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(&ids)
    .bind(&names)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds live contacts to the named groups (those that exist); counts the new memberships.
pub async fn add_members(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    names: &[String],
    contacts: &[Uuid],
) -> Result<(), sqlx::Error> {
    if names.is_empty() || contacts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH g AS (SELECT id FROM groups WHERE tenant_id = $1 AND name = ANY($2)),
              added AS (
                  INSERT INTO contact_groups (group_id, contact_id, tenant_id)
                  SELECT g.id, c.id, $1 FROM g, UNNEST($3::uuid[]) AS c(id)
                  ON CONFLICT DO NOTHING
                  RETURNING group_id)
         INSERT INTO group_member_deltas (group_id, delta)
         SELECT group_id, count(*) FROM added GROUP BY group_id",
    )
    .bind(tenant_id)
    .bind(names)
    .bind(contacts)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes live contacts from the named groups; counts the memberships removed.
pub async fn remove_members(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    names: &[String],
    contacts: &[Uuid],
) -> Result<(), sqlx::Error> {
    if names.is_empty() || contacts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH g AS (SELECT id FROM groups WHERE tenant_id = $1 AND name = ANY($2)),
              removed AS (
                  DELETE FROM contact_groups cg USING g
                  WHERE cg.group_id = g.id AND cg.tenant_id = $1 AND cg.contact_id = ANY($3)
                  RETURNING cg.group_id)
         INSERT INTO group_member_deltas (group_id, delta)
         SELECT group_id, -count(*) FROM removed GROUP BY group_id",
    )
    .bind(tenant_id)
    .bind(names)
    .bind(contacts)
    .execute(conn)
    .await?;
    Ok(())
}

/// These contacts turned deleted (`delta` -1) or live again (+1): every group they are in
/// gains or loses them as members.
pub async fn members_changed_state(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    contacts: &[Uuid],
    delta: i64,
) -> Result<(), sqlx::Error> {
    if contacts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO group_member_deltas (group_id, delta)
         SELECT group_id, $3 * count(*) FROM contact_groups
         WHERE tenant_id = $1 AND contact_id = ANY($2)
         GROUP BY group_id",
    )
    .bind(tenant_id)
    .bind(contacts)
    .bind(delta)
    .execute(conn)
    .await?;
    Ok(())
}

/// Folds the deltas into the groups' counts, in one statement (a concurrent fold skips the
/// rows this one deleted, so nothing is counted twice). Returns how many deltas it folded.
pub async fn fold_counts(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let (folded,): (i64,) = sqlx::query_as(
        "WITH moved AS (DELETE FROM group_member_deltas RETURNING group_id, delta),
              sums AS (SELECT group_id, sum(delta) AS delta, count(*) AS n FROM moved GROUP BY group_id),
              _ AS (UPDATE groups g SET members = g.members + sums.delta FROM sums WHERE g.id = sums.group_id)
         SELECT coalesce(sum(n), 0)::int8 FROM sums",
    )
    .fetch_one(pool)
    .await?;
    Ok(folded as u64)
}
