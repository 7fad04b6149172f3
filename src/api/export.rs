//! `GET /api/v1/contacts/export.csv` (and `?format=ndjson`): every contact the list's filters
//! match, streamed a chunk of `CHUNK` contacts at a time in creation order (keyset paging, so
//! each chunk costs the same however deep), never the whole set in memory. The CSV has one
//! column per field, status, channel and custom field, tags and groups `;`-joined, formula
//! cells escaped; it imports back as it is.

use super::contacts::consent_filter;
use super::error::{ApiError, Problem};
use super::{ApiQuery, AppState};
use crate::store::contacts::{self, ContactView, ExportCursor, Filter};
use crate::store::fields;
use crate::store::tenants::Tenant;
use crate::validate::Identifier;
use crate::validate::consent::Channel;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Contacts read per query.
const CHUNK: i64 = 1000;

/// The fixed columns of the CSV export, in `row`'s order (then the custom fields and the
/// timestamps).
fn columns() -> impl Iterator<Item = &'static str> {
    std::iter::once("id")
        .chain(crate::validate::CONTACT_FIELDS)
        .chain(crate::validate::consent::FLAT_MEMBERS)
        .chain(["tags", "groups"])
}

/// Query of the export: the list's filters, and the format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `ndjson`: one contact, as `GET /api/v1/contacts/{id}` gives it, per
    /// line.
    #[param(pattern = "^(csv|ndjson)?$")]
    format: Option<String>,
    /// As for the list.
    search: Option<String>,
    /// Only the contact with this phone (any writing with its country code).
    phone: Option<String>,
    /// Only the contact with this email.
    email: Option<String>,
    /// Only the contact with this external id.
    external_id: Option<String>,
    /// Only contacts with this tag.
    tag: Option<String>,
    /// Only contacts in the group of this name.
    group: Option<String>,
    /// Also export soft-deleted contacts.
    #[serde(default)]
    include_deleted: bool,
    /// Only contacts whose email consent is this: optedIn, optedOut or unset.
    #[serde(rename = "consent.email")]
    #[param(rename = "consent.email", pattern = "^(optedIn|optedOut|unset)$")]
    consent_email: Option<String>,
    /// The same for sms.
    #[serde(rename = "consent.sms")]
    #[param(rename = "consent.sms", pattern = "^(optedIn|optedOut|unset)$")]
    consent_sms: Option<String>,
    /// The same for whatsapp.
    #[serde(rename = "consent.whatsapp")]
    #[param(rename = "consent.whatsapp", pattern = "^(optedIn|optedOut|unset)$")]
    consent_whatsapp: Option<String>,
    /// The same for call.
    #[serde(rename = "consent.call")]
    #[param(rename = "consent.call", pattern = "^(optedIn|optedOut|unset)$")]
    consent_call: Option<String>,
}

/// What the export writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

/// The filters, owned, so that the stream can keep them.
#[derive(Clone)]
struct Query {
    tenant_id: Uuid,
    /// An exact look-up; `Some((_, None))` names a value no contact can hold.
    exact: Option<(Identifier, Option<String>)>,
    search: Option<String>,
    tag: Option<String>,
    group: Option<String>,
    include_deleted: bool,
    consent: Option<(Channel, Option<crate::validate::consent::ConsentStatus>)>,
}

impl Query {
    async fn chunk(
        &self,
        pool: &PgPool,
        after: ExportCursor,
    ) -> Result<Vec<ContactView>, sqlx::Error> {
        let exact = match &self.exact {
            Some((_, None)) => return Ok(Vec::new()),
            Some((identifier, Some(value))) => Some((*identifier, value.as_str())),
            None => None,
        };
        let filter = Filter {
            exact,
            tag: self.tag.as_deref(),
            group: self.group.as_deref(),
            search: self.search.as_deref(),
            consent: self.consent,
            include_deleted: self.include_deleted,
        };
        contacts::export_chunk(pool, self.tenant_id, filter, after, CHUNK).await
    }
}

