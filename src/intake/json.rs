//! The body of `POST /api/v1/contacts`: its syntax is checked whole, its options read, and
//! each contact kept as the JSON text it was sent as (the worker builds the contact).

use super::bulk_upsert;
use super::options::{import_options, take_bool};
use super::{FieldError, IntakeError, IntakeRequest, MAX_CONTACTS};
use crate::validate;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

fn json_error_detail(e: &serde_json::Error) -> String {
    format!("the body is not valid JSON: {e}")
}

/// Reads the body of `POST /api/v1/contacts`: 400 when it is not JSON, 422 (with pointers)
/// when a request-level option or the number of contacts is wrong.
pub fn parse(body: &[u8]) -> Result<IntakeRequest<'_>, IntakeError> {
    // One pass over the body checks its whole syntax and keeps each contact as the JSON text
    // it was sent as, building nothing of the contacts (the bulk of it).
    let Body {
        members: mut body,
        contacts: contacts_member,
    } = match serde_json::from_slice::<Body>(body) {
        Ok(parsed) => parsed,
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
    let mut errors = Vec::new();
    let mut custom_columns = Vec::new();
    let bulk_upsert = bulk_upsert::is_bulk_upsert(&body);
    let contacts: Vec<Cow<'_, RawValue>> = if bulk_upsert {
        if contacts_member.is_some() {
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
            .map(|raw| {
                // The row itself, owned already, unless it is replaced by a marker.
                let marker = match checked_depth(&raw) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(marker) => Some(marker),
                };
                Cow::Owned(marker.unwrap_or(raw))
            })
            .collect()
    } else {
        match contacts_member {
            Some(Contacts::Array(contacts)) => contacts.into_iter().map(checked_depth).collect(),
            None | Some(Contacts::Null) => {
                errors.push(FieldError::new(
                    "/contacts",
                    "missing_contacts",
                    "contacts is required: an array of 1 to 3000 contacts",
                ));
                Vec::new()
            }
            Some(Contacts::Other) => {
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

/// The body's members: `contacts` apart, each of its contacts as the text it was sent as, and
/// every other member as a value. A member sent twice counts once, the last time (as
/// `serde_json` reads an object into a map).
struct Body<'a> {
    members: Map<String, Value>,
    contacts: Option<Contacts<'a>>,
}

/// What the body's `contacts` member holds.
enum Contacts<'a> {
    Array(Vec<&'a RawValue>),
    Null,
    /// Anything else: an object, a string, a number, a boolean.
    Other,
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = Body<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<'de>, A::Error> {
                let mut body = Body {
                    members: Map::new(),
                    contacts: None,
                };
                while let Some(name) = map.next_key::<String>()? {
                    if name == "contacts" {
                        body.contacts = Some(map.next_value()?);
                    } else {
                        body.members.insert(name, map.next_value()?);
                    }
                }
                Ok(body)
            }
        }
        deserializer.deserialize_map(BodyVisitor)
    }
}

impl<'de> Deserialize<'de> for Contacts<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContactsVisitor;
        impl<'de> Visitor<'de> for ContactsVisitor {
            type Value = Contacts<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Contacts<'de>, A::Error> {
                let mut contacts =
                    Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_CONTACTS + 1));
                while let Some(contact) = seq.next_element::<&'de RawValue>()? {
                    contacts.push(contact);
                }
                Ok(Contacts::Array(contacts))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Contacts<'de>, E> {
                Ok(Contacts::Null)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Contacts<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Contacts::Other)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Contacts<'de>, E> {
                Ok(Contacts::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Contacts<'de>, E> {
                Ok(Contacts::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Contacts<'de>, E> {
                Ok(Contacts::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Contacts<'de>, E> {
                Ok(Contacts::Other)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Contacts<'de>, E> {
                Ok(Contacts::Other)
            }
        }
        deserializer.deserialize_any(ContactsVisitor)
    }
}

/// The JSON array of these contacts' texts, as the worker reads a batch.
pub(super) fn json_array(contacts: &[Cow<'_, RawValue>]) -> Vec<u8> {
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
fn checked_depth(contact: &RawValue) -> Cow<'_, RawValue> {
    if validate::nests_within(contact.get(), validate::MAX_JSON_DEPTH) {
        return Cow::Borrowed(contact);
    }
    let depth = validate::json_depth(contact.get());
    let marker = validate::invalid_row(format!(
        "the contact nests {depth} levels deep; at most {} are read",
        validate::MAX_JSON_DEPTH
    ));
    RawValue::from_string(marker.to_string()).map_or(Cow::Borrowed(contact), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of a refused body's field errors, or "malformed".
    fn refusal(body: &str) -> Vec<String> {
        match parse(body.as_bytes()) {
            Ok(request) => panic!("{body} was accepted: {} contacts", request.contacts.len()),
            Err(IntakeError::Malformed(_)) => vec!["malformed".to_owned()],
            Err(IntakeError::Invalid { errors, .. }) => {
                errors.into_iter().map(|e| e.code.to_string()).collect()
            }
            Err(other) => panic!("{body}: {other}"),
        }
    }

    #[test]
    fn the_contacts_member_is_read_in_the_same_pass_as_the_body() {
        let cases = [
            (r#"{}"#, "missing_contacts"),
            (r#"{"contacts": null}"#, "missing_contacts"),
            (r#"{"contacts": "a"}"#, "invalid_value"),
            (r#"{"contacts": 3}"#, "invalid_value"),
            (r#"{"contacts": -3.5}"#, "invalid_value"),
            (r#"{"contacts": true}"#, "invalid_value"),
            (
                r#"{"contacts": {"phone": "+212612345678"}}"#,
                "invalid_value",
            ),
            (r#"{"contacts": []}"#, "no_contacts"),
            (
                r#"{"contacts": [{"phone": "1"}], "contacts": null}"#,
                "missing_contacts",
            ),
            (r#"[{"phone": "+212612345678"}]"#, "invalid_value"),
            (r#""contacts""#, "invalid_value"),
            (r#"{"contacts": [{"phone": "1"},]}"#, "malformed"),
            (r#"{"contacts": [{"phone": "1"}]"#, "malformed"),
            (r#"{"contacts": [{"phone": "1"}]} x"#, "malformed"),
        ];
        for (body, code) in cases {
            assert_eq!(refusal(body), vec![code.to_owned()], "{body}");
        }
        let body = r#"{"contacts": null, "dedupeOn": "email", "cont\u0061cts": [ {"phone": "+212612345678"} , [1, {"a": "]"}]]}"#;
        let request = parse(body.as_bytes()).map_err(|e| e.to_string());
        let request = request.as_ref().map(|r| {
            let texts: Vec<&str> = r.contacts.iter().map(|c| c.get()).collect();
            (texts, r.options.dedupe_on)
        });
        assert_eq!(
            request,
            Ok((
                vec![r#"{"phone": "+212612345678"}"#, r#"[1, {"a": "]"}]"#],
                validate::Identifier::Email
            ))
        );
    }
}
