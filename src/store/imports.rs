//! Reading imports back: the status body, the per-row results page and the tenant's list.
//! Writing them belongs to `intake` (creation) and `worker` (progress).

use serde::Serialize;
use sqlx::{AssertSqlSafe, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// `GET /api/v1/imports/{id}` and the items of the list.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportStatus {
    #[serde(rename = "asyncSessionId")]
    pub id: Uuid,
    #[schema(value_type = crate::api::schema::ImportSource)]
    pub source: String,
    #[schema(value_type = crate::api::schema::ImportState)]
    pub status: String,
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
    /// The completion callback's delivery, when `callbackUrl` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::api::schema::CallbackState>, required = false)]
    pub callback: Option<serde_json::Value>,
}

const STATUS_COLUMNS: &str = "id, source, status, total_rows, processed_rows, created, updated, skipped, failed,
    CASE WHEN total_rows = 0 THEN 1.0::float8 ELSE processed_rows::float8 / total_rows END AS progress,
    created_at, started_at, finished_at, options, error, purged_at,
    coalesce((options->>'dryRun')::boolean, false) AS dry_run,
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
    options: &crate::import::ImportOptions,
) -> Result<(), sqlx::Error> {
    if options.dry_run {
        return Ok(());
    }
    super::groups::ensure(&mut *conn, tenant_id, &options.group_names).await?;
    let Some(url) = &options.callback_url else {
        return Ok(());
    };
    sqlx::query("INSERT INTO import_callbacks (import_id, tenant_id, url) VALUES ($1, $2, $3)")
        .bind(import_id)
        .bind(tenant_id)
        .bind(url)
        .execute(conn)
        .await?;
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

/// One row's result, as `GET /api/v1/imports/{id}/rows` shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowResultView {
    /// The 0-based position of the contact in the request (CSV: data row, header excluded).
    #[sqlx(rename = "row_index")]
    pub index: i32,
    #[schema(value_type = crate::api::schema::RowOutcome)]
    pub status: String,
    pub contact_id: Option<Uuid>,
    #[sqlx(json)]
    #[schema(value_type = Vec<crate::api::schema::RowIssue>)]
    pub errors: serde_json::Value,
    #[sqlx(json)]
    #[schema(value_type = Vec<crate::api::schema::RowIssue>)]
    pub warnings: serde_json::Value,
}

/// Row results of an import after row `after`, in row order, optionally of one status.
pub async fn rows(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    status: Option<&str>,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<RowResultView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT row_index, status, contact_id,
                COALESCE(errors, '[]'::jsonb) AS errors, COALESCE(warnings, '[]'::jsonb) AS warnings
         FROM row_results
         WHERE tenant_id = $1 AND import_id = $2
           AND ($3::text IS NULL OR status = $3)
           AND row_index > COALESCE($4, -1)
         ORDER BY row_index LIMIT $5",
    )
    .bind(tenant_id)
    .bind(import_id)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
