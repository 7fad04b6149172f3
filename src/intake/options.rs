//! The options both intakes share (JSON body members, or a CSV import's query parameters and
//! `options` part): each is read and checked here, and every problem is collected with its
//! pointer, so one 422 lists them all.

use super::FieldError;
use crate::import::{ImportOptions, Mode};
use crate::validate::{self, Identifier};
use serde_json::{Map, Value};

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
        match Identifier::parse(s) {
            Some(on) => options.dedupe_on = on,
            None => errors.push(FieldError::new(
                format!("/{identifier}"),
                "invalid_value",
                format!("unknown {identifier} {s:?}: use phone, email, externalId or id"),
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
    if let Some(s) = take_str(body, "dateFormat", errors) {
        match validate::DateFormat::parse(s) {
            Some(format) => options.date_format = format,
            None => errors.push(FieldError::new(
                "/dateFormat",
                "invalid_value",
                format!(
                    "unknown dateFormat {s:?}: use YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY or DD.MM.YYYY"
                ),
            )),
        }
    }
    if options.dedupe_on == Identifier::Id && options.mode != Mode::UpdateOnly {
        errors.push(FieldError::new(
            format!("/{identifier}"),
            "invalid_value",
            format!(
                "{identifier} id matches rows to contacts by their own id, so it only updates: send mode updateOnly"
            ),
        ));
    }
    options.overwrite = take_bool(body, "overwrite", true, errors);
    options.restore_deleted = take_bool(body, "restoreDeleted", false, errors);
    options.dry_run = take_bool(body, "dryRun", false, errors);
    options.allow_resubscribe = take_bool(body, "allowResubscribe", false, errors);
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
