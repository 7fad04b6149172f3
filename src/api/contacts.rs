//! `POST /api/v1/contacts` (the asynchronous bulk intake) and the contact look-ups.

use super::error::{ApiError, FieldError, Problem};
use super::{ApiQuery, AppState, parse_id};
use crate::intake::gzip::{self, BodyEncoding};
use crate::intake::{self, Accepted, Idempotency};
use crate::store::contacts::{self, ContactView, Cursor, Filter, SortKey, Start};
use crate::store::imports::{self, ImportStatus};
use crate::store::row_results::{self, RowResultView};
use crate::store::tenants::Tenant;
use crate::store::{fields, limits};
use crate::validate::consent::{Channel, ConsentStatus};
use crate::validate::{self, Identifier};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

fn idempotency(headers: &HeaderMap, body: &[u8]) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(Idempotency {
        key: key.to_owned(),
        body_hash: Sha256::digest(body).to_vec(),
    }))
}

/// A JSON body as sent, decompressed when it says `Content-Encoding: gzip`; 413 past
/// `MAX_BODY_BYTES` either way, 415 for another encoding.
pub(super) async fn decoded_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let body = body.map_err(|e| ApiError::body(&e, state.settings.max_body_bytes))?;
    let encoding = BodyEncoding::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    )?;
    Ok(match encoding {
        BodyEncoding::Identity => body,
        BodyEncoding::Gzip => {
            let limit = state.settings.max_body_bytes;
            tokio::task::spawn_blocking(move || gzip::gunzip(&body, limit, "request body"))
                .await
                .map_err(|_| ApiError::internal())??
                .into()
        }
    })
}

