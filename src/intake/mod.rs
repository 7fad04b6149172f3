//! Intake: turn a request into a stored import. Everything the request says is checked
//! here (request-level problems are a 422 before anything is stored), then the import, its
//! batches (which are also the outbox) and its duplicate rows are written in ONE
//! transaction. Only after that commit does the client get 202: nothing accepted is lost.

pub mod csv;
pub mod upload;
pub mod xlsx;

use crate::api::error::{ApiError, FieldError};
use crate::import::{ImportOptions, Mode, Source};
use crate::validate::{self, DedupeOn};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Most contacts one JSON request may carry.
pub const MAX_CONTACTS: usize = 3000;

/// The channel the relay listens on to hear of new batches at once.
pub const OUTBOX_CHANNEL: &str = "contact_import_outbox";

/// Wakes every relay that listens; PostgreSQL delivers it when the transaction commits.
pub async fn notify_outbox(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A checked JSON intake request.
#[derive(Debug)]
pub struct IntakeRequest {
    /// Each contact's JSON text as sent: the batches store it as it is, and only the worker
    /// builds the contact.
    pub contacts: Vec<Box<RawValue>>,
    pub options: ImportOptions,
}

impl IntakeRequest {
    /// What the intake checks of each contact (see `validate::identifying_part`).
    pub fn identifying_parts(&self) -> Vec<Value> {
        self.contacts
            .iter()
            .map(|c| validate::identifying_part(c.get()))
            .collect()
    }
}

/// The 202 body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub async_session_id: Uuid,
    /// Always `queued`.
    #[schema(value_type = String, examples("queued"))]
    pub status: &'static str,
    pub total_rows: i32,
    /// Where to poll the import's status.
    pub status_url: String,
}

impl Accepted {
    /// The answer for a stored import.
    pub fn new(id: Uuid, total_rows: i32) -> Self {
        Self {
            async_session_id: id,
            status: "queued",
            total_rows,
            status_url: format!("/api/v1/imports/{id}"),
        }
    }
}

fn json_error_detail(e: &serde_json::Error) -> String {
    format!("the body is not valid JSON: {e}")
}

pub(crate) fn take_bool(
    body: &Map<String, Value>,
    name: &str,
    default: bool,
    errors: &mut Vec<FieldError>,
) -> bool {
    match body.get(name) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new(
                format!("/{name}"),
                "invalid_value",
                format!("{name} must be true or false"),
            ));
            default
        }
    }
}

pub(crate) fn take_str<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            errors.push(FieldError::new(
                format!("/{name}"),
                "invalid_value",
                format!("{name} must be a string"),
            ));
            None
        }
    }
}

/// Reads the options both intakes share; `identifier` names the dedupe option (`dedupeOn`
/// for JSON, `identifier` for CSV files).
pub(crate) fn import_options(
    body: &Map<String, Value>,
    identifier: &str,
    errors: &mut Vec<FieldError>,
) -> ImportOptions {
    let mut options = ImportOptions::default();
    if let Some(s) = take_str(body, identifier, errors) {
        match DedupeOn::parse(s) {
            Some(on) => options.dedupe_on = on,
            None => errors.push(FieldError::new(
                format!("/{identifier}"),
                "invalid_value",
                format!("unknown {identifier} {s:?}: use phone, email or externalId"),
            )),
        }
    }
    if let Some(s) = take_str(body, "mode", errors) {
        match Mode::parse(s) {
            Some(mode) => options.mode = mode,
            None => errors.push(FieldError::new(
                "/mode",
                "invalid_value",
                format!("unknown mode {s:?}: use upsert, insertOnly, updateOnly or createAll"),
            )),
        }
    }
    if let Some(s) = take_str(body, "defaultRegion", errors) {
        match validate::parse_region(s) {
            Some(region) => options.default_region = Some(region),
            None => errors.push(FieldError::new(
                "/defaultRegion",
                "invalid_value",
                format!(
                    "{s:?} is not an ISO 3166-1 alpha-2 region with phone numbers (e.g. MA, GB, US)"
                ),
            )),
        }
    }
    options.overwrite = take_bool(body, "overwrite", true, errors);
    options.restore_deleted = take_bool(body, "restoreDeleted", false, errors);
    options.dry_run = take_bool(body, "dryRun", false, errors);
    options.tags = take_labels(body, "tags", validate::TAG, errors);
    options.tags_remove = take_labels(body, "tagsRemove", validate::TAG, errors);
    options.group_names = take_labels(body, "groupNames", validate::GROUP, errors);
    options.group_names_exclude = take_labels(body, "groupNamesExclude", validate::GROUP, errors);
    if let Some(url) = take_str(body, "callbackUrl", errors) {
        // Its host is resolved and checked by the handler (`callback::check_url`).
        options.callback_url = Some(url.trim().to_owned());
    }
    if let Some(key) = take_str(body, "eventKeyForNewContacts", errors) {
        match check_event_key(key) {
            Ok(key) => options.event_key_for_new_contacts = Some(key),
            Err(message) => errors.push(FieldError::new(
                "/eventKeyForNewContacts",
                "invalid_value",
                message,
            )),
        }
    }
    options
}