/// `GET /api/v1/contacts/export.csv`.
#[utoipa::path(
    get, path = "/api/v1/contacts/export.csv", operation_id = "exportContacts", tag = "contacts",
    summary = "Every matching contact, streamed (CSV or NDJSON)",
    description = "The list's filters (search, exact look-ups, tag, group, includeDeleted, consent); oldest first. CSV: `id`, the identifiers, name, address and profile fields, `status`, `emailStatus`, `phoneStatus`, one `consent.<channel>` column per channel, `tags` and `groups` (`;`-joined), one column per custom field, `createdAt`, `updatedAt`; formula cells escaped. `?format=ndjson`: one contact per line.",
    params(ExportQuery),
    responses(
        (status = 200, description = "The contacts: CSV, or NDJSON with `format=ndjson`", content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 422, description = "Bad query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let format = match q.format.as_deref() {
        None | Some("") | Some("csv") => Format::Csv,
        Some("ndjson") => Format::Ndjson,
        Some(other) => {
            errors.push(super::error::FieldError::new(
                "format",
                "invalid_value",
                format!("format {other:?} is csv or ndjson"),
            ));
            Format::Csv
        }
    };
    let consent = consent_filter(
        [
            (Channel::Email, &q.consent_email),
            (Channel::Sms, &q.consent_sms),
            (Channel::Whatsapp, &q.consent_whatsapp),
            (Channel::Call, &q.consent_call),
        ],
        &mut errors,
    );
    let trimmed = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let search = trimmed(&q.search);
    if search.as_ref().is_some_and(|s| s.chars().count() > 100) {
        errors.push(super::error::FieldError::new(
            "search",
            "invalid_value",
            "search is at most 100 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable("bad query parameters", errors));
    }
    let exact = match (&q.phone, &q.email, &q.external_id) {
        (Some(p), _, _) => Some((Identifier::Phone, super::contacts::phone_from_query(p))),
        (_, Some(e), _) => Some((Identifier::Email, Some(e.trim().to_lowercase()))),
        (_, _, Some(x)) => Some((Identifier::ExternalId, Some(x.trim().to_owned()))),
        _ => None,
    };
    let query = Query {
        tenant_id: tenant.id,
        exact,
        search,
        tag: trimmed(&q.tag),
        group: trimmed(&q.group),
        include_deleted: q.include_deleted,
        consent,
    };
    let mut custom: Vec<String> = fields::kinds(&state.pool, tenant.id)
        .await?
        .into_keys()
        .collect();
    custom.sort();
    let head = match format {
        Format::Csv => {
            let header = columns()
                .map(str::to_owned)
                .chain(custom.iter().cloned())
                .chain(["createdAt".to_owned(), "updatedAt".to_owned()]);
            super::results::encode([header.collect::<Vec<_>>()])
        }
        Format::Ndjson => Bytes::new(),
    };
    let pool = state.pool.clone();
    let chunks = futures_util::stream::unfold(Some(None), move |cursor: Option<ExportCursor>| {
        let (pool, query, custom) = (pool.clone(), query.clone(), custom.clone());
        async move {
            let after = cursor?;
            match query.chunk(&pool, after).await {
                Ok(contacts) if contacts.is_empty() => None,
                Ok(contacts) => {
                    let next = contacts.last().map(|c| c.id);
                    let done = (contacts.len() as i64) < CHUNK;
                    let bytes = match format {
                        Format::Csv => {
                            super::results::encode(contacts.iter().map(|c| row(c, &custom)))
                        }
                        Format::Ndjson => encode_ndjson(&contacts),
                    };
                    let next = if done { None } else { Some(next) };
                    Some((Ok::<_, std::io::Error>(bytes), next))
                }
                Err(e) => {
                    tracing::error!(tenant_id = %query.tenant_id, error = %e, "export cut short");
                    Some((Err(std::io::Error::other("database error")), None))
                }
            }
        }
    });
    let body =
        futures_util::StreamExt::chain(futures_util::stream::once(async move { Ok(head) }), chunks);
    let (content_type, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "contacts.csv"),
        Format::Ndjson => ("application/x-ndjson", "contacts.ndjson"),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .body(Body::from_stream(body))
        .map_err(|_| ApiError::internal())
}

/// One contact's cells, in `columns()` order, then its custom fields, then its timestamps.
fn row(c: &ContactView, custom: &[String]) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let consent = |channel: Channel| {
        c.consent
            .get(&channel)
            .map(|x| x.status.as_str().to_owned())
            .unwrap_or_default()
    };
    let time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut cells = vec![
        c.id.to_string(),
        text(&c.external_id),
        text(&c.phone),
        text(&c.email),
        text(&c.first_name),
        text(&c.last_name),
        text(&c.full_name),
        text(&c.occupation),
        text(&c.preferred_channel),
        text(&c.gender),
        c.birthday.map(|d| d.to_string()).unwrap_or_default(),
        text(&c.address),
        text(&c.city),
        text(&c.state),
        text(&c.zip),
        c.status.clone(),
        c.email_status.clone(),
        c.phone_status.clone(),
        consent(Channel::Email),
        consent(Channel::Sms),
        consent(Channel::Whatsapp),
        consent(Channel::Call),
        c.tags.join(";"),
        c.groups.join(";"),
    ];
    for name in custom {
        cells.push(match c.custom_attributes.get(name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        });
    }
    cells.push(time(c.created_at));
    cells.push(time(c.updated_at));
    cells
}

fn encode_ndjson(contacts: &[ContactView]) -> Bytes {
    let mut out = Vec::new();
    for contact in contacts {
        if serde_json::to_writer(&mut out, contact).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}
