//! Row results: one per accepted row, written in the transaction of the batch that decided it
//! (applied, dead, skipped by a cancel), read back by the rows page and the results files.
//! They are stored a batch at a time (`batch_results`, migration 0021): one row per batch with
//! its rows' results as arrays in row order.

use super::states::RowStatus;
use crate::validate::RowIssue;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A list of issues as stored (`jsonb`); `None` when empty.
pub(super) fn issues_json(issues: &[RowIssue]) -> Option<String> {
    (!issues.is_empty()).then(|| serde_json::to_string(issues).unwrap_or_else(|_| "[]".into()))
}

/// The results of one batch, column by column in row order, as they are stored: one
/// `batch_results` row for the batch.
#[derive(Debug, Default)]
pub struct NewResults {
    first_row: Option<i32>,
    present: Vec<RowStatus>,
    status: Vec<RowStatus>,
    contact_id: Vec<Option<Uuid>>,
    errors: Vec<Option<String>>,
    warnings: Vec<Option<String>>,
}

/// A batch's results were not one per row, in order (a bug in the caller, never the input).
#[derive(Debug, thiserror::Error)]
#[error("row {index} is not the next row of the batch's results (expected {expected})")]
pub struct OutOfOrder {
    index: i32,
    expected: i32,
}

impl NewResults {
    /// Room for `n` rows.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            first_row: None,
            present: Vec::new(),
            status: Vec::with_capacity(n),
            contact_id: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            warnings: Vec::with_capacity(n),
        }
    }

    /// The result of row `index`, the row after the last one pushed.
    pub fn push(
        &mut self,
        index: i32,
        status: RowStatus,
        contact_id: Option<Uuid>,
        errors: &[RowIssue],
        warnings: &[RowIssue],
    ) -> Result<(), OutOfOrder> {
        let first = *self.first_row.get_or_insert(index);
        let expected = first + self.status.len() as i32;
        if index != expected {
            return Err(OutOfOrder { index, expected });
        }
        if !self.present.contains(&status) {
            self.present.push(status);
        }
        self.status.push(status);
        self.contact_id.push(contact_id);
        self.errors.push(issues_json(errors));
        self.warnings.push(issues_json(warnings));
        Ok(())
    }
}

/// Inserts a batch's results, in its transaction: one row for the batch.
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    results: &NewResults,
) -> Result<(), sqlx::Error> {
    let Some(first_row) = results.first_row else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO batch_results (tenant_id, import_id, first_row, row_count, present,
                                    statuses, contact_ids, errors, warnings)
         VALUES ($1, $2, $3, cardinality($5::text[]), $4, $5, $6, $7::text[]::jsonb[], $8::text[]::jsonb[])",
    )
    .bind(tenant_id)
    .bind(import_id)
    .bind(first_row)
    .bind(&results.present)
    .bind(&results.status)
    .bind(&results.contact_id)
    .bind(&results.errors)
    .bind(&results.warnings)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the same result for every row of these batches of an import (skipped by a cancel,
/// failed with the batch): `errors` and `warnings` as `issues_json` gives them.
pub(super) async fn insert_same(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    batch_nos: &[i32],
    status: RowStatus,
    errors: Option<String>,
    warnings: Option<String>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO batch_results (tenant_id, import_id, first_row, row_count, present,
                                    statuses, contact_ids, errors, warnings)
         SELECT b.tenant_id, b.import_id, b.first_row, b.row_count, ARRAY[$4::text],
                array_fill($4::text, ARRAY[b.row_count]),
                array_fill(NULL::uuid, ARRAY[b.row_count]),
                array_fill($5::jsonb, ARRAY[b.row_count]),
                array_fill($6::jsonb, ARRAY[b.row_count])
         FROM import_batches b
         WHERE b.import_id = $2 AND b.tenant_id = $1 AND b.batch_no = ANY($3) AND b.row_count > 0",
    )
    .bind(tenant_id)
    .bind(import_id)
    .bind(batch_nos)
    .bind(status)
    .bind(errors)
    .bind(warnings)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes back the results of the batch whose rows start at `first_row` (a dead batch
/// replayed).
pub(super) async fn delete_batch(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    first_row: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM batch_results WHERE tenant_id = $1 AND import_id = $2 AND first_row = $3",
    )
    .bind(tenant_id)
    .bind(import_id)
    .bind(first_row)
    .execute(conn)
    .await?;
    Ok(())
}

/// The rows whose result names the contact, by import and row index.
pub(super) async fn rows_of_contact(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    contact_id: Uuid,
) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.import_id, b.first_row + u.pos::int - 1
         FROM batch_results b
         CROSS JOIN LATERAL unnest(b.contact_ids) WITH ORDINALITY AS u(contact_id, pos)
         WHERE b.tenant_id = $1 AND b.contact_ids @> ARRAY[$2::uuid] AND u.contact_id = $2",
    )
    .bind(tenant_id)
    .bind(contact_id)
    .fetch_all(conn)
    .await
}

