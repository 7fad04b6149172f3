//! The body of `POST /api/v1/contact`: one contact and the bulk intake's options, read by the
//! same code (`options`). What only an import can do is refused: a callback, events, a dry run,
//! all-or-nothing (one contact is all or nothing already). The contact is applied at once by
//! the worker's own rules (`worker::apply_now`), not stored as an import.

use super::options::import_options;
use super::{FieldError, IntakeError};
use crate::import::ImportOptions;
use crate::validate;
use serde_json::{Map, Value};

/// A checked single-contact request.
#[derive(Debug)]
pub struct SingleRequest {
    pub contact: Value,
    pub options: ImportOptions,
}

/// Options of the bulk intake that a single contact does not take.
const IMPORT_ONLY: [&str; 5] = [
    "callbackUrl",
    "eventKeyForNewContacts",
    "dryRun",
    "allOrNothing",
    "emptyCellsClear",
];

/// Reads the body: 400 when it is not JSON, 422 with pointers when an option is wrong or the
/// contact is missing.
pub fn parse_single(body: &[u8]) -> Result<SingleRequest, IntakeError> {
    let mut body: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(body)) => body,
        Ok(_) => {
            return Err(IntakeError::invalid(
                "the body must be a JSON object with a contact",
                vec![FieldError::new(
                    "",
                    "invalid_value",
                    "expected a JSON object",
                )],
            ));
        }
        Err(e) => {
            return Err(IntakeError::Malformed(format!(
                "the body is not valid JSON: {e}"
            )));
        }
    };
    let mut errors = Vec::new();
    let contact = match body.remove("contact") {
        Some(contact @ Value::Object(_)) => contact,
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "/contact",
                "missing_contact",
                "contact is required: one contact object (to send many, use POST /api/v1/contacts)",
            ));
            Value::Null
        }
        Some(_) => {
            errors.push(FieldError::new(
                "/contact",
                "invalid_value",
                "contact must be a JSON object",
            ));
            Value::Null
        }
    };
    if validate::json_depth(&contact.to_string()) > validate::MAX_JSON_DEPTH {
        errors.push(FieldError::new(
            "/contact",
            "invalid_value",
            format!(
                "the contact nests deeper than {} levels",
                validate::MAX_JSON_DEPTH
            ),
        ));
    }
    for name in IMPORT_ONLY {
        if body.get(name).is_some_and(|v| !v.is_null()) {
            errors.push(FieldError::new(
                format!("/{name}"),
                "invalid_value",
                format!("{name} is an option of imports (POST /api/v1/contacts); a single contact is applied at once"),
            ));
        }
    }
    let options = import_options(&body, "dedupeOn", &mut errors);
    if errors.is_empty() {
        Ok(SingleRequest { contact, options })
    } else {
        Err(IntakeError::invalid(
            "the request cannot be applied as it is; see errors",
            errors,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_contact_with_the_bulk_options_and_none_that_only_an_import_has() {
        let request = parse_single(
            json!({"contact": {"phone": "+212612345678"}, "dedupeOn": "email", "tagsRemove": ["lead"]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(request.options.dedupe_on, validate::Identifier::Email);
        assert_eq!(request.options.tags_remove, ["lead"]);
        let pointers = |body: Value| match parse_single(body.to_string().as_bytes()) {
            Err(IntakeError::Invalid { errors, .. }) => {
                errors.into_iter().map(|e| e.pointer).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(pointers(json!({"dedupeOn": "phone"})), ["/contact"]);
        assert_eq!(pointers(json!({"contact": [1]})), ["/contact"]);
        assert_eq!(
            pointers(json!({"contact": {}, "callbackUrl": "https://x.example", "mode": "merge"})),
            ["/callbackUrl", "/mode"]
        );
        assert!(matches!(
            parse_single(b"{\"contact\":"),
            Err(IntakeError::Malformed(_))
        ));
    }
}
