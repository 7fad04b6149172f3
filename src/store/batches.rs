//! Stored batches, which are also the outbox. A batch is written by the intake (`pending`, or
//! `held` while its CSV file arrives), published by the relay (a reference, never the rows),
//! locked and applied by a worker (`done`), or recorded `dead` when it can never be applied.
//! Every statement on `import_batches` and `duplicate_rows` is here.

use super::states::{BatchState, ImportState, RowStatus};
use super::{imports, packed, row_results};
use crate::validate::{ErrorCode, RowIssue};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use std::borrow::Cow;
use time::OffsetDateTime;
use uuid::Uuid;

/// The channel the relays listen on to hear of new batches at once.
pub const OUTBOX_CHANNEL: &str = "contact_import_outbox";

/// Wakes every relay that listens; PostgreSQL delivers it when the transaction commits.
pub async fn notify_outbox(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A batch's identity, and the body of its broker message: a reference, never the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRef {
    pub import_id: Uuid,
    pub batch_no: i32,
    /// For log lines before the batch is read (absent in messages of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
}

/// A batch as the JSON intake stores it: its rows as sent (a JSON array), packed.
pub struct NewBatch {
    pub batch_no: i32,
    pub first_row: i32,
    pub row_count: i32,
    pub(super) payload: Vec<u8>,
}

impl NewBatch {
    /// The batch of `row_count` rows from `first_row`, `contacts` their JSON array. Packing is
    /// a millisecond of CPU for a thousand rows: build batches off the I/O threads.
    pub fn new(batch_no: i32, first_row: i32, row_count: i32, contacts: &[u8]) -> Self {
        Self {
            batch_no,
            first_row,
            row_count,
            payload: packed::pack(contacts),
        }
    }
}

/// A batch of a CSV file: its rows as contacts, the cells as read (for the results file), and
/// each row's dedupe key (duplicates are found once the whole file is stored).
pub struct HeldBatch {
    pub batch_no: i32,
    pub first_row: i32,
    pub row_count: i32,
    payload: Vec<u8>,
    raw: Vec<u8>,
    pub keys: Vec<Option<String>>,
}

impl HeldBatch {
    /// The batch of `row_count` rows from `first_row`: `contacts` their JSON array, `cells`
    /// the file's cells as a JSON array of arrays, `keys` each row's dedupe key. Both arrays
    /// are packed here (see `NewBatch::new`).
    pub fn new(
        batch_no: i32,
        first_row: i32,
        row_count: i32,
        contacts: &[u8],
        cells: &[u8],
        keys: Vec<Option<String>>,
    ) -> Self {
        Self {
            batch_no,
            first_row,
            row_count,
            payload: packed::pack(contacts),
            raw: packed::pack(cells),
            keys,
        }
    }
}

/// Stores one batch of a CSV file as it arrives, `held`: the relay does not see it yet.
pub async fn insert_held(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    batch: &HeldBatch,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_batches (import_id, tenant_id, batch_no, first_row, row_count, payload, raw, dedupe_keys, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held')",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(batch.batch_no)
    .bind(batch.first_row)
    .bind(batch.row_count)
    .bind(&batch.payload)
    .bind(&batch.raw)
    .bind(&batch.keys)
    .execute(pool)
    .await?;
    Ok(())
}

/// Copies every batch of the import `from` (its payloads and cells as stored) and its
/// duplicate rows to the import `to`, as `pending` batches: a dry run's commit.
pub async fn copy_all(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    from: Uuid,
    to: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_batches (import_id, tenant_id, batch_no, first_row, row_count, payload, raw)
         SELECT $3, tenant_id, batch_no, first_row, row_count, payload, raw
         FROM import_batches WHERE import_id = $2 AND tenant_id = $1",
    )
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO duplicate_rows (import_id, row_index)
         SELECT $3, d.row_index FROM duplicate_rows d
         WHERE d.import_id = $2 AND EXISTS (SELECT 1 FROM imports i WHERE i.id = $2 AND i.tenant_id = $1)",
    )
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .execute(conn)
    .await?;
    Ok(())
}

/// A whole CSV file is stored: the rows whose dedupe key another row shares are marked (over
/// every batch's keys), and the held batches become `pending`. Returns how many batches.
pub(super) async fn release_held(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO duplicate_rows (import_id, row_index)
         WITH k AS (
             SELECT b.first_row + o.n::int - 1 AS row_index, o.key
             FROM import_batches b, unnest(b.dedupe_keys) WITH ORDINALITY AS o(key, n)
             WHERE b.import_id = $1 AND b.tenant_id = $2 AND o.key IS NOT NULL)
         SELECT $1, row_index FROM k
         WHERE key IN (SELECT key FROM k GROUP BY key HAVING count(*) > 1)",
    )
    .bind(import_id)
    .bind(tenant_id)
    .execute(&mut *conn)
    .await?;
    let released = sqlx::query(
        "UPDATE import_batches SET state = 'pending', dedupe_keys = NULL
         WHERE import_id = $1 AND tenant_id = $2 AND state = 'held'",
    )
    .bind(import_id)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(released.rows_affected())
}

