//! The tenant's custom fields: their names and types, used by intake (unknown names are a
//! 422) and by the worker (values are checked against the type).

use crate::validate::{FieldKind, FieldType};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A custom field as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// The allowed values of an `enum` field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, required = false)]
    pub options: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Every field of a tenant, oldest first.
pub async fn list(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<FieldView>, sqlx::Error> {
    let rows: Vec<(String, String, Option<serde_json::Value>, OffsetDateTime)> = sqlx::query_as(
        "SELECT name, type, options, created_at FROM custom_fields WHERE tenant_id = $1 ORDER BY created_at, name",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, kind, options, created_at)| {
            Some(FieldView {
                name,
                kind: FieldType::parse(&kind)?,
                options,
                created_at,
            })
        })
        .collect())
}

/// The tenant's fields by name, ready for validation. A stored type that no longer parses
/// is left out (its values then fail as `unknown_field`, never silently pass).
pub async fn kinds<'e, E>(
    executor: E,
    tenant_id: Uuid,
) -> Result<HashMap<String, FieldKind>, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let rows: Vec<(String, String, Option<serde_json::Value>)> =
        sqlx::query_as("SELECT name, type, options FROM custom_fields WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(executor)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, kind, options)| {
            FieldKind::parse(&kind, options.as_ref())
                .ok()
                .map(|k| (name, k))
        })
        .collect())
}

/// Outcome of creating a field.
pub enum Created {
    Created(FieldView),
    AlreadyExists,
}

/// Creates a field; a name that exists answers `AlreadyExists`.
pub async fn create(
    pool: &PgPool,
    tenant_id: Uuid,
    name: &str,
    kind: &FieldKind,
) -> Result<Created, sqlx::Error> {
    let options = kind.options().map(|o| serde_json::json!(o));
    let row: Option<(OffsetDateTime,)> = sqlx::query_as(
        "INSERT INTO custom_fields (tenant_id, name, type, options) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING created_at",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(kind.type_name())
    .bind(&options)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((created_at,)) => Created::Created(FieldView {
            name: name.to_owned(),
            kind: kind.field_type(),
            options,
            created_at,
        }),
        None => Created::AlreadyExists,
    })
}
