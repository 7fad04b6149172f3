//! `POST/GET /api/v1/fields`: the tenant's typed custom attributes.

use super::AppState;
use super::error::{ApiError, FieldError};
use crate::store::fields::{self, Created, FieldView};
use crate::store::tenants::Tenant;
use crate::validate::{FieldKind, check_field_name};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// `POST /api/v1/fields {"name", "type", "options"}` → 201 with the field.
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Bytes,
) -> Result<(StatusCode, Json<FieldView>), ApiError> {
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

/// `GET /api/v1/fields` → `{"data": [...]}`.
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> Result<Json<Value>, ApiError> {
    let fields = fields::list(&state.pool, tenant.id).await?;
    Ok(Json(json!({ "data": fields })))
}
