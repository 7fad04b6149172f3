//! `POST/GET /api/v1/fields`: the tenant's typed custom attributes.

use super::AppState;
use super::error::{ApiError, FieldError, Problem};
use crate::store::fields::{self, Created, FieldView};
use crate::store::tenants::Tenant;
use crate::validate::{FieldKind, check_field_name};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// `POST /api/v1/fields {"name", "type", "options"}` → 201 with the field.
#[utoipa::path(
    post, path = "/api/v1/fields", operation_id = "createField", tag = "fields", summary = "Define a custom attribute",
    request_body = crate::api::schema::FieldRequest,
    responses(
        (status = 201, description = "Created", body = FieldView),
        (status = 409, description = "A field of this name exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad name, type or options; `errors` points at each", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<FieldView>), ApiError> {
    let body = body.map_err(|e| ApiError::body(&e, state.settings.max_body_bytes))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let mut errors = Vec::new();
    let name = match value.get("name") {
        Some(Value::String(name)) => match check_field_name(name) {
            Ok(()) => Some(name.clone()),
            Err(message) => {
                errors.push(FieldError::new("/name", "invalid_value", message));
                None
            }
        },
        _ => {
            errors.push(FieldError::new(
                "/name",
                "invalid_value",
                "name is required: a string",
            ));
            None
        }
    };
    let kind = match value.get("type") {
        Some(Value::String(type_name)) => {
            match FieldKind::parse(type_name, value.get("options").filter(|o| !o.is_null())) {
                Ok(kind) => Some(kind),
                Err(message) => {
                    errors.push(FieldError::new("/type", "invalid_value", message));
                    None
                }
            }
        }
        _ => {
            errors.push(FieldError::new(
                "/type",
                "invalid_value",
                "type is required: string, number, boolean, date or enum",
            ));
            None
        }
    };
    let (Some(name), Some(kind)) = (name, kind) else {
        return Err(ApiError::unprocessable(
            "the field cannot be created; see errors",
            errors,
        ));
    };
    match fields::create(&state.pool, tenant.id, &name, &kind).await? {
        Created::Created(view) => Ok((StatusCode::CREATED, Json(view))),
        Created::AlreadyExists => Err(ApiError::conflict(format!(
            "a field named {name:?} exists already"
        ))),
    }
}

/// The tenant's custom fields.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldList {
    /// Oldest first.
    pub data: Vec<FieldView>,
}

/// `GET /api/v1/fields` → `{"data": [...]}`.
#[utoipa::path(
    get, path = "/api/v1/fields", operation_id = "listFields", tag = "fields", summary = "The tenant's custom attributes",
    responses((status = 200, description = "Every field, oldest first", body = FieldList))
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<FieldList>, ApiError> {
    let data = fields::list(&state.pool, tenant.id).await?;
    Ok(Json(FieldList { data }))
}
