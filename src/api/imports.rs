//! Import status, per-row results, and the tenant's list of imports.

use super::error::{ApiError, FieldError};
use super::{ApiQuery, AppState, parse_id};
use crate::import::RowStatus;
use crate::store::imports::{self, ImportStatus};
use crate::store::tenants::Tenant;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/imports/{id}`.
pub async fn status(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ImportStatus>, ApiError> {
    let id = parse_id(&id, "import")?;
    imports::status(&state.pool, tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no import {id}")))
}

/// Query of `GET /api/v1/imports`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    before: Option<uuid::Uuid>,
    limit: Option<i64>,
}

/// `GET /api/v1/imports`: newest first; `nextBefore` pages on.
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"data": data, "nextBefore": next})))
}

/// Query of `GET /api/v1/imports/{id}/rows`.
#[derive(Debug, Deserialize)]
pub struct RowsQuery {
    status: Option<String>,
    after: Option<i32>,
    limit: Option<i64>,
}

/// `GET /api/v1/imports/{id}/rows?status=&after=&limit=`.
pub async fn rows(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RowsQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "import")?;
    let mut errors = Vec::new();
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => match RowStatus::parse(s) {
            Some(status) => Some(status.as_str()),
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
    match imports::status(&state.pool, tenant.id, id).await? {
        None => return Err(ApiError::not_found(format!("no import {id}"))),
        Some(import) => purged_check(&import)?,
    }
    let rows = imports::rows(&state.pool, tenant.id, id, status, q.after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.index))
        .flatten();
    Ok(Json(json!({"rows": rows, "nextAfter": next})))
}

/// `POST /api/v1/imports/{id}/cancel`: stops what has not started; answers the status.
pub async fn cancel(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ImportStatus>, ApiError> {
    use crate::worker::progress::{self, Cancelled};
    let id = parse_id(&id, "import")?;
    match progress::cancel(&state.pool, tenant.id, id).await? {
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
    imports::status(&state.pool, tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no import {id}")))
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
