//! Import status, per-row results, and the tenant's list of imports.

use super::error::{ApiError, FieldError, Problem};
use super::{ApiQuery, AppState, parse_id};
use crate::store::RowStatus;
use crate::store::imports::{self, Cancelled, ImportStatus};
use crate::store::row_results::{self, RowResultView};
use crate::store::tenants::Tenant;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/imports/{id}`.
#[utoipa::path(
    get, path = "/api/v1/imports/{id}", operation_id = "getImport", tag = "imports", summary = "An import's status and counters",
    params(("id" = uuid::Uuid, Path, description = "The asyncSessionId")),
    responses(
        (status = 200, description = "created + updated + skipped + failed == processedRows", body = ImportStatus),
        (status = 404, description = "No such import of this tenant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ImportStatus>, ApiError> {
    let id = parse_id(&id, "import")?;
    imports::status(&state.by_key, tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no import {id}")))
}

/// Query of `GET /api/v1/imports`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// List the imports older than this one (the previous page's `nextBefore`).
    before: Option<uuid::Uuid>,
    /// Imports per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A page of the tenant's imports, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportPage {
    pub data: Vec<ImportStatus>,
    /// The `before` of the next page; null on the last.
    pub next_before: Option<uuid::Uuid>,
}

/// A page of an import's row results, in row order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowsPage {
    pub rows: Vec<RowResultView>,
    /// The `after` of the next page; null on the last.
    pub next_after: Option<i32>,
}

/// `GET /api/v1/imports`: newest first; `nextBefore` pages on.
#[utoipa::path(
    get, path = "/api/v1/imports", operation_id = "listImports", tag = "imports", summary = "The tenant's imports, newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of imports", body = ImportPage),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ImportPage>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::unprocessable(
            "bad paging parameters",
            vec![FieldError::new(
                "limit",
                "invalid_value",
                "limit is 1 to 500",
            )],
        ));
    }
    let data = imports::list(&state.pool, tenant.id, q.before, limit).await?;
    let next = (data.len() as i64 == limit)
        .then(|| data.last().map(|i| i.id))
        .flatten();
    Ok(Json(ImportPage {
        data,
        next_before: next,
    }))
}

/// Query of `GET /api/v1/imports/{id}/rows`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Only rows of this outcome.
    #[param(value_type = Option<RowStatus>)]
    status: Option<String>,
    /// Rows after this index (the previous page's `nextAfter`).
    after: Option<i32>,
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// `GET /api/v1/imports/{id}/rows?status=&after=&limit=`.
#[utoipa::path(
    get, path = "/api/v1/imports/{id}/rows", operation_id = "listImportRows", tag = "imports", summary = "Per-row results",
    params(("id" = uuid::Uuid, Path, description = "The asyncSessionId"), RowsQuery),
    responses(
        (status = 200, description = "A page of row results; rows not processed yet are not listed", body = RowsPage),
        (status = 404, description = "No such import of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The rows were deleted under the retention period", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rows(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RowsQuery>,
) -> Result<Json<RowsPage>, ApiError> {
    let id = parse_id(&id, "import")?;
    let mut errors = Vec::new();
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => match RowStatus::parse(s) {
            Some(status) => Some(status),
            None => {
                errors.push(FieldError::new(
                    "status",
                    "invalid_value",
                    "status is created, updated, skipped or failed",
                ));
                None
            }
        },
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            "invalid_value",
            "limit is 1 to 1000",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable("bad query parameters", errors));
    }
    match imports::status(&state.by_key, tenant.id, id).await? {
        None => return Err(ApiError::not_found(format!("no import {id}"))),
        Some(import) => purged_check(&import)?,
    }
    let rows = row_results::page(&state.pool, tenant.id, id, status, q.after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.index))
        .flatten();
    Ok(Json(RowsPage {
        rows,
        next_after: next,
    }))
}

/// `POST /api/v1/imports/{id}/cancel`: stops what has not started; answers the status.
#[utoipa::path(
    post, path = "/api/v1/imports/{id}/cancel", operation_id = "cancelImport", tag = "imports", summary = "Cancel what has not started",
    params(("id" = uuid::Uuid, Path, description = "The asyncSessionId")),
    responses(
        (status = 200, description = "Cancelled: rows not yet applied end skipped", body = ImportStatus),
        (status = 404, description = "No such import of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The import has finished already", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ImportStatus>, ApiError> {
    let id = parse_id(&id, "import")?;
    match imports::cancel(&state.pool, tenant.id, id).await? {
        Cancelled::NotFound => return Err(ApiError::not_found(format!("no import {id}"))),
        Cancelled::AlreadyFinal => {
            return Err(ApiError::conflict(format!(
                "import {id} has already finished; there is nothing to cancel"
            )));
        }
        Cancelled::Now { skipped_rows } => {
            tracing::info!(import_id = %id, tenant_id = %tenant.id, skipped_rows, "import cancelled");
        }
    }
    imports::status(&state.by_key, tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no import {id}")))
}

/// `POST /api/v1/imports/{id}/commit`: applies the rows a finished dry run reviewed, as a new
/// import.
#[utoipa::path(
    post, path = "/api/v1/imports/{id}/commit", operation_id = "commitDryRun", tag = "imports", summary = "Apply the rows a finished dry run reviewed",
    description = "The dry run's very rows (as it stored them) become a new import with the same options, `dryRun` off; its status names the dry run in `reviewedIn`, and the dry run's status names it in `committedAs`. Once only.",
    params(("id" = uuid::Uuid, Path, description = "The dry run's asyncSessionId")),
    responses(
        (status = 202, description = "Stored; poll `statusUrl`", body = crate::intake::Accepted),
        (status = 404, description = "No such import of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a finished dry run, or committed already", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The dry run's rows were deleted under the retention period", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's backlog or rate is over its limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn commit(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<crate::intake::Accepted>), ApiError> {
    let id = parse_id(&id, "import")?;
    let accepted = crate::intake::commit(&state.pool, &state.settings, tenant.id, id).await?;
    state.relay_wake.notify_one();
    tracing::info!(import_id = %accepted.async_session_id, reviewed_in = %id, tenant_id = %tenant.id, rows = accepted.total_rows, "dry run committed");
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// 410 for an import whose rows and results the retention period deleted.
pub fn purged_check(import: &ImportStatus) -> Result<(), ApiError> {
    match import.purged_at {
        Some(at) => Err(ApiError::gone(format!(
            "the rows and results of import {} were deleted on {} under the retention period (RETENTION_DAYS); its summary remains at /api/v1/imports/{}",
            import.id,
            at.date(),
            import.id
        ))),
        None => Ok(()),
    }
}
