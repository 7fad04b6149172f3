//! `GET /api/v1/groups`: the tenant's groups with their member counts.

use super::AppState;
use super::error::ApiError;
use crate::store::groups::{self, GroupView};
use crate::store::tenants::Tenant;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// The tenant's groups.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupList {
    /// By name.
    pub data: Vec<GroupView>,
}

/// `GET /api/v1/groups` → `{"data": [{"name", "members", "createdAt"}]}`.
#[utoipa::path(
    get, path = "/api/v1/groups", operation_id = "listGroups", tag = "contacts",
    summary = "The tenant's groups and their members (contacts not deleted)",
    responses((status = 200, description = "Every group, by name", body = GroupList))
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<GroupList>, ApiError> {
    let data = groups::list(&state.pool, tenant.id).await?;
    Ok(Json(GroupList { data }))
}