/// An event key is the events' routing key on a topic exchange: 1 to 255 bytes of visible
/// ASCII, without the binding wildcards (`newContact`, `crm.contact.created`).
fn check_event_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key.len() <= 255
        && key.bytes().all(|b| b.is_ascii_graphic())
        && !key.contains(['*', '#']);
    if valid {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "eventKeyForNewContacts {key:?} must be 1 to 255 visible ASCII characters without * or # (it is the events' routing key)"
        ))
    }
}

/// A request-level list of tags or group names; absent or null is none.
fn take_labels(
    body: &Map<String, Value>,
    name: &str,
    label: validate::tags::Label,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    match body.get(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => validate::read_labels(value, label).unwrap_or_else(|(at, message)| {
            let pointer = match at {
                Some(i) => format!("/{name}/{i}"),
                None => format!("/{name}"),
            };
            errors.push(FieldError::new(pointer, "invalid_value", message));
            Vec::new()
        }),
    }
}

/// Reads the body of `POST /api/v1/contacts`: 400 when it is not JSON, 422 (with pointers)
/// when a request-level option or the number of contacts is wrong.
pub fn parse(body: &[u8]) -> Result<IntakeRequest, ApiError> {
    // The members as JSON text: this checks the whole body's syntax, but builds nothing of the
    // contacts (the bulk of it).
    let members: BTreeMap<String, &RawValue> = match serde_json::from_slice(body) {
        Ok(members) => members,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(ApiError::unprocessable(
                "the body must be a JSON object with a contacts array",
                vec![FieldError::new(
                    "",
                    "invalid_value",
                    "expected a JSON object",
                )],
            ));
        }
        Err(e) => return Err(ApiError::bad_request(json_error_detail(&e))),
    };
    let mut body = Map::new();
    let mut contacts_text = None;
    for (name, raw) in members {
        if name == "contacts" {
            contacts_text = Some(raw);
        } else {
            let value = serde_json::from_str(raw.get())
                .map_err(|e| ApiError::bad_request(json_error_detail(&e)))?;
            body.insert(name, value);
        }
    }
    let mut errors = Vec::new();
    let contacts =
        match contacts_text.map(|raw| (raw, serde_json::from_str::<Vec<&RawValue>>(raw.get()))) {
            Some((_, Ok(contacts))) => contacts.into_iter().map(RawValue::to_owned).collect(),
            None => {
                errors.push(FieldError::new(
                    "/contacts",
                    "missing_contacts",
                    "contacts is required: an array of 1 to 3000 contacts",
                ));
                Vec::new()
            }
            Some((raw, Err(_))) if raw.get() == "null" => {
                errors.push(FieldError::new(
                    "/contacts",
                    "missing_contacts",
                    "contacts is required: an array of 1 to 3000 contacts",
                ));
                Vec::new()
            }
            Some((_, Err(_))) => {
                errors.push(FieldError::new(
                    "/contacts",
                    "invalid_value",
                    "contacts must be an array of contacts",
                ));
                Vec::new()
            }
        };
    if errors.is_empty() && contacts.is_empty() {
        errors.push(FieldError::new(
            "/contacts",
            "no_contacts",
            "contacts is empty: send 1 to 3000 contacts",
        ));
    }
    if contacts.len() > MAX_CONTACTS {
        errors.push(FieldError::new(
            format!("/contacts/{MAX_CONTACTS}"),
            "too_many_contacts",
            format!("{} contacts sent; one request takes at most {MAX_CONTACTS} (use a CSV import for more)", contacts.len()),
        ));
    }
    if body.get("emptyCellsClear").is_some_and(|v| !v.is_null()) {
        errors.push(FieldError::new(
            "/emptyCellsClear",
            "invalid_value",
            "emptyCellsClear is an option of CSV imports; in JSON, send null to clear a field",
        ));
    }
    let mut options = import_options(&body, "dedupeOn", &mut errors);
    options.all_or_nothing = take_bool(&body, "allOrNothing", false, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(
            "the request cannot be accepted as it is; see errors",
            errors,
        ));
    }
    Ok(IntakeRequest { contacts, options })
}

