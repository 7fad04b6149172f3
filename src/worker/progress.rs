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
