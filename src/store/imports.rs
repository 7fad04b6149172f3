//! Imports and their state machine, in one place: created by the intake (`queued`), moved by
//! every batch that finishes (applied or dead: its row counts are added, and the last one sets
//! the final state), cancelled, failed, and read back as the status body and the list.
//! `queued` → `processing` → `completed` | `completedWithErrors` | `failed` (every batch
//! dead); `cancelled` from either of the first two.

use super::batches::{self, NewBatch};
use super::callbacks::{self, CallbackView};
use super::states::{ImportState, Source};
use crate::import::ImportOptions;
use crate::validate::{ErrorCode, RowIssue};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// `GET /api/v1/imports/{id}` and the items of the list.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportStatus {
    #[serde(rename = "asyncSessionId")]
    pub id: Uuid,
    pub source: Source,
    pub status: ImportState,
    pub total_rows: i32,
    pub processed_rows: i32,
    pub created: i32,
    pub updated: i32,
    pub skipped: i32,
    pub failed: i32,
    /// `processedRows / totalRows`, 0.0 to 1.0.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub progress: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The options the rows are applied with (defaults filled in).
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Why the import failed as a whole, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub error: Option<String>,
    /// When its rows and results were deleted under the retention period (then they answer
    /// 410 Gone); absent until then.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(required = false)]
    pub purged_at: Option<OffsetDateTime>,
    /// The import was a dry run: its rows have the outcomes they would have; nothing changed.
    pub dry_run: bool,
    /// The dry run whose rows this import applies (`POST /api/v1/imports/{id}/commit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reviewed_in: Option<Uuid>,
    /// A dry run's commit: the import that applies its rows, once committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub committed_as: Option<Uuid>,
    /// The completion callback's delivery, when `callbackUrl` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(json(nullable))]
    #[schema(required = false)]
    pub callback: Option<CallbackView>,
}

const STATUS_COLUMNS: &str = "id, source, status, total_rows, processed_rows, created, updated, skipped, failed,
    CASE WHEN total_rows = 0 THEN 1.0::float8 ELSE processed_rows::float8 / total_rows END AS progress,
    created_at, started_at, finished_at, options, error, purged_at,
    coalesce((options->>'dryRun')::boolean, false) AS dry_run, reviewed_in,
    (SELECT r.id FROM imports r WHERE r.tenant_id = imports.tenant_id AND r.reviewed_in = imports.id)
        AS committed_as,
    (SELECT json_build_object('url', c.url, 'state', c.state, 'attempts', c.attempts,
                              'lastError', c.last_error)
     FROM import_callbacks c WHERE c.import_id = imports.id) AS callback";

/// What storing an import does besides its rows, in the intake's transaction (after the
/// import's own row): the groups it names are created on first use, and its completion
/// callback is stored. A dry run does neither.
pub async fn prepare(
    conn: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    options: &ImportOptions,
) -> Result<(), sqlx::Error> {
    if options.dry_run {
        return Ok(());
    }
    super::groups::ensure(&mut *conn, tenant_id, &options.group_names).await?;
    if let Some(url) = &options.callback_url {
        callbacks::insert(conn, tenant_id, import_id, url).await?;
    }
    Ok(())
}

/// One import of the tenant.
pub async fn status(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ImportStatus>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {STATUS_COLUMNS} FROM imports WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The tenant's imports, newest first, `limit` of them created before the import `before`.
pub async fn list(
    pool: &PgPool,
    tenant_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ImportStatus>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {STATUS_COLUMNS} FROM imports
         WHERE tenant_id = $1
           AND ($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM imports WHERE tenant_id = $1 AND id = $2))
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )))
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An import about to be stored.
pub struct NewImport<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub source: Source,
    pub options: &'a ImportOptions,
    pub total_rows: i32,
    pub batch_count: i32,
}

/// An `Idempotency-Key` and the hash of the body it came with.
pub struct Idempotency {
    pub key: String,
    pub body_hash: Vec<u8>,
}

fn options_json(options: &ImportOptions) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::to_value(options).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The first import stored under an idempotency key.
pub struct FirstWithKey {
    pub id: Uuid,
    pub body_hash: Option<Vec<u8>>,
    pub total_rows: i32,
}

/// What storing a JSON import found.
pub enum Stored {
    /// Stored now, with its batches and duplicate rows.
    New,
    /// The idempotency key was used before (`None`: its import is not committed yet).
    KeyUsed(Option<FirstWithKey>),
}