/// Turns the result of each of these rows into `erased` with nothing else, a row at a time
/// (a batch may hold several of them).
pub(super) async fn erase_rows(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    rows: &[(Uuid, i32)],
) -> Result<(), sqlx::Error> {
    for &(import_id, row_index) in rows {
        sqlx::query(
            "UPDATE batch_results
             SET statuses[$3 - first_row + 1] = 'erased', contact_ids[$3 - first_row + 1] = NULL,
                 errors[$3 - first_row + 1] = NULL, warnings[$3 - first_row + 1] = NULL,
                 present = CASE WHEN 'erased' = ANY(present) THEN present
                                ELSE present || 'erased'::text END
             WHERE tenant_id = $1 AND import_id = $2
               AND first_row <= $3 AND first_row + row_count > $3",
        )
        .bind(tenant_id)
        .bind(import_id)
        .bind(row_index)
        .execute(&mut *conn)
        .await?;
    }
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
    // From the batch holding the row after `after`, in key order; within a batch, in array
    // order. A page of one status passes by the batches that have none (`present`).
    sqlx::query_as(
        "SELECT b.first_row + u.pos::int - 1 AS row_index, u.status, u.contact_id,
                COALESCE(u.errors, '[]'::jsonb) AS errors, COALESCE(u.warnings, '[]'::jsonb) AS warnings
         FROM batch_results b
         CROSS JOIN LATERAL unnest(b.statuses, b.contact_ids, b.errors, b.warnings)
             WITH ORDINALITY AS u(status, contact_id, errors, warnings, pos)
         WHERE b.tenant_id = $1 AND b.import_id = $2
           AND b.first_row >= COALESCE(
                 (SELECT max(first_row) FROM batch_results
                  WHERE tenant_id = $1 AND import_id = $2 AND first_row <= COALESCE($4, -1) + 1), 0)
           AND ($3::text IS NULL OR $3 = ANY(b.present))
           AND ($3::text IS NULL OR u.status = $3)
           AND b.first_row + u.pos::int - 1 > COALESCE($4, -1)
         ORDER BY b.first_row, u.pos LIMIT $5",
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

/// The results of the batch whose rows start at `first_row`, in row order (none before it is
/// applied).
pub async fn of_batch(
    pool: &PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    first_row: i32,
) -> Result<Vec<StoredResult>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.first_row + u.pos::int - 1 AS row_index, u.status, u.errors, u.warnings
         FROM batch_results b
         CROSS JOIN LATERAL unnest(b.statuses, b.errors, b.warnings)
             WITH ORDINALITY AS u(status, errors, warnings, pos)
         WHERE b.tenant_id = $1 AND b.import_id = $2 AND b.first_row = $3
         ORDER BY u.pos",
    )
    .bind(tenant_id)
    .bind(import_id)
    .bind(first_row)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batchs_results_are_one_per_row_in_order() {
        let mut results = NewResults::with_capacity(3);
        results
            .push(500, RowStatus::Created, None, &[], &[])
            .expect("the first row");
        results
            .push(501, RowStatus::Failed, None, &[], &[])
            .expect("the next row");
        results
            .push(502, RowStatus::Created, None, &[], &[])
            .expect("the next row");
        assert_eq!(results.first_row, Some(500));
        assert_eq!(results.present, [RowStatus::Created, RowStatus::Failed]);
        // A gap or a row twice is refused, not stored at the wrong place.
        assert!(
            results
                .push(504, RowStatus::Created, None, &[], &[])
                .is_err()
        );
        assert!(
            results
                .push(502, RowStatus::Created, None, &[], &[])
                .is_err()
        );
        assert_eq!(results.status.len(), 3);
    }
}