/// 422 for custom attribute names the tenant has not defined (at most 100 listed).
pub fn check_attribute_names(contacts: &[Value], known: &HashSet<String>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut count = 0usize;
    for (i, contact) in contacts.iter().enumerate() {
        for (name, pointer) in validate::attribute_names(contact) {
            if !known.contains(&name) {
                count += 1;
                if errors.len() < 100 {
                    errors.push(FieldError::new(
                        format!("/contacts/{i}{pointer}"),
                        "unknown_field",
                        format!("{name:?} is not a custom field of this tenant; create it with POST /api/v1/fields"),
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            format!(
                "{count} custom attribute(s) name fields that do not exist; nothing was stored"
            ),
            errors,
        ))
    }
}

/// Indexes of rows whose normalised dedupe identifier another row of the request shares.
pub fn find_duplicates(contacts: &[Value], options: &ImportOptions) -> Vec<i32> {
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(contacts.len());
    let mut duplicates = HashSet::new();
    for (i, contact) in contacts.iter().enumerate() {
        let Some(key) = validate::dedupe_key(
            contact,
            options.dedupe_on,
            options.default_region.as_deref(),
        ) else {
            continue;
        };
        match first_seen.get(&key) {
            Some(&first) => {
                duplicates.insert(first as i32);
                duplicates.insert(i as i32);
            }
            None => {
                first_seen.insert(key, i);
            }
        }
    }
    let mut out: Vec<i32> = duplicates.into_iter().collect();
    out.sort_unstable();
    out
}

/// The JSON array of these contacts' texts, as the worker reads a batch.
fn json_array(contacts: &[Box<RawValue>]) -> Vec<u8> {
    let len = contacts.iter().map(|c| c.get().len() + 1).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, contact) in contacts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(contact.get().as_bytes());
    }
    out.push(b']');
    out
}

/// 429 when storing `rows` more rows (`bytes` as sent) would take the tenant's backlog — rows
/// stored and not yet applied — over its caps, so that one tenant cannot fill the database.
pub async fn check_backlog(
    pool: &PgPool,
    settings: &crate::settings::Settings,
    tenant_id: Uuid,
    rows: u64,
    bytes: u64,
) -> Result<(), ApiError> {
    let (queued_rows, queued_bytes) = crate::store::limits::queued(pool, tenant_id).await?;
    let (queued_rows, queued_bytes) = (queued_rows.max(0) as u64, queued_bytes.max(0) as u64);
    if queued_rows + rows > settings.max_queued_rows {
        return Err(ApiError::backlog_full(format!(
            "this tenant has {queued_rows} rows stored and not yet applied; {rows} more would pass its limit of {} (MAX_QUEUED_ROWS): nothing was stored, retry when earlier imports have progressed",
            settings.max_queued_rows
        )));
    }
    if queued_bytes + bytes > settings.max_queued_bytes {
        return Err(ApiError::backlog_full(format!(
            "this tenant has {queued_bytes} bytes of rows stored and not yet applied; {bytes} more would pass its limit of {} (MAX_QUEUED_BYTES): nothing was stored, retry when earlier imports have progressed",
            settings.max_queued_bytes
        )));
    }
    Ok(())
}

/// An `Idempotency-Key` and the hash of the body it came with.
pub struct Idempotency {
    pub key: String,
    pub body_hash: Vec<u8>,
}

/// Stores the import with its batches and duplicate rows in one transaction. A repeated
/// idempotency key with the same body answers the first import; with another body, 422.
pub async fn store(
    pool: &PgPool,
    tenant_id: Uuid,
    request: &IntakeRequest,
    duplicates: &[i32],
    batch_size: usize,
    idempotency: Option<&Idempotency>,
) -> Result<Accepted, ApiError> {
    let total_rows = request.contacts.len() as i32;
    // All or nothing is one transaction, so one batch (a request holds at most 3000 rows).
    let batch_size = if request.options.all_or_nothing {
        MAX_CONTACTS
    } else {
        batch_size.max(1)
    };
    let chunks: Vec<&[Box<RawValue>]> = request.contacts.chunks(batch_size).collect();
    let options = serde_json::to_value(&request.options).map_err(|_| ApiError::internal())?;
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO imports (id, tenant_id, source, status, options, total_rows, batch_count, idempotency_key, request_hash)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(Source::Api.as_str())
    .bind(&options)
    .bind(total_rows)
    .bind(chunks.len() as i32)
    .bind(idempotency.map(|i| i.key.as_str()))
    .bind(idempotency.map(|i| i.body_hash.as_slice()))
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_none() {
        tx.rollback().await?;
        return replay(pool, tenant_id, idempotency).await;
    }
    crate::store::imports::prepare(&mut tx, tenant_id, id, &request.options).await?;

    let mut batch_no = Vec::with_capacity(chunks.len());
    let mut first_row = Vec::with_capacity(chunks.len());
    let mut row_count = Vec::with_capacity(chunks.len());
    let mut payload = Vec::with_capacity(chunks.len());
    let mut next_row = 0i32;
    for (no, chunk) in chunks.iter().enumerate() {
        batch_no.push(no as i32);
        first_row.push(next_row);
        row_count.push(chunk.len() as i32);
        payload.push(json_array(chunk));
        next_row += chunk.len() as i32;
    }
    sqlx::query(
        "INSERT INTO import_batches (import_id, tenant_id, batch_no, first_row, row_count, payload)
         SELECT $1, $2, u.batch_no, u.first_row, u.row_count, u.payload
         FROM UNNEST($3::int[], $4::int[], $5::int[], $6::bytea[]) AS u(batch_no, first_row, row_count, payload)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(&batch_no)
    .bind(&first_row)
    .bind(&row_count)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    if !duplicates.is_empty() {
        sqlx::query(
            "INSERT INTO duplicate_rows (import_id, row_index) SELECT $1, UNNEST($2::int[])",
        )
        .bind(id)
        .bind(duplicates)
        .execute(&mut *tx)
        .await?;
    }
    notify_outbox(&mut tx).await?;
    tx.commit().await?;
    Ok(Accepted::new(id, total_rows))
}

async fn replay(
    pool: &PgPool,
    tenant_id: Uuid,
    idempotency: Option<&Idempotency>,
) -> Result<Accepted, ApiError> {
    let Some(idem) = idempotency else {
        return Err(ApiError::internal());
    };
    let row: Option<(Uuid, Option<Vec<u8>>, i32)> = sqlx::query_as(
        "SELECT id, request_hash, total_rows FROM imports WHERE tenant_id = $1 AND idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(&idem.key)
    .fetch_optional(pool)
    .await?;
    match row {
        Some((id, hash, total_rows)) if hash.as_deref() == Some(idem.body_hash.as_slice()) => {
            Ok(Accepted::new(id, total_rows))
        }
        Some(_) => Err(ApiError::unprocessable(
            "this Idempotency-Key was used before with a different body",
            vec![FieldError::new(
                "",
                "idempotency_key_reused",
                "send a new Idempotency-Key for a new request",
            )],
        )),
        None => Err(ApiError::unavailable(
            "the first request with this Idempotency-Key is still being stored; try again",
        )),
    }
}
