//! Row results: one per accepted row, written in the transaction of the batch that decided it
//! (applied, dead, skipped by a cancel), read back by the rows page and the results files.

use super::states::RowStatus;
use crate::validate::RowIssue;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A list of issues as stored (`jsonb`); `None` when empty.
pub(super) fn issues_json(issues: &[RowIssue]) -> Option<String> {
    (!issues.is_empty()).then(|| serde_json::to_string(issues).unwrap_or_else(|_| "[]".into()))
}

/// The results of one batch, column by column, as they are inserted.
#[derive(Debug, Default)]
pub struct NewResults {
    index: Vec<i32>,
    status: Vec<RowStatus>,
    contact_id: Vec<Option<Uuid>>,
    errors: Vec<Option<String>>,
    warnings: Vec<Option<String>>,
}

impl NewResults {
    /// Room for `n` rows.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            index: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            contact_id: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            warnings: Vec::with_capacity(n),
        }
    }

    /// One row's result.
    pub fn push(
        &mut self,
        index: i32,
        status: RowStatus,
        contact_id: Option<Uuid>,
        errors: &[RowIssue],
        warnings: &[RowIssue],
    ) {
        self.index.push(index);
        self.status.push(status);
        self.contact_id.push(contact_id);
        self.errors.push(issues_json(errors));
        self.warnings.push(issues_json(warnings));
    }
}

/// Inserts a batch's results, in its transaction: one statement for the batch.
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    results: &NewResults,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO row_results (import_id, tenant_id, row_index, status, contact_id, errors, warnings)
         SELECT $1, $2, u.row_index, u.status, u.contact_id, u.errors::jsonb, u.warnings::jsonb
         FROM UNNEST($3::int[], $4::text[], $5::uuid[], $6::text[], $7::text[])
              AS u(row_index, status, contact_id, errors, warnings)",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(&results.index)
    .bind(&results.status)
    .bind(&results.contact_id)
    .bind(&results.errors)
    .bind(&results.warnings)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes back the results of rows `first_row .. first_row + row_count` (a dead batch replayed).
pub(super) async fn delete_between(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    first_row: i32,
    row_count: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM row_results WHERE import_id = $1 AND tenant_id = $2
         AND row_index >= $3 AND row_index < $3 + $4",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(first_row)
    .bind(row_count)
    .execute(conn)
    .await?;
    Ok(())
}

/// One row's result, as `GET /api/v1/imports/{id}/rows` shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowResultView {
    /// The 0-based position of the contact in the request (CSV: data row, header excluded).
    #[sqlx(rename = "row_index")]
    pub index: i32,
    pub status: RowStatus,
    pub contact_id: Option<Uuid>,
    #[sqlx(json)]
    #[schema(value_type = Vec<RowIssue>)]
    pub errors: serde_json::Value,
    #[sqlx(json)]
    #[schema(value_type = Vec<RowIssue>)]
    pub warnings: serde_json::Value,
}

/// Row results of the tenant's import after row `after`, in row order, optionally of one
/// status.
pub async fn page(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    status: Option<RowStatus>,
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

/// A row's result as the results files write it.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredResult {
    pub row_index: i32,
    pub status: RowStatus,
    pub errors: Option<serde_json::Value>,
    pub warnings: Option<serde_json::Value>,
}

/// The results of rows `first_row .. first_row + row_count` of the tenant's import (one batch).
pub async fn between(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    first_row: i32,
    row_count: i32,
) -> Result<Vec<StoredResult>, sqlx::Error> {
    sqlx::query_as(
        "SELECT row_index, status, errors, warnings FROM row_results
         WHERE import_id = $1 AND tenant_id = $2 AND row_index >= $3 AND row_index < $3 + $4",
    )
    .bind(import_id)
    .bind(tenant_id)
    .bind(first_row)
    .bind(row_count)
    .fetch_all(pool)
    .await
}
