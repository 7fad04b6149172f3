//! Dead batches. A batch that cannot be applied (a fatal error, or a transient one past the
//! delivery limit, or a message the broker dead-lettered) is marked `dead` in one
//! transaction: each of its rows fails with `batch_failed` and the reason, and the import's
//! counters move on so it finishes instead of hanging. An operator can replay dead batches:
//! their results are taken back and they go through the outbox again.

use super::{BatchRef, Counts, progress};
use crate::intake::notify_outbox;
use crate::validate::{ErrorCode, RowIssue};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Marks a pending batch dead; returns false when it was not pending (done, dead, or unknown).
pub async fn mark_dead(pool: &PgPool, batch: BatchRef, reason: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, i32, i32)> = sqlx::query_as(
        "SELECT tenant_id, first_row, row_count FROM import_batches
         WHERE import_id = $1 AND batch_no = $2 AND state = 'pending' FOR UPDATE",
    )
    .bind(batch.import_id)
    .bind(batch.batch_no)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((tenant_id, first_row, row_count)) = row else {
        return Ok(false);
    };
    let issue = RowIssue::new(
        "",
        ErrorCode::BatchFailed,
        format!("the batch holding this row could not be applied: {reason}"),
    );
    let errors = serde_json::to_string(&[issue]).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO row_results (import_id, tenant_id, row_index, status, errors)
         SELECT $1, $2, i, 'failed', $5::jsonb FROM generate_series($3, $3 + $4 - 1) AS i",
    )
    .bind(batch.import_id)
    .bind(tenant_id)
    .bind(first_row)
    .bind(row_count)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;
    let counts = Counts {
        failed: row_count,
        ..Counts::default()
    };
    progress::record_batch(&mut tx, batch.import_id, tenant_id, counts, true).await?;
    sqlx::query(
        "UPDATE import_batches SET state = 'dead', dead_reason = $3, dead_at = now()
         WHERE import_id = $1 AND batch_no = $2",
    )
    .bind(batch.import_id)
    .bind(batch.batch_no)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::error!(import_id = %batch.import_id, batch_no = batch.batch_no, %tenant_id, rows = row_count, reason, "batch is dead; its rows failed");
    Ok(true)
}

/// A dead batch, as `dlq list` shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DeadBatch {
    pub import_id: Uuid,
    pub batch_no: i32,
    pub tenant: String,
    pub rows: i32,
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub dead_at: Option<OffsetDateTime>,
}

/// Every dead batch, oldest first (optionally of one import).
pub async fn list(pool: &PgPool, import_id: Option<Uuid>) -> Result<Vec<DeadBatch>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.import_id, b.batch_no, t.name AS tenant, b.row_count AS rows, b.dead_reason AS reason, b.dead_at
         FROM import_batches b JOIN tenants t ON t.id = b.tenant_id
         WHERE b.state = 'dead' AND ($1::uuid IS NULL OR b.import_id = $1)
         ORDER BY b.dead_at, b.import_id, b.batch_no",
    )
    .bind(import_id)
    .fetch_all(pool)
    .await
}

/// Sends dead batches through the pipeline again: their `batch_failed` results and counts
/// are taken back, their import is `processing` again, and the relay publishes them.
/// Returns how many batches were replayed.
pub async fn replay(pool: &PgPool, import_id: Option<Uuid>) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let dead: Vec<(Uuid, i32, Uuid, i32, i32)> = sqlx::query_as(
        "SELECT import_id, batch_no, tenant_id, first_row, row_count FROM import_batches
         WHERE state = 'dead' AND ($1::uuid IS NULL OR import_id = $1)
         ORDER BY import_id, batch_no FOR UPDATE",
    )
    .bind(import_id)
    .fetch_all(&mut *tx)
    .await?;
    for (import_id, batch_no, tenant_id, first_row, row_count) in &dead {
        sqlx::query(
            "DELETE FROM row_results WHERE import_id = $1 AND tenant_id = $2
             AND row_index >= $3 AND row_index < $3 + $4",
        )
        .bind(import_id)
        .bind(tenant_id)
        .bind(first_row)
        .bind(row_count)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE imports SET processed_rows = processed_rows - $3, failed = failed - $3,
                 batches_done = batches_done - 1, batches_dead = batches_dead - 1,
                 status = 'processing', finished_at = NULL
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(import_id)
        .bind(tenant_id)
        .bind(row_count)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE import_batches SET state = 'pending', published_at = NULL, dead_reason = NULL, dead_at = NULL
             WHERE import_id = $1 AND batch_no = $2",
        )
        .bind(import_id)
        .bind(batch_no)
        .execute(&mut *tx)
        .await?;
    }
    notify_outbox(&mut tx).await?;
    tx.commit().await?;
    Ok(dead.len())
}