/// Deletes every stored batch of an import (an upload that did not complete).
pub(super) async fn delete_all(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM import_batches WHERE import_id = $1 AND tenant_id = $2")
        .bind(import_id)
        .bind(tenant_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A batch as a worker applies it, with what its import says: locked in the worker's
/// transaction (`lock`), or read ahead of it without a lock (`read_ahead`).
#[derive(Debug, sqlx::FromRow)]
pub struct BatchToApply {
    pub state: BatchState,
    pub import_status: ImportState,
    pub tenant_id: Uuid,
    pub first_row: i32,
    pub row_count: i32,
    /// The rows as stored (`packed`; read them with `rows`).
    pub payload: Option<Vec<u8>>,
    pub options: serde_json::Value,
    /// Its rows marked as duplicates (`duplicate_rows`), in order.
    pub duplicates: Vec<i32>,
    /// Every contact the tenant has was created by this import, and no row of it applied so
    /// far updated or skipped a stored contact: as in a first import, its rows are likely all
    /// new (a hint, read without a lock; `contact_counts` and its deltas against the import's
    /// own count).
    pub all_new_so_far: bool,
}

impl BatchToApply {
    /// Its rows: the JSON array of contacts as it was stored (`None`: there is none).
    pub fn rows(&self) -> Option<std::io::Result<Cow<'_, [u8]>>> {
        self.payload.as_deref().map(packed::unpack)
    }
}

/// The columns of a `BatchToApply`, of `import_batches b JOIN imports i`.
const TO_APPLY: &str = "b.state, i.status AS import_status, b.tenant_id, b.first_row, b.row_count, b.payload, i.options,
     ARRAY(SELECT d.row_index FROM duplicate_rows d
           WHERE d.import_id = b.import_id AND d.row_index >= b.first_row
             AND d.row_index < b.first_row + b.row_count
           ORDER BY d.row_index) AS duplicates,
     i.updated + i.skipped = 0
       AND i.created >= coalesce((SELECT n.total FROM contact_counts n WHERE n.tenant_id = b.tenant_id), 0)
                      + coalesce((SELECT sum(d.total) FROM contact_count_deltas d WHERE d.tenant_id = b.tenant_id), 0)
       AS all_new_so_far";

/// Starts applying a batch, in a transaction `store::begin_by_key` opened: locks the batch
/// row (`None`: no such batch) and reads its rows marked as duplicates.
pub async fn lock(
    conn: &mut PgConnection,
    batch: BatchRef,
) -> Result<Option<BatchToApply>, sqlx::Error> {
    let sql = format!(
        "SELECT {TO_APPLY}
         FROM import_batches b JOIN imports i ON i.id = b.import_id AND i.tenant_id = b.tenant_id
         WHERE b.import_id = $1 AND b.batch_no = $2
         FOR UPDATE OF b"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(batch.import_id)
        .bind(batch.batch_no)
        .fetch_optional(conn)
        .await
}

/// Reads a batch as `lock` does, without locking it or changing the session: what a worker
/// validates ahead of the batch's transaction (`worker::prepare`), to be checked against what
/// `lock` then reads.
pub async fn read_ahead<'e, E>(
    executor: E,
    batch: BatchRef,
) -> Result<Option<BatchToApply>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let sql = format!(
        "SELECT {TO_APPLY}
         FROM import_batches b JOIN imports i ON i.id = b.import_id AND i.tenant_id = b.tenant_id
         WHERE b.import_id = $1 AND b.batch_no = $2"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(batch.import_id)
        .bind(batch.batch_no)
        .fetch_optional(executor)
        .await
}

/// Marks an applied batch done, in its transaction.
pub async fn mark_done(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    batch: BatchRef,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_batches SET state = 'done', done_at = now()
         WHERE import_id = $1 AND batch_no = $2 AND tenant_id = $3",
    )
    .bind(batch.import_id)
    .bind(batch.batch_no)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A batch not yet applied, as cancelling finds it.
pub(super) struct Idle {
    pub batch_no: i32,
    pub row_count: i32,
}

/// Locks the import's pending batches in the worker's order (batch rows before the import
/// row, so the two never deadlock); a batch being applied is waited for.
pub(super) async fn lock_pending(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
) -> Result<Vec<Idle>, sqlx::Error> {
    let rows: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT batch_no, row_count FROM import_batches
         WHERE import_id = $1 AND tenant_id = $2 AND state = 'pending'
         ORDER BY batch_no FOR UPDATE",
    )
    .bind(import_id)
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(batch_no, row_count)| Idle {
            batch_no,
            row_count,
        })
        .collect())
}

