//! What operators read, across tenants: the counts behind `/metrics` and the operations page.
//! Read from PostgreSQL, so they are the same whichever process is asked and equal to the
//! imports' own counters. Only the admin and metrics endpoints call these.

use super::states::{CallbackState, ImportState, Source};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Answers when the database does (readiness).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(|_| ())
}

/// Everything `/metrics` reads from the database.
#[derive(Debug, Default)]
pub struct MetricCounts {
    /// Imports by status; every status is listed, at 0 when none.
    pub imports: Vec<(ImportState, i64)>,
    /// Rows by outcome over every import that was not a dry run: created, updated, skipped,
    /// failed.
    pub rows: [i64; 4],
    /// Batches stored but not yet confirmed by the broker (or held while their file arrives).
    pub outbox_pending: i64,
    /// Events stored but not yet confirmed by the broker.
    pub events_pending: i64,
    /// Callbacks by delivery state; every state is listed.
    pub callbacks: Vec<(CallbackState, i64)>,
}

/// Reads the metrics' counts.
pub async fn metric_counts(pool: &PgPool) -> Result<MetricCounts, sqlx::Error> {
    let by_status: Vec<(ImportState, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM imports GROUP BY status")
            .fetch_all(pool)
            .await?;
    let (created, updated, skipped, failed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(created), 0)::int8, coalesce(sum(updated), 0)::int8,
                coalesce(sum(skipped), 0)::int8, coalesce(sum(failed), 0)::int8
         FROM imports WHERE NOT coalesce((options->>'dryRun')::boolean, false)",
    )
    .fetch_one(pool)
    .await?;
    let outbox_pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_batches
         WHERE (state = 'pending' AND published_at IS NULL) OR state = 'held'",
    )
    .fetch_one(pool)
    .await?;
    let events_pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await?;
    let by_state: Vec<(CallbackState, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM import_callbacks GROUP BY state")
            .fetch_all(pool)
            .await?;
    let count_of =
        |list: &[(ImportState, i64)], s| list.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
    Ok(MetricCounts {
        imports: ImportState::ALL
            .iter()
            .map(|&s| (s, count_of(&by_status, s)))
            .collect(),
        rows: [created, updated, skipped, failed],
        outbox_pending,
        events_pending,
        callbacks: CallbackState::ALL
            .iter()
            .map(|&s| {
                let n = by_state
                    .iter()
                    .find(|(k, _)| *k == s)
                    .map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect(),
    })
}

/// An import that is queued or processing, for the operations page.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningImport {
    pub id: Uuid,
    pub tenant: String,
    pub source: Source,
    pub status: ImportState,
    pub total_rows: i32,
    pub processed_rows: i32,
    pub failed: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An import that ended.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinishedImport {
    pub id: Uuid,
    pub tenant: String,
    pub status: ImportState,
    pub total_rows: i32,
    pub failed: i32,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// What the operations page shows from the database.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// Rows processed over every import: the page derives rows/s from two readings.
    pub rows_processed: i64,
    pub outbox_pending: i64,
    pub dead_batches: i64,
    /// The 50 oldest imports still queued or processing.
    pub running: Vec<RunningImport>,
    /// The last 10 imports to finish, whatever their outcome.
    pub recently_finished: Vec<FinishedImport>,
    /// The last 10 that failed or have failed rows.
    pub recent_failures: Vec<FinishedImport>,
}

/// Reads the operations page's overview.
pub async fn overview(pool: &PgPool) -> Result<Overview, sqlx::Error> {
    let (rows_processed, outbox_pending, dead_batches): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(processed_rows), 0)::int8 FROM imports),
                (SELECT count(*) FROM import_batches
                 WHERE (state = 'pending' AND published_at IS NULL) OR state = 'held'),
                (SELECT count(*) FROM import_batches WHERE state = 'dead')",
    )
    .fetch_one(pool)
    .await?;
    let running: Vec<RunningImport> = sqlx::query_as(
        "SELECT i.id, t.name AS tenant, i.source, i.status, i.total_rows, i.processed_rows,
                i.failed, i.created_at
         FROM imports i JOIN tenants t ON t.id = i.tenant_id
         WHERE i.status IN ('queued', 'processing')
         ORDER BY i.created_at LIMIT 50",
    )
    .fetch_all(pool)
    .await?;
    let finished = |statuses: &'static [ImportState]| {
        sqlx::query_as::<_, FinishedImport>(
            "SELECT i.id, t.name AS tenant, i.status, i.total_rows, i.failed, i.error, i.finished_at
             FROM imports i JOIN tenants t ON t.id = i.tenant_id
             WHERE i.status = ANY($1) AND i.finished_at IS NOT NULL
             ORDER BY i.finished_at DESC LIMIT 10",
        )
        .bind(statuses)
        .fetch_all(pool)
    };
    let recently_finished = finished(&ImportState::FINAL).await?;
    let recent_failures =
        finished(&[ImportState::Failed, ImportState::CompletedWithErrors]).await?;
    Ok(Overview {
        rows_processed,
        outbox_pending,
        dead_batches,
        running,
        recently_finished,
        recent_failures,
    })
}
