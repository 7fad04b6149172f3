//! The import's state machine, in one place: a batch that finishes (applied or dead) adds its
//! row counts to the import, and the last one moves the import to its final state.
//! `queued` → `processing` → `completed` | `completedWithErrors` | `failed` (every batch dead).

use super::Counts;
use sqlx::PgConnection;
use uuid::Uuid;

/// Adds a finished batch to its import's counters and state.
pub async fn record_batch(
    conn: &mut PgConnection,
    import_id: Uuid,
    tenant_id: Uuid,
    counts: Counts,
    dead: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE imports SET
             processed_rows = processed_rows + $3,
             created = created + $4, updated = updated + $5, skipped = skipped + $6, failed = failed + $7,
             batches_done = batches_done + 1,
             batches_dead = batches_dead + $8,
             started_at = COALESCE(started_at, now()),
             status = CASE
                 WHEN status IN ('cancelled', 'failed') THEN status
                 WHEN batches_done + 1 < batch_count THEN 'processing'
                 WHEN batches_dead + $8 >= batch_count THEN 'failed'
                 WHEN failed + $7 > 0 THEN 'completedWithErrors'
                 ELSE 'completed' END,
             finished_at = CASE WHEN batches_done + 1 >= batch_count THEN now() ELSE finished_at END
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(counts.total())
    .bind(counts.created)
    .bind(counts.updated)
    .bind(counts.skipped)
    .bind(counts.failed)
    .bind(i32::from(dead))
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends an import `failed` with `reason`, whatever its counters say (`allOrNothing` with a
/// failed row).
pub async fn fail(
    conn: &mut PgConnection,
    import_id: Uuid,
    tenant_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE imports SET status = 'failed', error = $3, finished_at = coalesce(finished_at, now())
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// What cancelling an import found.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// Cancelled now; this many rows of batches not yet started were skipped.
    Now { skipped_rows: i64 },
    /// It had already finished (or was cancelled before).
    AlreadyFinal,
    /// No such import of this tenant.
    NotFound,
}

/// Cancels an import: it turns `cancelled`, and every batch not yet applied is done at once
/// with its rows `skipped` (warning `cancelled`). A batch being applied right now finishes
/// first; a batch of a cancelled import that a worker meets later is skipped the same way.
pub async fn cancel(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
) -> Result<Cancelled, sqlx::Error> {
    use crate::validate::{ErrorCode, RowIssue};
    let mut tx = pool.begin().await?;
    // Locks in the worker's order, batch rows before the import row, so the two never
    // deadlock. A batch a worker is applying is waited for; once it is done it is left out.
    let idle: Vec<(i32, i32, i32)> = sqlx::query_as(
        "SELECT batch_no, first_row, row_count FROM import_batches
         WHERE import_id = $1 AND tenant_id = $2 AND state = 'pending'
         ORDER BY batch_no FOR UPDATE",
    )
    .bind(import_id)
    .bind(tenant_id)
    .fetch_all(&mut *tx)
    .await?;
    let updated: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE imports SET status = 'cancelled'
         WHERE id = $1 AND tenant_id = $2 AND status IN ('queued', 'processing') RETURNING id",
    )
    .bind(import_id)
    .bind(tenant_id)
    .fetch_optional(&mut *tx)
    .await?;
    if updated.is_none() {
        let exists: Option<(Uuid,)> =
            sqlx::query_as("SELECT id FROM imports WHERE id = $1 AND tenant_id = $2")
                .bind(import_id)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
        return Ok(if exists.is_some() {
            Cancelled::AlreadyFinal
        } else {
            Cancelled::NotFound
        });
    }
    let batch_nos: Vec<i32> = idle.iter().map(|b| b.0).collect();
    let rows: i64 = idle.iter().map(|b| i64::from(b.2)).sum();
    let warning = serde_json::to_string(&[RowIssue::new(
        "",
        ErrorCode::Cancelled,
        "the import was cancelled before this row was applied",
    )])
    .unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO row_results (import_id, tenant_id, row_index, status, warnings)
         SELECT b.import_id, b.tenant_id, g.i, 'skipped', $4::jsonb
         FROM import_batches b, generate_series(b.first_row, b.first_row + b.row_count - 1) AS g(i)
         WHERE b.import_id = $1 AND b.tenant_id = $2 AND b.batch_no = ANY($3)",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(&batch_nos)
    .bind(&warning)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE import_batches SET state = 'done', done_at = now()
         WHERE import_id = $1 AND tenant_id = $2 AND batch_no = ANY($3)",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(&batch_nos)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE imports SET processed_rows = processed_rows + $3, skipped = skipped + $3,
             batches_done = batches_done + $4,
             finished_at = CASE WHEN batches_done + $4 >= batch_count THEN now() ELSE finished_at END
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(rows as i32)
    .bind(batch_nos.len() as i32)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Cancelled::Now { skipped_rows: rows })
}