/// Stores a JSON import, its batches (the outbox) and its duplicate rows in one transaction,
/// unless its idempotency key was used before. Without groups to create or a callback to
/// register, that transaction is one statement: one round trip between the request and its
/// 202, where a transaction of statements would wait for the database six times (each wait a
/// turn in the run queue when the workers keep the cores busy).
pub async fn store_json(
    pool: &PgPool,
    import: &NewImport<'_>,
    batches: &[NewBatch],
    duplicates: &[i32],
    idempotency: Option<&Idempotency>,
) -> Result<Stored, sqlx::Error> {
    let options = import.options;
    let stored =
        if options.dry_run || (options.group_names.is_empty() && options.callback_url.is_none()) {
            insert_json(pool, import, batches, duplicates, idempotency).await?
        } else {
            let mut tx = pool.begin().await?;
            let stored = insert_json(&mut *tx, import, batches, duplicates, idempotency).await?;
            if stored {
                prepare(&mut tx, import.tenant_id, import.id, options).await?;
                tx.commit().await?;
            }
            stored
        };
    if stored {
        return Ok(Stored::New);
    }
    let Some(idempotency) = idempotency else {
        return Err(sqlx::Error::Protocol(
            "an import without an idempotency key conflicted".into(),
        ));
    };
    Ok(Stored::KeyUsed(
        first_with_key(pool, import.tenant_id, &idempotency.key).await?,
    ))
}

/// The statement of `store_json`: the import, then (only if it was inserted) its batches,
/// `pending`, and its duplicate rows. False when the idempotency key was taken: then nothing
/// is written.
///
/// It sends no `NOTIFY`: PostgreSQL serialises the commits of notifying transactions, WAL
/// flush included (one lock for the database's notification queue), so concurrent requests
/// would each wait for the one before to reach the disk. Every process that takes requests
/// runs a relay, and the API wakes its own once the import is stored.
async fn insert_json<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    import: &NewImport<'_>,
    batches: &[NewBatch],
    duplicates: &[i32],
    idempotency: Option<&Idempotency>,
) -> Result<bool, sqlx::Error> {
    let batch_no: Vec<i32> = batches.iter().map(|b| b.batch_no).collect();
    let first_row: Vec<i32> = batches.iter().map(|b| b.first_row).collect();
    let row_count: Vec<i32> = batches.iter().map(|b| b.row_count).collect();
    let payload: Vec<&[u8]> = batches.iter().map(|b| b.payload.as_slice()).collect();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "WITH import AS (
             INSERT INTO imports (id, tenant_id, source, status, options, total_rows, batch_count, idempotency_key, request_hash)
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING id
         ), pending AS (
             INSERT INTO import_batches (import_id, tenant_id, batch_no, first_row, row_count, payload)
             SELECT i.id, $2, u.batch_no, u.first_row, u.row_count, u.payload
             FROM import i, UNNEST($9::int[], $10::int[], $11::int[], $12::bytea[])
                 AS u(batch_no, first_row, row_count, payload)
         ), duplicates AS (
             INSERT INTO duplicate_rows (import_id, row_index)
             SELECT i.id, d.row_index FROM import i, UNNEST($13::int[]) AS d(row_index)
         )
         SELECT id FROM import",
    )
    .bind(import.id)
    .bind(import.tenant_id)
    .bind(import.source)
    .bind(options_json(import.options)?)
    .bind(import.total_rows)
    .bind(import.batch_count)
    .bind(idempotency.map(|i| i.key.as_str()))
    .bind(idempotency.map(|i| i.body_hash.as_slice()))
    .bind(&batch_no)
    .bind(&first_row)
    .bind(&row_count)
    .bind(&payload)
    .bind(duplicates)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

async fn first_with_key(
    pool: &PgPool,
    tenant_id: Uuid,
    key: &str,
) -> Result<Option<FirstWithKey>, sqlx::Error> {
    let row: Option<(Uuid, Option<Vec<u8>>, i32)> = sqlx::query_as(
        "SELECT id, request_hash, total_rows FROM imports WHERE tenant_id = $1 AND idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, body_hash, total_rows)| FirstWithKey {
        id,
        body_hash,
        total_rows,
    }))
}

/// A dry run as a commit finds it.
pub struct Reviewed {
    pub status: ImportState,
    pub options: ImportOptions,
    pub purged: bool,
    /// The import that applies it, when it was committed already.
    pub committed_as: Option<Uuid>,
    pub total_rows: i32,
    /// The bytes of its stored rows.
    pub bytes: i64,
}