/// Ends these batches of an import without applying them: each row is `skipped` with
/// `warning`, and the batches are done.
pub(super) async fn skip(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    batch_nos: &[i32],
    warning: &RowIssue,
) -> Result<(), sqlx::Error> {
    let warnings = row_results::issues_json(std::slice::from_ref(warning));
    row_results::insert_same(
        &mut *conn,
        tenant_id,
        import_id,
        batch_nos,
        RowStatus::Skipped,
        None,
        warnings,
    )
    .await?;
    sqlx::query(
        "UPDATE import_batches SET state = 'done', done_at = now()
         WHERE import_id = $1 AND tenant_id = $2 AND batch_no = ANY($3)",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(batch_nos)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a pending batch dead, in one transaction: each of its rows fails with `batch_failed`
/// and the reason, and its import's counters move on so that it finishes instead of hanging.
/// Returns the tenant and the rows failed, or `None` when it was not pending (done, dead, or
/// unknown).
pub async fn mark_dead(
    pool: &PgPool,
    batch: BatchRef,
    reason: &str,
) -> Result<Option<(Uuid, i32)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, i32)> = sqlx::query_as(
        "SELECT tenant_id, row_count FROM import_batches
         WHERE import_id = $1 AND batch_no = $2 AND state = 'pending' FOR UPDATE",
    )
    .bind(batch.import_id)
    .bind(batch.batch_no)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((tenant_id, row_count)) = row else {
        return Ok(None);
    };
    let issue = RowIssue::new(
        "",
        ErrorCode::BatchFailed,
        format!("the batch holding this row could not be applied: {reason}"),
    );
    row_results::insert_same(
        &mut tx,
        tenant_id,
        batch.import_id,
        &[batch.batch_no],
        RowStatus::Failed,
        row_results::issues_json(&[issue]),
        None,
    )
    .await?;
    let counts = imports::Counts {
        failed: row_count,
        ..imports::Counts::default()
    };
    imports::record_batch(&mut tx, batch.import_id, tenant_id, counts, true).await?;
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
    Ok(Some((tenant_id, row_count)))
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

/// Every dead batch, oldest first (optionally of one import), across tenants: the operator's
/// `dlq list`.
pub async fn list_dead(
    pool: &PgPool,
    import_id: Option<Uuid>,
) -> Result<Vec<DeadBatch>, sqlx::Error> {
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

/// Sends dead batches through the pipeline again: their `batch_failed` results and counts are
/// taken back, their import is `processing` again, and the relay publishes them. Returns how
/// many batches were replayed.
pub async fn replay_dead(pool: &PgPool, import_id: Option<Uuid>) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let dead: Vec<(Uuid, i32, Uuid, i32, i32)> = sqlx::query_as(
        "SELECT import_id, batch_no, tenant_id, first_row, row_count FROM import_batches
         WHERE state = 'dead' AND ($1::uuid IS NULL OR import_id = $1)
         ORDER BY import_id, batch_no FOR UPDATE",
    )
    .bind(import_id)
    .fetch_all(&mut *tx)
    .await?;
    for &(import_id, batch_no, tenant_id, first_row, row_count) in &dead {
        row_results::delete_batch(&mut tx, tenant_id, import_id, first_row).await?;
        imports::take_back_dead_batch(&mut tx, tenant_id, import_id, row_count).await?;
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

/// A batch's rows as stored, for the results files.
#[derive(sqlx::FromRow)]
pub struct StoredRows {
    pub first_row: i32,
    pub row_count: i32,
    /// A CSV file's cells as read (a JSON array of arrays of strings), packed.
    raw: Option<Vec<u8>>,
    /// The contacts (a JSON array), packed.
    payload: Option<Vec<u8>>,
}

impl StoredRows {
    /// The file's cells, a JSON array of arrays of strings (`None`: not a file's batch, or
    /// unreadable).
    pub fn cells(&self) -> Option<Cow<'_, [u8]>> {
        self.raw.as_deref().and_then(|r| packed::unpack(r).ok())
    }

    /// The contacts, a JSON array (`None`: none stored, or unreadable).
    pub fn contacts(&self) -> Option<Cow<'_, [u8]>> {
        self.payload.as_deref().and_then(|p| packed::unpack(p).ok())
    }
}

/// One batch of the tenant's import; `None` past the last.
pub async fn stored_rows(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    batch_no: i32,
) -> Result<Option<StoredRows>, sqlx::Error> {
    sqlx::query_as(
        "SELECT first_row, row_count, raw, payload FROM import_batches
         WHERE import_id = $1 AND tenant_id = $2 AND batch_no = $3",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(batch_no)
    .fetch_optional(pool)
    .await
}
