//! `POST /api/v1/contact`: one contact, applied at once in one transaction by the bulk
//! intake's own validation, planner and writes (Reteno's "add/update a contact", Gomobile's
//! single create). The answer is the row's outcome with the contact as stored.

use super::AppState;
use super::error::{ApiError, FieldError, Problem};
use crate::import::{ImportOptions, Mode};
use crate::intake;
use crate::store::contacts::{self, ContactView};
use crate::store::tenants::Tenant;
use crate::store::{self, RowStatus};
use crate::validate::Identifier;
use crate::validate::{self, ErrorCode, RowIssue, Rules};
use crate::worker::{self, plan};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;

/// The answer to a single contact that was applied or skipped.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SingleOutcome {
    /// `created`, `updated` or `skipped`.
    #[schema(value_type = RowStatus)]
    pub status: RowStatus,
    /// The contact as stored now; null when a skipped row matched none.
    pub contact: Option<ContactView>,
    /// As a row's warnings (`consent_kept`, `partial_date`, `already_exists`, …).
    pub warnings: Vec<RowIssue>,
}

/// `/contact/phone` for the row field `phone`, `/contact/customAttributes/plan` for
/// `customAttributes.plan`, `/contact` for the whole row.
fn pointer(field: &str) -> String {
    if field.is_empty() {
        return "/contact".into();
    }
    let escaped: Vec<String> = field
        .split('.')
        .map(|part| part.replace('~', "~0").replace('/', "~1"))
        .collect();
    format!("/contact/{}", escaped.join("/"))
}

fn field_errors(issues: &[RowIssue], under: &str) -> Vec<FieldError> {
    issues
        .iter()
        .map(|i| {
            let at = pointer(&i.field).replacen("/contact", under, 1);
            FieldError::new(at, i.code.as_str(), i.message.clone())
        })
        .collect()
}

fn rules<'a>(
    options: &'a ImportOptions,
    fields: &'a HashMap<String, validate::FieldKind>,
) -> Rules<'a> {
    Rules {
        dedupe_on: options.dedupe_on,
        default_region: options.default_region.as_deref(),
        fields,
        today: OffsetDateTime::now_utc().date(),
        date_format: options.date_format,
    }
}

/// Validates `contact` and applies it at once, in one transaction, as a batch's row is
/// (`worker::apply_now`); a race for a new identifier (a unique violation) or a deadlock is
/// tried again, as a batch is. The row's outcome.
async fn apply_one(
    state: &AppState,
    tenant: &Tenant,
    contact: &Value,
    options: &ImportOptions,
    rules: &Rules<'_>,
) -> Result<plan::RowOutcome, ApiError> {
    let parsed = validate::validate_contact(contact, rules);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(8)
        .with_jitter();
    let outcome = (|| async {
        let mut tx = state.pool.begin().await?;
        store::groups::ensure(&mut tx, tenant.id, &options.group_names).await?;
        let row = plan::RowInput {
            index: 0,
            parsed: parsed.clone(),
            duplicate: false,
            erased: false,
        };
        let applying = plan::Applying {
            source: "api".into(),
            now: OffsetDateTime::now_utc(),
        };
        let mut applied =
            worker::apply_now(&mut tx, tenant.id, vec![row], options, &applying).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(applied.outcomes.remove(0))
    })
    .retry(backoff)
    .when(store::is_transient)
    .await?;
    Ok(outcome)
}

