//! `GET /api/v1/imports/{id}/results.csv` (every row with `import_status` and `errors`) and
//! `errors.csv` (failed rows only). Streamed a batch at a time, never the whole import in
//! memory. A cell that a spreadsheet would run as a formula is escaped with a leading `'`.

use super::error::{ApiError, Problem};
use super::{AppState, parse_id};
use crate::store::row_results::{self, StoredResult};
use crate::store::tenants::Tenant;
use crate::store::{RowStatus, batches, imports};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// Columns of a JSON import's results file: the flat contact fields, then the attributes.
fn json_columns() -> impl Iterator<Item = &'static str> {
    crate::validate::CONTACT_FIELDS
        .into_iter()
        .chain(["customAttributes"])
}

/// `GET /api/v1/imports/{id}/results.csv`.
#[utoipa::path(
    get, path = "/api/v1/imports/{id}/results.csv", operation_id = "getImportResultsCsv", tag = "imports", summary = "Every row with its outcome, as CSV",
    params(("id" = uuid::Uuid, Path, description = "The asyncSessionId")),
    responses(
        (status = 200, description = "The rows with two more columns, import_status and errors", body = String, content_type = "text/csv"),
        (status = 404, description = "No such import of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The rows were deleted under the retention period", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn results_csv(
    state: State<AppState>,
    tenant: Tenant,
    id: Path<String>,
) -> Result<Response, ApiError> {
    file(state, tenant, id, false).await
}

/// `GET /api/v1/imports/{id}/errors.csv`.
#[utoipa::path(
    get, path = "/api/v1/imports/{id}/errors.csv", operation_id = "getImportErrorsCsv", tag = "imports", summary = "The failed rows, as CSV",
    params(("id" = uuid::Uuid, Path, description = "The asyncSessionId")),
    responses(
        (status = 200, description = "The failed rows with import_status and errors", body = String, content_type = "text/csv"),
        (status = 404, description = "No such import of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The rows were deleted under the retention period", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn errors_csv(
    state: State<AppState>,
    tenant: Tenant,
    id: Path<String>,
) -> Result<Response, ApiError> {
    file(state, tenant, id, true).await
}

async fn file(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    only_failed: bool,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "import")?;
    let import = imports::status(&state.by_key, tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no import {id}")))?;
    super::imports::purged_check(&import)?;
    let columns = imports::columns(&state.pool, tenant.id, id).await?;
    let source = Source {
        pool: state.pool.clone(),
        tenant_id: tenant.id,
        import_id: id,
        csv: columns.is_some(),
        only_failed,
    };
    let mut header: Vec<String> =
        columns.unwrap_or_else(|| json_columns().map(str::to_owned).collect());
    let width = header.len();
    header.push("import_status".into());
    header.push("errors".into());
    let first = encode(std::iter::once(header));
    let batches = futures_util::stream::unfold(Some(0i32), move |next| {
        let source = source.clone();
        async move {
            let batch_no = next?;
            match source.batch(batch_no, width).await {
                Ok(Some(bytes)) => Some((Ok::<_, std::io::Error>(bytes), Some(batch_no + 1))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(import_id = %source.import_id, error = %e, "results file cut short");
                    Some((Err(std::io::Error::other("database error")), None))
                }
            }
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(first) }),
        batches,
    );
    let name = format!(
        "import-{}-{}.csv",
        import.id,
        if only_failed { "errors" } else { "results" }
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .body(Body::from_stream(body))
        .map_err(|_| ApiError::internal())
}

#[derive(Clone)]
struct Source {
    pool: PgPool,
    tenant_id: Uuid,
    import_id: Uuid,
    csv: bool,
    only_failed: bool,
}

impl Source {
    /// One batch's lines; `None` past the last batch.
    async fn batch(&self, batch_no: i32, width: usize) -> Result<Option<Bytes>, sqlx::Error> {
        let Some(stored) =
            batches::stored_rows(&self.pool, self.tenant_id, self.import_id, batch_no).await?
        else {
            return Ok(None);
        };
        let (first_row, row_count) = (stored.first_row, stored.row_count);
        let results =
            row_results::of_batch(&self.pool, self.tenant_id, self.import_id, first_row).await?;
        let results: HashMap<i32, StoredResult> =
            results.into_iter().map(|r| (r.row_index, r)).collect();
        let cells = if self.csv {
            stored
                .cells()
                .and_then(|r| serde_json::from_slice::<Vec<Vec<String>>>(&r).ok())
        } else {
            // Row by row: a row that cannot be read leaves its own cells empty, not the batch's.
            stored.contacts().and_then(|p| {
                let rows: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&p).ok()?;
                Some(
                    rows.iter()
                        .map(|row| {
                            serde_json::from_str::<Value>(row.get())
                                .map(|v| json_cells(&v))
                                .unwrap_or_default()
                        })
                        .collect(),
                )
            })
        }
        .unwrap_or_default();
        let lines = (0..row_count).filter_map(|i| {
            let result = results.get(&(first_row + i));
            let status = result.map(|r| r.status);
            if self.only_failed && status != Some(RowStatus::Failed) {
                return None;
            }
            let mut line: Vec<String> = cells.get(i as usize).cloned().unwrap_or_default();
            line.resize(width, String::new());
            line.push(status.map_or("pending", RowStatus::as_str).to_owned());
            line.push(result.map(describe).unwrap_or_default());
            Some(line)
        });
        Ok(Some(encode(lines)))
    }
}

/// The flat cells of a JSON contact, in `json_columns` order.
fn json_cells(contact: &Value) -> Vec<String> {
    json_columns()
        .map(|c| match contact.get(c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
        .collect()
}

/// `field: code: message` of every error, then every warning, joined by ` | `.
fn describe(result: &StoredResult) -> String {
    let mut parts = Vec::new();
    for (list, prefix) in [(&result.errors, ""), (&result.warnings, "warning ")] {
        for issue in list
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |k: &str| {
                issue
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let field = text("field");
            let head = if field.is_empty() {
                String::new()
            } else {
                format!("{field}: ")
            };
            parts.push(format!(
                "{prefix}{head}{}: {}",
                text("code"),
                text("message")
            ));
        }
    }
    parts.join(" | ")
}

/// A cell a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`,
/// unless it is plainly a number or a phone number (digits, spaces and `+-().`).
pub fn escape_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let numeric = cell.chars().any(|c| c.is_ascii_digit())
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
    if risky && !numeric {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// CSV lines, each cell escaped (`escape_formula`).
pub(super) fn encode(lines: impl IntoIterator<Item = Vec<String>>) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for line in lines {
        let _ = writer.write_record(line.iter().map(|c| escape_formula(c).into_owned()));
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::escape_formula;

    #[test]
    fn formulas_are_escaped_and_phone_numbers_are_not() {
        let cases = [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-2+3*cmd|' /C calc'!A0", "'-2+3*cmd|' /C calc'!A0"),
            ("+212612345678", "+212612345678"),
            ("+1 (415) 555-0100", "+1 (415) 555-0100"),
            ("-12.5", "-12.5"),
            ("\tTAB", "'\tTAB"),
            ("Amina", "Amina"),
            ("", ""),
        ];
        for (cell, expected) in cases {
            assert_eq!(escape_formula(cell), expected, "{cell}");
        }
    }
}