/// The dry run `id` of the tenant, if there is such an import (and its options read back).
pub async fn reviewed(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Reviewed>, sqlx::Error> {
    type Row = (ImportState, serde_json::Value, bool, Option<Uuid>, i32, i64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, options, purged_at IS NOT NULL,
                (SELECT r.id FROM imports r WHERE r.tenant_id = i.tenant_id AND r.reviewed_in = i.id),
                total_rows,
                (SELECT coalesce(sum(octet_length(b.payload)), 0)::int8 FROM import_batches b
                 WHERE b.tenant_id = i.tenant_id AND b.import_id = i.id)
         FROM imports i WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(
        |(status, options, purged, committed_as, total_rows, bytes)| {
            let options =
                serde_json::from_value(options).map_err(|e| sqlx::Error::Decode(e.into()))?;
            Ok(Reviewed {
                status,
                options,
                purged,
                committed_as,
                total_rows,
                bytes,
            })
        },
    )
    .transpose()
}

/// What committing a dry run did.
pub enum Commit {
    /// Stored: the new import and its batches, `pending`.
    Stored { total_rows: i32 },
    /// Another commit of the same dry run was first (or it is no finished dry run any more).
    Refused,
}

/// Stores the import `id`, with `options`, as the commit of the finished dry run
/// `reviewed_in`: its source, batches (the very payloads it reviewed), duplicate rows and
/// header are the dry run's, copied in one transaction. Once only: the unique index on
/// `reviewed_in` refuses a second.
pub async fn commit_dry_run(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
    options: &ImportOptions,
    reviewed_in: Uuid,
) -> Result<Commit, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO imports (id, tenant_id, source, status, options, total_rows, batch_count, columns, reviewed_in)
         SELECT $1, d.tenant_id, d.source, 'queued', $4, d.total_rows, d.batch_count, d.columns, d.id
         FROM imports d
         WHERE d.tenant_id = $2 AND d.id = $3 AND d.purged_at IS NULL
           AND d.status IN ('completed', 'completedWithErrors')
           AND coalesce((d.options->>'dryRun')::boolean, false)
         ON CONFLICT (tenant_id, reviewed_in) WHERE reviewed_in IS NOT NULL DO NOTHING
         RETURNING total_rows",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(reviewed_in)
    .bind(options_json(options)?)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(total_rows) = inserted else {
        tx.rollback().await?;
        return Ok(Commit::Refused);
    };
    prepare(&mut tx, tenant_id, id, options).await?;
    batches::copy_all(&mut tx, tenant_id, reviewed_in, id).await?;
    batches::notify_outbox(&mut tx).await?;
    tx.commit().await?;
    Ok(Commit::Stored { total_rows })
}

/// Creates a CSV import whose file is about to arrive (no rows, no batches yet).
pub async fn create_upload(pool: &PgPool, import: &NewImport<'_>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO imports (id, tenant_id, source, status, options, total_rows, batch_count)
         VALUES ($1, $2, $3, 'queued', $4, 0, 0)",
    )
    .bind(import.id)
    .bind(import.tenant_id)
    .bind(import.source)
    .bind(options_json(import.options)?)
    .execute(&mut *tx)
    .await?;
    prepare(&mut tx, import.tenant_id, import.id, import.options).await?;
    tx.commit().await
}

/// The whole file of a CSV import is stored: its duplicate rows are marked and its batches
/// handed to the outbox, in one transaction.
pub async fn complete_upload(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    rows: i32,
    columns: &[String],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let batch_count = batches::release_held(&mut tx, tenant_id, import_id).await?;
    sqlx::query("UPDATE imports SET total_rows = $3, batch_count = $4, columns = $5 WHERE id = $1 AND tenant_id = $2")
        .bind(import_id)
        .bind(tenant_id)
        .bind(rows)
        .bind(batch_count as i32)
        .bind(columns)
        .execute(&mut *tx)
        .await?;
    batches::notify_outbox(&mut tx).await?;
    tx.commit().await
}

/// An upload that did not complete: its import fails with `reason`, its stored batches go.
pub async fn abandon_upload(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    batches::delete_all(&mut tx, tenant_id, import_id).await?;
    sqlx::query(
        "UPDATE imports SET status = 'failed', finished_at = now(), error = $3
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(format!(
        "the upload did not complete, nothing was applied: {reason}"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Deletes an import that was refused as if it had never come (an empty file).
pub async fn delete(pool: &PgPool, tenant_id: Uuid, import_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM imports WHERE id = $1 AND tenant_id = $2")
        .bind(import_id)
        .bind(tenant_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A CSV import's header as read (`None` for a JSON import, or no such import).
pub async fn columns(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let columns: Option<Option<Vec<String>>> =
        sqlx::query_scalar("SELECT columns FROM imports WHERE id = $1 AND tenant_id = $2")
            .bind(import_id)
            .bind(tenant_id)
            .fetch_optional(pool)
            .await?;
    Ok(columns.flatten())
}

/// Row outcomes of one batch.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    pub created: i32,
    pub updated: i32,
    pub skipped: i32,
    pub failed: i32,
}

impl Counts {
    /// Rows counted.
    pub fn total(self) -> i32 {
        self.created + self.updated + self.skipped + self.failed
    }
}

/// Adds a finished batch (applied, or `dead`) to its import's counters and state; the last
/// batch sets the final state.
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

/// Takes a dead batch's failed rows back out of its import's counters (it is replayed): the
/// import is `processing` again.
pub(super) async fn take_back_dead_batch(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    row_count: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE imports SET processed_rows = processed_rows - $3, failed = failed - $3,
             batches_done = batches_done - 1, batches_dead = batches_dead - 1,
             status = 'processing', finished_at = NULL
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(row_count)
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
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
) -> Result<Cancelled, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let idle = batches::lock_pending(&mut tx, tenant_id, import_id).await?;
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
    let batch_nos: Vec<i32> = idle.iter().map(|b| b.batch_no).collect();
    let rows: i64 = idle.iter().map(|b| i64::from(b.row_count)).sum();
    batches::skip(
        &mut tx,
        tenant_id,
        import_id,
        &batch_nos,
        &cancelled_warning(),
    )
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

/// The warning of a row its import's cancel skipped.
pub fn cancelled_warning() -> RowIssue {
    RowIssue::new(
        "",
        ErrorCode::Cancelled,
        "the import was cancelled before this row was applied",
    )
}
