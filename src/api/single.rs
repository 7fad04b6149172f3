//! `POST /api/v1/contact`: one contact, applied at once in one transaction by the bulk
//! intake's own validation, planner and writes (Reteno's "add/update a contact", Gomobile's
//! single create). The answer is the row's outcome with the contact as stored.

use super::AppState;
use super::error::{ApiError, FieldError, Problem};
use crate::intake;
use crate::store::contacts::{self, ContactView};
use crate::store::tenants::Tenant;
use crate::store::{self, RowStatus};
use crate::validate::{self, ErrorCode, RowIssue, Rules};
use crate::worker::{self, plan};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
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

fn field_errors(issues: &[RowIssue]) -> Vec<FieldError> {
    issues
        .iter()
        .map(|i| FieldError::new(pointer(&i.field), i.code.as_str(), i.message.clone()))
        .collect()
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
    let rules = Rules {
        dedupe_on: request.options.dedupe_on,
        default_region: request.options.default_region.as_deref(),
        fields: &fields,
        today: OffsetDateTime::now_utc().date(),
        date_format: request.options.date_format,
    };
    let parsed = validate::validate_contact(&request.contact, &rules);
    let options = &request.options;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(8)
        .with_jitter();
    // A race with a batch or another request for a new identifier (a unique violation) or a
    // deadlock is tried again, as a batch is.
    let outcome = (|| async {
        let mut tx = state.pool.begin().await?;
        store::groups::ensure(&mut tx, tenant.id, &options.group_names).await?;
        let row = plan::RowInput {
            index: 0,
            parsed: parsed.clone(),
            duplicate: false,
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
    if outcome.status == RowStatus::Failed {
        let errors = field_errors(&outcome.errors);
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