/// `POST /api/v1/contacts`: 202 once the request is durably stored.
#[utoipa::path(
    post, path = "/api/v1/contacts", operation_id = "importContacts", tag = "contacts",
    summary = "Add or update up to 3000 contacts, asynchronously",
    description = "Answers 202 once the request is durably stored; workers then validate and apply each row. A problem in one contact fails that row only (see the import's rows). With the header `Prefer: wait=N` (RFC 7240, N ≤ 60 seconds), an import final within N seconds is answered 200 with its status and every row, and `Preference-Applied: wait=N`. (The header is not listed as a parameter: its answer depends on time, which a contract run cannot hold constant.) The body may also be in BulkUpsert's shape, `{\"columns\": [...], \"contactDatas\": [[...]], \"insertIfNotExists\", \"failOnError\"}` (docs/api.md); it is described here, not as a second schema, whose union the contract run's generator cannot draw from.",
    request_body = crate::api::schema::ContactsRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A repeat with the same key and body answers the first 202 and imports nothing twice; the same key with another body is a 422", max_length = 255, pattern = "^[\\x21-\\x7E]([\\x20-\\x7E]*[\\x21-\\x7E])?$")),
    responses(
        (status = 202, description = "Stored; poll `statusUrl`", body = Accepted),
        (status = 200, description = "With `Prefer: wait=N`: the import was final within N seconds; its status and every row", body = WaitedImport, headers(("Preference-Applied" = String, description = "wait=N"))),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (decompressed, when it is gzip)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A Content-Encoding other than gzip (the body may be sent gzip-compressed; every limit counts it decompressed)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A request-level problem: 0 or more than 3000 contacts, an unknown option value or custom attribute name; `errors` points at each", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn intake(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let wait = preferred_wait(&headers);
    let body = decoded_body(&state, &headers, body).await?;
    // Of the body as decompressed: the same request, compressed or not, is the same request.
    let idempotency = idempotency(&headers, &body)?;
    // The two reads a request needs, the tenant's fields and its backlog, at once.
    let (known, queued) = tokio::try_join!(
        fields::kinds(&state.pool, tenant.id),
        limits::queued(&state.pool, tenant.id)
    )?;
    let known: HashSet<String> = known.into_keys().collect();
    // Parsing up to 3000 contacts, normalising their identifiers (phone parsing) and cutting
    // them into batches is CPU work of several milliseconds: keep it off the I/O threads,
    // which serve the status polls.
    let batch_size = state.settings.batch_size as usize;
    let import = tokio::task::spawn_blocking(move || {
        let request = intake::parse(&body)?;
        intake::check_custom_columns(&request.custom_columns, &known)?;
        let parts = request.read_contacts(&known);
        intake::check_attribute_names(&parts)?;
        let duplicates = intake::find_duplicates(&parts, &request.options);
        Ok::<_, intake::IntakeError>(request.into_import(duplicates, batch_size))
    })
    .await
    .map_err(|_| ApiError::internal())??;
    if let Some(url) = &import.options.callback_url {
        crate::callback::check_url(url, state.settings.callback_allow_private)
            .await
            .map_err(ApiError::bad_callback)?;
    }
    intake::within_backlog(
        &state.settings,
        queued,
        import.total_rows as u64,
        import.bytes,
    )?;
    let accepted = intake::store(&state.by_key, tenant.id, &import, idempotency.as_ref()).await?;
    state.relay_wake.notify_one();
    tracing::info!(import_id = %accepted.async_session_id, tenant_id = %tenant.id, rows = accepted.total_rows, "import accepted");
    if let Some(seconds) = wait
        && let Some(finished) = wait_final(&state, &tenant, &accepted, seconds).await?
    {
        let mut answer = Json(finished).into_response();
        let applied =
            HeaderValue::from_str(&format!("wait={seconds}")).map_err(|_| ApiError::internal())?;
        answer.headers_mut().insert("preference-applied", applied);
        return Ok(answer);
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// The longest `Prefer: wait` honoured, in seconds.
const MAX_WAIT_SECS: u64 = 60;

/// `Prefer: wait=N` (RFC 7240), N seconds at most `MAX_WAIT_SECS` (a longer wait is cut to
/// it); `None` without one, or with 0.
fn preferred_wait(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|preference| {
            let (name, value) = preference.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .map(|n| n.min(MAX_WAIT_SECS))
        .filter(|n| *n > 0)
}

/// An import's final status with every row's result, the answer to `Prefer: wait`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WaitedImport {
    #[serde(flatten)]
    pub status: ImportStatus,
    /// Every row's result, as `/rows` gives them.
    pub rows: Vec<RowResultView>,
}

/// Polls the import until it is final or `seconds` have passed: its status and rows, or `None`
/// (then the client gets the usual 202).
async fn wait_final(
    state: &AppState,
    tenant: &Tenant,
    accepted: &Accepted,
    seconds: u64,
) -> Result<Option<WaitedImport>, ApiError> {
    let id = accepted.async_session_id;
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        let status = imports::status(&state.by_key, tenant.id, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no import {id}")))?;
        if status.status.is_final() {
            let limit = i64::from(status.total_rows.max(1));
            let rows = row_results::page(&state.pool, tenant.id, id, None, None, limit).await?;
            return Ok(Some(WaitedImport { status, rows }));
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(until - now)).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(250));
    }
}

/// The last page number `GET /api/v1/contacts` takes: with 1000 a page, ten billion contacts.
const MAX_PAGE: i64 = 10_000_000;

/// Query of `GET /api/v1/contacts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Contacts matching every term of this (at most 100 characters): a term matches the start
    /// of a word of the names or the email (its local part and its domain), case- and
    /// accent-insensitively; a term of digits matches the start of the phone, with or without
    /// its country code, or its end.
    search: Option<String>,
    /// Sort key: firstName, lastName, phone, email or createdAt (default).
    #[param(pattern = "^(firstName|lastName|phone|email|createdAt)?$")]
    sort: Option<String>,
    /// asc or desc (default).
    #[param(pattern = "^(asc|desc)?$")]
    order: Option<String>,
    /// Exact look-up by phone (any writing with its country code).
    phone: Option<String>,
    /// Exact look-up by email (case and surrounding spaces ignored).
    email: Option<String>,
    /// Exact look-up by external id.
    external_id: Option<String>,
    /// Only contacts with this tag.
    tag: Option<String>,
    /// Only contacts in the group of this name.
    group: Option<String>,
    /// Also list soft-deleted contacts.
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
    /// 1-based page number.
    #[param(minimum = 1, maximum = 10_000_000)]
    page: Option<i64>,
    /// The next page after a page: its `meta.nextCursor` (same cost at any depth). It carries
    /// the sort and order it was given for; `sort` and `order` may be left out.
    after: Option<String>,
    /// Contacts per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    per_page: Option<i64>,
}

/// A page of contacts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactPage {
    pub data: Vec<ContactView>,
    pub meta: PageMeta,
}

/// Where a page is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    /// The page number; null for a page read `after` a cursor.
    pub page: Option<i64>,
    pub per_page: i64,
    /// Contacts matching the query, over every page.
    pub total: i64,
    /// `total` is an estimate: more contacts matched than are counted exactly (1,000).
    pub total_is_estimate: bool,
    /// `after` this for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A phone from a query string: a `+` sent unencoded arrives as a space.
