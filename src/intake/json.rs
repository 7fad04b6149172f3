//! The body of `POST /api/v1/contacts`: its syntax is checked whole, its options read, and
//! each contact kept as the JSON text it was sent as (the worker builds the contact).

use super::bulk_upsert;
use super::options::{import_options, take_bool};
use super::{FieldError, IntakeError, IntakeRequest, MAX_CONTACTS};
use crate::validate;
use serde_json::Map;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

fn json_error_detail(e: &serde_json::Error) -> String {
    format!("the body is not valid JSON: {e}")
}

/// Reads the body of `POST /api/v1/contacts`: 400 when it is not JSON, 422 (with pointers)
/// when a request-level option or the number of contacts is wrong.
pub fn parse(body: &[u8]) -> Result<IntakeRequest, IntakeError> {
    // The members as JSON text: this checks the whole body's syntax, but builds nothing of the
    // contacts (the bulk of it).
    let members: BTreeMap<String, &RawValue> = match serde_json::from_slice(body) {
        Ok(members) => members,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(IntakeError::invalid(
                "the body must be a JSON object with a contacts array",
                vec![FieldError::new(
                    "",
                    "invalid_value",
                    "expected a JSON object",
                )],
            ));
        }
        Err(e) => return Err(IntakeError::Malformed(json_error_detail(&e))),
    };
    let mut body = Map::new();
    let mut contacts_text = None;
    for (name, raw) in members {
        if name == "contacts" {
            contacts_text = Some(raw);
        } else {
            let value = serde_json::from_str(raw.get())
                .map_err(|e| IntakeError::Malformed(json_error_detail(&e)))?;
            body.insert(name, value);
        }
    }
    let mut errors = Vec::new();
    let mut custom_columns = Vec::new();
    let bulk_upsert = bulk_upsert::is_bulk_upsert(&body);
    let contacts: Vec<Box<RawValue>> = if bulk_upsert {
        if contacts_text.is_some() {
            errors.push(FieldError::new(
                "/contacts",
                "invalid_value",
                "send contacts, or columns with contactDatas (the BulkUpsert shape), not both",
            ));
        }
        let converted = bulk_upsert::convert(&body, &mut errors);
        custom_columns = converted.custom_columns;
        body.extend(converted.options);
        converted
            .contacts
            .iter()
            .filter_map(|c| RawValue::from_string(c.to_string()).ok())
            .map(|raw| checked_depth(&raw))
            .collect()
    } else {
        match contacts_text.map(|raw| (raw, serde_json::from_str::<Vec<&RawValue>>(raw.get()))) {
            Some((_, Ok(contacts))) => contacts.into_iter().map(checked_depth).collect(),
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
        }
    };
    let what = if bulk_upsert {
        "/contactDatas"
    } else {
        "/contacts"
    };
    if errors.is_empty() && contacts.is_empty() {
        errors.push(FieldError::new(
            what,
            "no_contacts",
            format!("{} is empty: send 1 to 3000 contacts", &what[1..]),
        ));
    }
    if contacts.len() > MAX_CONTACTS {
        errors.push(FieldError::new(
            format!("{what}/{MAX_CONTACTS}"),
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
        return Err(IntakeError::invalid(
            "the request cannot be accepted as it is; see errors",
            errors,
        ));
    }
    Ok(IntakeRequest {
        contacts,
        options,
        custom_columns,
    })
}

/// The JSON array of these contacts' texts, as the worker reads a batch.
pub(super) fn json_array(contacts: &[Box<RawValue>]) -> Vec<u8> {
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

/// The contact as sent, or, when it nests deeper than a worker reads, a row that fails
/// `invalid_row` on its own.
fn checked_depth(contact: &RawValue) -> Box<RawValue> {
    if validate::nests_within(contact.get(), validate::MAX_JSON_DEPTH) {
        return contact.to_owned();
    }
    let depth = validate::json_depth(contact.get());
    let marker = validate::invalid_row(format!(
        "the contact nests {depth} levels deep; at most {} are read",
        validate::MAX_JSON_DEPTH
    ));
    RawValue::from_string(marker.to_string()).unwrap_or_else(|_| contact.to_owned())
}