/// `PATCH /api/v1/contacts/{id}`: a JSON merge patch (RFC 7396) of one contact.
#[utoipa::path(
    patch, path = "/api/v1/contacts/{id}", operation_id = "patchContact", tag = "contacts",
    summary = "Change one contact (JSON merge patch)",
    description = "The members sent change and `null` clears; `customAttributes` merge by name (`null` removes one), `tags` replace, `consent` merges by channel (an explicit edit: an opt-out may be turned back), identifiers may change (normalised as at import). The bulk intake's validation and writes apply.",
    params(("id" = uuid::Uuid, Path, description = "The contact's id")),
    request_body(content = crate::api::schema::ContactInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The contact as stored now", body = ContactView),
        (status = 404, description = "No such contact of this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "identifier_conflict, or the contact is deleted (restore it first)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The patch's errors, each pointing at its member (/phone, /customAttributes/plan, …)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ContactView>, ApiError> {
    let id = super::parse_id(&id, "contact")?;
    let body = super::contacts::decoded_body(&state, &headers, body).await?;
    let mut patch = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(patch)) => patch,
        Ok(_) => {
            return Err(ApiError::unprocessable(
                "a merge patch of a contact is a JSON object",
                vec![FieldError::new(
                    "",
                    "invalid_value",
                    "expected a JSON object",
                )],
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {e}"
            )));
        }
    };
    match patch.get("id") {
        None => {}
        Some(Value::String(sent)) if uuid::Uuid::parse_str(sent).ok() == Some(id) => {}
        Some(_) => {
            return Err(ApiError::unprocessable(
                "a contact's id cannot change",
                vec![FieldError::new(
                    "/id",
                    "invalid_value",
                    "leave id out, or send the contact's own",
                )],
            ));
        }
    }
    if validate::json_depth(&body_text(&patch)) > validate::MAX_JSON_DEPTH {
        return Err(ApiError::unprocessable(
            "the patch nests too deep",
            vec![FieldError::new(
                "",
                "invalid_value",
                format!("at most {} levels", validate::MAX_JSON_DEPTH),
            )],
        ));
    }
    patch.insert("id".into(), Value::String(id.to_string()));
    let options = ImportOptions {
        dedupe_on: Identifier::Id,
        mode: Mode::UpdateOnly,
        overwrite: true,
        allow_resubscribe: true,
        ..ImportOptions::default()
    };
    let fields = store::fields::kinds(&state.pool, tenant.id).await?;
    let rules = rules(&options, &fields);
    let outcome = apply_one(&state, &tenant, &Value::Object(patch), &options, &rules).await?;
    let code_of = |issues: &[RowIssue], code| issues.iter().any(|i| i.code == code);
    match outcome.status {
        RowStatus::Failed if code_of(&outcome.errors, ErrorCode::IdentifierConflict) => {
            let mut conflict = ApiError::conflict(
                "another contact already holds an identifier the patch would give; nothing was changed",
            );
            conflict.errors = field_errors(&outcome.errors, "");
            Err(conflict)
        }
        RowStatus::Failed => Err(ApiError::unprocessable(
            "the patch cannot be applied; see errors (nothing was changed)",
            field_errors(&outcome.errors, ""),
        )),
        RowStatus::Skipped if code_of(&outcome.warnings, ErrorCode::DeletedContact) => {
            Err(ApiError::conflict(format!(
                "contact {id} is deleted: restore it (POST /api/v1/contacts/{id}/restore) before changing it"
            )))
        }
        RowStatus::Skipped | RowStatus::Erased => {
            Err(ApiError::not_found(format!("no contact {id}")))
        }
        RowStatus::Created | RowStatus::Updated => contacts::get(&state.pool, tenant.id, id)
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::not_found(format!("no contact {id}"))),
    }
}

fn body_text(patch: &serde_json::Map<String, Value>) -> String {
    serde_json::to_string(patch).unwrap_or_default()
}

/// `POST /api/v1/contact`.
#[utoipa::path(
    post, path = "/api/v1/contact", operation_id = "upsertContact", tag = "contacts",
    summary = "Add or update one contact, at once",
    description = "The bulk intake's rules and options (but none that only an import has: callbackUrl, eventKeyForNewContacts, dryRun, allOrNothing), applied in one transaction without a queue.",
    request_body = crate::api::schema::ContactRequest,
    responses(
        (status = 201, description = "Created", body = SingleOutcome),
        (status = 200, description = "Updated, or skipped (with its warning)", body = SingleOutcome),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "identifier_conflict: applying it would give the contact an identifier another contact holds", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad option, or the contact's own errors, each under /contact", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn upsert(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SingleOutcome>), ApiError> {
    let body = super::contacts::decoded_body(&state, &headers, body).await?;
    let request = intake::parse_single(&body)?;
    let fields = store::fields::kinds(&state.pool, tenant.id).await?;
    let rules = rules(&request.options, &fields);
    let outcome = apply_one(&state, &tenant, &request.contact, &request.options, &rules).await?;
    if outcome.status == RowStatus::Failed {
        let errors = field_errors(&outcome.errors, "/contact");
        if outcome
            .errors
            .iter()
            .any(|e| e.code == ErrorCode::IdentifierConflict)
        {
            let mut conflict = ApiError::conflict(
                "another contact already holds an identifier this contact would get; nothing was changed",
            );
            conflict.errors = errors;
            return Err(conflict);
        }
        return Err(ApiError::unprocessable(
            "the contact cannot be applied; see errors (nothing was changed)",
            errors,
        ));
    }
    let contact = match outcome.contact_id {
        Some(id) => contacts::get(&state.pool, tenant.id, id).await?,
        None => None,
    };
    let code = match outcome.status {
        RowStatus::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    tracing::info!(tenant_id = %tenant.id, status = outcome.status.as_str(), "single contact applied");
    Ok((
        code,
        Json(SingleOutcome {
            status: outcome.status,
            contact,
            warnings: outcome.warnings,
        }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn row_fields_point_into_the_contact() {
        for (field, expected) in [
            ("", "/contact"),
            ("phone", "/contact/phone"),
            ("customAttributes.plan", "/contact/customAttributes/plan"),
            ("consent.sms", "/contact/consent/sms"),
        ] {
            assert_eq!(super::pointer(field), expected);
        }
    }
}