pub(super) fn phone_from_query(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let international = if trimmed.starts_with('+') || trimmed.starts_with("00") {
        trimmed.to_owned()
    } else {
        format!("+{trimmed}")
    };
    validate::normalize_phone(&international, None)
        .ok()
        .map(|p| p.as_str().to_owned())
}

/// `GET /api/v1/contacts`: the tenant's contacts, newest first, or exact look-ups.
#[utoipa::path(
    get, path = "/api/v1/contacts", operation_id = "listContacts", tag = "contacts",
    summary = "List the tenant's contacts, or look one up by identifier",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of contacts", body = ContactPage),
        (status = 422, description = "Bad paging parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(100);
    let mut errors = Vec::new();
    if !(1..=MAX_PAGE).contains(&page) {
        errors.push(FieldError::new(
            "page",
            "invalid_value",
            format!("page is 1 to {MAX_PAGE}"),
        ));
    }
    if !(1..=1000).contains(&per_page) {
        errors.push(FieldError::new(
            "perPage",
            "invalid_value",
            "perPage is 1 to 1000",
        ));
    }
    let after = match q.after.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(token) => {
            let cursor = Cursor::decode(token);
            if cursor.is_none() {
                errors.push(FieldError::new(
                    "after",
                    "invalid_value",
                    "after is not a nextCursor of this API",
                ));
            }
            if q.page.is_some() {
                errors.push(FieldError::new(
                    "page",
                    "invalid_value",
                    "page and after cannot be used together",
                ));
            }
            cursor
        }
    };
    let sort = match q.sort.as_deref() {
        None | Some("") => after.as_ref().map_or_else(SortKey::default, |c| c.sort),
        Some(s) => SortKey::parse(s).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "sort",
                "invalid_value",
                format!("sort {s:?} is not one of firstName, lastName, phone, email, createdAt"),
            ));
            SortKey::default()
        }),
    };
    let ascending = match q.order.as_deref() {
        None | Some("") => after.as_ref().is_some_and(|c| c.ascending),
        Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            errors.push(FieldError::new(
                "order",
                "invalid_value",
                format!("order {other:?} is asc or desc"),
            ));
            false
        }
    };
    if let Some(cursor) = &after
        && (cursor.sort != sort || cursor.ascending != ascending)
    {
        errors.push(FieldError::new(
            "after",
            "invalid_value",
            format!(
                "after is a cursor of sort={}&order={}, not of this sort",
                cursor.sort.as_str(),
                if cursor.ascending { "asc" } else { "desc" }
            ),
        ));
    }
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 100) {
        errors.push(FieldError::new(
            "search",
            "invalid_value",
            "search is at most 100 characters",
        ));
    }
    let consent = consent_filter(
        [
            (Channel::Email, &q.consent_email),
            (Channel::Sms, &q.consent_sms),
            (Channel::Whatsapp, &q.consent_whatsapp),
            (Channel::Call, &q.consent_call),
        ],
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::unprocessable("bad query parameters", errors));
    }
    // Both are bounded above, so this cannot overflow.
    let start = match after {
        Some(cursor) => Start::After(cursor),
        None => Start::Offset((page - 1) * per_page),
    };
    let page = q.after.is_none().then_some(page);
    let exact = match (&q.phone, &q.email, &q.external_id) {
        (Some(p), _, _) => Some((Identifier::Phone, phone_from_query(p))),
        (_, Some(e), _) => Some((Identifier::Email, Some(e.trim().to_lowercase()))),
        (_, _, Some(x)) => Some((Identifier::ExternalId, Some(x.trim().to_owned()))),
        _ => None,
    };
    let tag = q.tag.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let group = q.group.as_deref().map(str::trim).filter(|g| !g.is_empty());
    let value = match &exact {
        // An identifier that cannot be normalised is held by no contact.
        Some((_, None)) => {
            return Ok(Json(ContactPage {
                data: Vec::new(),
                meta: PageMeta {
                    page,
                    per_page,
                    total: 0,
                    total_is_estimate: false,
                    next_cursor: None,
                },
            }));
        }
        Some((identifier, Some(value))) => Some((*identifier, value.as_str())),
        None => None,
    };
    let filter = Filter {
        exact: value,
        tag,
        group,
        search,
        consent,
        include_deleted: q.include_deleted,
    };
    let found = contacts::page(
        &state.pool,
        tenant.id,
        filter,
        sort,
        ascending,
        start,
        per_page,
    )
    .await?;
    Ok(Json(ContactPage {
        data: found.rows,
        meta: PageMeta {
            page,
            per_page,
            total: found.total,
            total_is_estimate: found.total_is_estimate,
            next_cursor: found.next.map(|c| c.encode()),
        },
    }))
}

