//! The relay's statements on the batch outbox: which tenants have batches waiting, how many
//! each has in flight (published, not yet done), which batches to publish now, and marking
//! them published — all in the relay pass's transaction, behind one advisory lock so that two
//! relays never decide on the same counts. Also the sweep that finds lost messages.

use super::batches::BatchRef;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// Key of the advisory lock that lets one relay pass run at a time ("relay").
const RELAY_LOCK: i64 = 0x0072_656c_6179;

/// Takes the relay lock for this transaction; false while another relay's pass holds it.
pub async fn try_lock_pass(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(conn)
        .await
}

/// The waiting tenants, oldest waiting batch first, each with how many batches it has waiting
/// (counted up to $1: no more can be granted in one pass). A loose index scan over the tenants
/// with unpublished batches, so its cost follows the tenants waiting, not the batches.
const WAITING: &str = "
WITH RECURSIVE t AS (
    (SELECT tenant_id FROM import_batches
     WHERE published_at IS NULL AND state = 'pending' ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT b.tenant_id FROM import_batches b
            WHERE b.published_at IS NULL AND b.state = 'pending' AND b.tenant_id > t.tenant_id
            ORDER BY b.tenant_id LIMIT 1)
    FROM t WHERE t.tenant_id IS NOT NULL
)
SELECT t.tenant_id, w.n FROM t
CROSS JOIN LATERAL (
    SELECT min(created_at) AS oldest, count(*) AS n FROM (
        SELECT created_at FROM import_batches b
        WHERE b.tenant_id = t.tenant_id AND b.published_at IS NULL AND b.state = 'pending'
        ORDER BY created_at LIMIT $1) x
) w
WHERE t.tenant_id IS NOT NULL
ORDER BY w.oldest, t.tenant_id";

/// Tenants with unpublished pending batches, oldest waiting first, with how many (up to
/// `cap`).
pub async fn waiting(conn: &mut PgConnection, cap: i64) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(WAITING).bind(cap).fetch_all(conn).await
}

/// Batches published and not yet done, per tenant.
pub async fn in_flight(conn: &mut PgConnection) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, count(*) FROM import_batches
         WHERE state = 'pending' AND published_at IS NOT NULL GROUP BY tenant_id",
    )
    .fetch_all(conn)
    .await
}

/// Locks up to `limit` of the tenant's unpublished batches, its oldest import's first.
pub async fn claim(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    limit: i64,
) -> Result<Vec<BatchRef>, sqlx::Error> {
    let rows: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT import_id, batch_no FROM import_batches
         WHERE tenant_id = $1 AND published_at IS NULL AND state = 'pending'
         ORDER BY created_at, import_id, batch_no
         LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(import_id, batch_no)| BatchRef {
            import_id,
            batch_no,
            tenant_id: Some(tenant_id),
        })
        .collect())
}

/// Marks batches published (the broker confirmed them).
pub async fn mark_published(
    conn: &mut PgConnection,
    batches: &[BatchRef],
) -> Result<(), sqlx::Error> {
    let imports: Vec<Uuid> = batches.iter().map(|b| b.import_id).collect();
    let numbers: Vec<i32> = batches.iter().map(|b| b.batch_no).collect();
    sqlx::query(
        "UPDATE import_batches b SET published_at = now(), publish_count = publish_count + 1
         FROM UNNEST($1::uuid[], $2::int[]) AS u(import_id, batch_no)
         WHERE b.import_id = u.import_id AND b.batch_no = u.batch_no",
    )
    .bind(&imports)
    .bind(&numbers)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts back in the outbox up to 1000 batches published more than `after` ago and still
/// pending, that no worker holds now (their message was lost). Returns how many.
pub async fn unpublish_lost(pool: &PgPool, after: Duration) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE import_batches SET published_at = NULL
         WHERE (import_id, batch_no) IN (
             SELECT import_id, batch_no FROM import_batches
             WHERE state = 'pending' AND published_at < now() - make_interval(secs => $1)
             LIMIT 1000 FOR UPDATE SKIP LOCKED)",
    )
    .bind(after.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}
