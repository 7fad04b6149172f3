//! What the intake checks of a request as a whole before anything is stored: custom
//! attributes name fields the tenant has, rows that share their identifier, and the tenant's
//! backlog.

use super::{FieldError, IntakeError};
use crate::import::ImportOptions;
use crate::validate::{self, IntakePart};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// 422 for a BulkUpsert column that is neither one of its own nor a custom field of the
/// tenant (`columns` as given: position and name).
pub fn check_custom_columns(
    columns: &[(usize, String)],
    known: &HashSet<String>,
) -> Result<(), IntakeError> {
    let errors: Vec<FieldError> = columns
        .iter()
        .filter(|(_, name)| !known.contains(name))
        .map(|(i, name)| {
            FieldError::new(
                format!("/columns/{i}"),
                "unknown_column",
                format!("{name:?} is neither a BulkUpsert column (contact_key, new_contact_key, name, surname, email, gsm, birthday, gender, status, email_permit, gsm_permit, email_status, gsm_status) nor a custom field of this tenant"),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IntakeError::invalid(
            "the request names columns that do not exist; nothing was stored",
            errors,
        ))
    }
}

/// 422 for custom attribute names the tenant has not defined (at most 100 listed).
pub fn check_attribute_names(contacts: &[IntakePart]) -> Result<(), IntakeError> {
    let unknown = || {
        contacts.iter().enumerate().flat_map(|(i, contact)| {
            contact
                .unknown_names
                .iter()
                .map(move |(name, at)| (i, name, at))
        })
    };
    let count = unknown().count();
    if count == 0 {
        return Ok(());
    }
    let errors = unknown()
        .take(100)
        .map(|(i, name, at)| {
            FieldError::new(
                format!("/contacts/{i}{}", at.pointer(name)),
                "unknown_field",
                format!("{name:?} is not a custom field of this tenant; create it with POST /api/v1/fields"),
            )
        })
        .collect();
    Err(IntakeError::invalid(
        format!("{count} custom attribute(s) name fields that do not exist; nothing was stored"),
        errors,
    ))
}

/// Indexes of rows whose normalised dedupe identifier another row of the request shares.
pub fn find_duplicates(contacts: &[IntakePart], options: &ImportOptions) -> Vec<i32> {
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(contacts.len());
    let mut duplicates = HashSet::new();
    let parts: Vec<&Value> = contacts.iter().map(|c| &c.identifying).collect();
    let keys = validate::dedupe_keys(&parts, options.dedupe_on, options.default_region.as_deref());
    for (i, key) in keys.into_iter().enumerate() {
        let Some(key) = key else {
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

/// 429 when storing `rows` more rows (`bytes` as sent) would take the tenant's backlog — rows
/// stored and not yet applied, their bytes as stored (`store::packed`) — over its caps, so
/// that one tenant cannot fill the database.
pub async fn check_backlog(
    pool: &PgPool,
    settings: &crate::settings::Settings,
    tenant_id: Uuid,
    rows: u64,
    bytes: u64,
) -> Result<(), IntakeError> {
    let queued = crate::store::limits::queued(pool, tenant_id).await?;
    within_backlog(settings, queued, rows, bytes)
}

/// `check_backlog` with the tenant's backlog read already (`store::limits::queued`).
pub fn within_backlog(
    settings: &crate::settings::Settings,
    (queued_rows, queued_bytes): (i64, i64),
    rows: u64,
    bytes: u64,
) -> Result<(), IntakeError> {
    let (queued_rows, queued_bytes) = (queued_rows.max(0) as u64, queued_bytes.max(0) as u64);
    if queued_rows + rows > settings.max_queued_rows {
        return Err(IntakeError::BacklogFull(format!(
            "this tenant has {queued_rows} rows stored and not yet applied; {rows} more would pass its limit of {} (MAX_QUEUED_ROWS): nothing was stored, retry when earlier imports have progressed",
            settings.max_queued_rows
        )));
    }
    if queued_bytes + bytes > settings.max_queued_bytes {
        return Err(IntakeError::BacklogFull(format!(
            "this tenant has {queued_bytes} bytes of rows stored and not yet applied; {bytes} more would pass its limit of {} (MAX_QUEUED_BYTES): nothing was stored, retry when earlier imports have progressed",
            settings.max_queued_bytes
        )));
    }
    Ok(())
}