/// `GET /api/v1/contacts/{id}`.
#[utoipa::path(
    get, path = "/api/v1/contacts/{id}", operation_id = "getContact", tag = "contacts", summary = "One contact",
    params(("id" = uuid::Uuid, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact, deleted or not", body = ContactView),
        (status = 404, description = "No such contact of this tenant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let id = parse_id(&id, "contact")?;
    contacts::get(&state.pool, tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no contact {id}")))
}

/// Query of `DELETE /api/v1/contacts/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Erase for good instead of a soft delete: the contact, its memberships and events, and
    /// its row in every stored import and result (which becomes `erased`). Answers 204.
    #[serde(default)]
    erase: bool,
}

/// `DELETE /api/v1/contacts/{id}`: soft-deletes the contact (it keeps its identifiers, so a
/// later import matches it: skipped with `deleted_contact`, or restored with
/// `restoreDeleted`); answers the contact. Deleting a deleted contact changes nothing. With
/// `?erase=true` the contact is erased for good, everywhere the service stored it.
#[utoipa::path(
    delete, path = "/api/v1/contacts/{id}", operation_id = "deleteContact", tag = "contacts", summary = "Soft-delete a contact, or erase it for good",
    params(("id" = uuid::Uuid, Path, description = "The contact's id"), DeleteQuery),
    responses(
        (status = 200, description = "Soft-deleted: the contact, with its deletedAt", body = ContactView),
        (status = 204, description = "Erased (`?erase=true`): no copy of it is left"),
        (status = 404, description = "No such contact of this tenant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_one(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Response, ApiError> {
    if !q.erase {
        return Ok(set_deleted(&state, &tenant, &id, true)
            .await?
            .into_response());
    }
    let id = parse_id(&id, "contact")?;
    match crate::store::erasure::erase(&state.pool, tenant.id, id).await? {
        crate::store::erasure::Erasure::NotFound => {
            Err(ApiError::not_found(format!("no contact {id}")))
        }
        crate::store::erasure::Erasure::Erased { rows } => {
            // Neither the id nor anything of the contact: the tenant and a count only.
            tracing::info!(tenant_id = %tenant.id, stored_rows = rows, "contact erased");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

/// `POST /api/v1/contacts/{id}/restore`: undoes a soft delete; answers the contact.
#[utoipa::path(
    post, path = "/api/v1/contacts/{id}/restore", operation_id = "restoreContact", tag = "contacts", summary = "Undo a soft delete",
    params(("id" = uuid::Uuid, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact", body = ContactView),
        (status = 404, description = "No such contact of this tenant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn restore(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    set_deleted(&state, &tenant, &id, false).await
}

async fn set_deleted(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    deleted: bool,
) -> Result<Json<ContactView>, ApiError> {
    let id = parse_id(id, "contact")?;
    let contact = contacts::set_deleted(&state.pool, tenant.id, id, deleted)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no contact {id}")))?;
    tracing::info!(contact_id = %id, tenant_id = %tenant.id, deleted, "contact soft-delete changed");
    Ok(Json(contact))
}

/// The `consent.<channel>` filter of a listing or an export: one channel at most, `optedIn`,
/// `optedOut` or `unset`; problems go to `errors`.
pub(super) fn consent_filter(
    given: [(Channel, &Option<String>); 4],
    errors: &mut Vec<FieldError>,
) -> Option<(Channel, Option<ConsentStatus>)> {
    let mut consent = None;
    for (channel, value) in given {
        let Some(value) = value.as_deref() else {
            continue;
        };
        let status = match value {
            "optedIn" => Some(ConsentStatus::OptedIn),
            "optedOut" => Some(ConsentStatus::OptedOut),
            "unset" => None,
            _ => {
                errors.push(FieldError::new(
                    format!("consent.{}", channel.as_str()),
                    "invalid_value",
                    "a consent filter is optedIn, optedOut or unset",
                ));
                continue;
            }
        };
        if consent.replace((channel, status)).is_some() {
            errors.push(FieldError::new(
                format!("consent.{}", channel.as_str()),
                "invalid_value",
                "filter on one channel's consent at a time",
            ));
        }
    }
    consent
}
