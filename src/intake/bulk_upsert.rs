//! The BulkUpsert shape of `POST /api/v1/contacts` (`columns` + `contactDatas`), so that a
//! client of that API can point at this service unchanged. Each row becomes the flat contact
//! the JSON intake takes, and the request's flags become the import's options; from there it
//! is the same import (validation, planner, results). `contact_key` is the identifier
//! (`externalId`); `new_contact_key` gives the matched contact a new one.

use super::FieldError;
use serde_json::{Map, Value, json};

use crate::validate::NEW_EXTERNAL_ID;

/// A BulkUpsert column and the flat contact member it fills.
const COLUMNS: [(&str, Target); 12] = [
    ("contact_key", Target::Field("externalId")),
    ("new_contact_key", Target::Field(NEW_EXTERNAL_ID)),
    ("name", Target::Field("firstName")),
    ("surname", Target::Field("lastName")),
    ("email", Target::Field("email")),
    ("gsm", Target::Field("phone")),
    ("birthday", Target::Field("birthday")),
    ("gender", Target::Gender),
    ("status", Target::Field("status")),
    ("email_permit", Target::Consent("email")),
    ("gsm_permit", Target::Consent("sms")),
    ("email_status", Target::Field("emailStatus")),
];

/// One more, kept apart so that the table reads as the contract lists it.
const GSM_STATUS: (&str, Target) = ("gsm_status", Target::Field("phoneStatus"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// A flat contact member.
    Field(&'static str),
    /// `gender`: `M`/`F` as well as `male`/`female`.
    Gender,
    /// A channel's consent from a boolean permit.
    Consent(&'static str),
}

/// A BulkUpsert request, converted.
#[derive(Debug)]
pub struct Converted {
    /// The rows as flat contacts, in order.
    pub contacts: Vec<Value>,
    /// The columns naming custom fields, with their position in `columns` (each must be a
    /// field of the tenant).
    pub custom_columns: Vec<(usize, String)>,
    /// The request's flags as JSON intake options: `mode` and `allOrNothing`.
    pub options: Map<String, Value>,
}

/// True when the body is in the BulkUpsert shape.
pub fn is_bulk_upsert(body: &Map<String, Value>) -> bool {
    body.contains_key("contactDatas") || body.contains_key("columns")
}

/// Converts the body; `errors` gets what is wrong, with pointers into it.
pub fn convert(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Converted {
    let mut out = Converted {
        contacts: Vec::new(),
        custom_columns: Vec::new(),
        options: Map::new(),
    };
    let columns: Vec<String> = match body.get("columns") {
        Some(Value::Array(columns)) if !columns.is_empty() => {
            let mut names = Vec::new();
            for (i, column) in columns.iter().enumerate() {
                match column.as_str().map(str::trim) {
                    Some(name) if !name.is_empty() => names.push(name.to_owned()),
                    _ => errors.push(FieldError::new(
                        format!("/columns/{i}"),
                        "invalid_value",
                        "a column is a non-empty name",
                    )),
                }
            }
            names
        }
        _ => {
            errors.push(FieldError::new(
                "/columns",
                "invalid_value",
                "columns is required with contactDatas: the names of the rows' values, in order",
            ));
            return out;
        }
    };
    let targets: Vec<Option<Target>> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let target = COLUMNS
                .iter()
                .chain([&GSM_STATUS])
                .find(|(column, _)| column.eq_ignore_ascii_case(name))
                .map(|(_, target)| *target);
            if target.is_none() {
                out.custom_columns.push((i, name.clone()));
            }
            target
        })
        .collect();
    for (i, name) in columns.iter().enumerate() {
        if columns[..i].iter().any(|c| c.eq_ignore_ascii_case(name)) {
            errors.push(FieldError::new(
                format!("/columns/{i}"),
                "duplicate_column",
                format!("the column {name:?} is listed twice"),
            ));
        }
    }
    if !columns
        .iter()
        .any(|c| c.eq_ignore_ascii_case("contact_key"))
    {
        errors.push(FieldError::new(
            "/columns",
            "identifier_not_mapped",
            "contact_key is the identifier of every row: list it in columns",
        ));
    }
    let insert = match body.get("insertIfNotExists") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new(
                "/insertIfNotExists",
                "invalid_value",
                "insertIfNotExists must be true or false",
            ));
            false
        }
    };
    if insert
        && columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case("new_contact_key"))
    {
        errors.push(FieldError::new(
            "/columns",
            "invalid_value",
            "new_contact_key renames a matched contact, so it is not taken with insertIfNotExists: true",
        ));
    }
    let fail_on_error = match body.get("failOnError") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new(
                "/failOnError",
                "invalid_value",
                "failOnError must be true or false",
            ));
            true
        }
    };
    out.options.insert("dedupeOn".into(), json!("externalId"));
    out.options.insert(
        "mode".into(),
        json!(if insert { "upsert" } else { "updateOnly" }),
    );
    out.options
        .insert("allOrNothing".into(), Value::Bool(fail_on_error));
    let Some(Value::Array(rows)) = body.get("contactDatas") else {
        errors.push(FieldError::new(
            "/contactDatas",
            "missing_contacts",
            "contactDatas is required: 1 to 3000 rows",
        ));
        return out;
    };
    for (r, row) in rows.iter().enumerate() {
        let values: Vec<(usize, &Value)> = match row {
            Value::Array(values) => {
                if values.len() > columns.len() {
                    errors.push(FieldError::new(
                        format!("/contactDatas/{r}"),
                        "invalid_value",
                        format!(
                            "the row has {} values; columns lists {}",
                            values.len(),
                            columns.len()
                        ),
                    ));
                }
                values.iter().enumerate().collect()
            }
            Value::Object(by_name) => by_name
                .iter()
                .filter_map(|(name, value)| {
                    let at = columns.iter().position(|c| c.eq_ignore_ascii_case(name));
                    if at.is_none() {
                        errors.push(FieldError::new(
                            format!(
                                "/contactDatas/{r}/{}",
                                name.replace('~', "~0").replace('/', "~1")
                            ),
                            "unknown_column",
                            format!("{name:?} is not one of the columns"),
                        ));
                    }
                    at.map(|i| (i, value))
                })
                .collect(),
            _ => {
                // A row of the wrong shape fails alone, as any contact that is not an object.
                out.contacts.push(row.clone());
                continue;
            }
        };
        out.contacts.push(contact(&values, &targets, &columns));
    }
    out
}

/// One row as a flat contact.
fn contact(values: &[(usize, &Value)], targets: &[Option<Target>], columns: &[String]) -> Value {
    let mut contact = Map::new();
    let mut attributes = Map::new();
    let mut consent = Map::new();
    for &(i, value) in values {
        let Some(target) = targets.get(i) else {
            continue;
        };
        match target {
            Some(Target::Field(member)) => {
                contact.insert((*member).to_owned(), value.clone());
            }
            Some(Target::Gender) => {
                let gender = match value.as_str().map(str::trim) {
                    Some(g) if g.eq_ignore_ascii_case("m") => json!("male"),
                    Some(g) if g.eq_ignore_ascii_case("f") => json!("female"),
                    _ => value.clone(),
                };
                contact.insert("gender".into(), gender);
            }
            Some(Target::Consent(channel)) => {
                consent.insert((*channel).to_owned(), value.clone());
            }
            None => {
                attributes.insert(columns[i].clone(), value.clone());
            }
        }
    }
    if !attributes.is_empty() {
        contact.insert("customAttributes".into(), Value::Object(attributes));
    }
    if !consent.is_empty() {
        contact.insert("consent".into(), Value::Object(consent));
    }
    Value::Object(contact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rows_in_column_order_or_by_name_become_flat_contacts() {
        let mut errors = Vec::new();
        let converted = convert(
            &body(json!({
                "columns": ["contact_key", "name", "surname", "gsm", "gender", "status", "email_permit", "gsm_permit", "gsm_status", "plan"],
                "contactDatas": [
                    ["c1", "Ana", "Silva", "+212612345678", "F", "A", true, false, "P", "gold"],
                    {"contact_key": "c2", "GENDER": "male", "email": "ignored@example.com"},
                ],
                "insertIfNotExists": true,
            })),
            &mut errors,
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pointer, "/contactDatas/1/email");
        assert_eq!(
            converted.contacts[0],
            json!({"externalId": "c1", "firstName": "Ana", "lastName": "Silva", "phone": "+212612345678",
                   "gender": "female", "status": "A", "phoneStatus": "P",
                   "consent": {"email": true, "sms": false}, "customAttributes": {"plan": "gold"}})
        );
        assert_eq!(
            converted.contacts[1],
            json!({"externalId": "c2", "gender": "male"})
        );
        assert_eq!(converted.custom_columns, [(9, "plan".to_owned())]);
        assert_eq!(converted.options["mode"], "upsert");
        assert_eq!(converted.options["allOrNothing"], true);
        assert_eq!(converted.options["dedupeOn"], "externalId");
    }

    #[test]
    fn the_request_level_problems_are_pointed_at() {
        let cases = [
            (json!({"contactDatas": [["a"]]}), "/columns"),
            (
                json!({"columns": ["name"], "contactDatas": [["a"]]}),
                "/columns",
            ),
            (
                json!({"columns": ["contact_key", "name", "NAME"], "contactDatas": []}),
                "/columns/2",
            ),
            (
                json!({"columns": ["contact_key"], "contactDatas": [["a", "b"]]}),
                "/contactDatas/0",
            ),
            (
                json!({"columns": ["contact_key", "new_contact_key"], "contactDatas": [["a", "b"]], "insertIfNotExists": true}),
                "/columns",
            ),
            (
                json!({"columns": ["contact_key"], "failOnError": "yes", "contactDatas": [["a"]]}),
                "/failOnError",
            ),
            (json!({"columns": ["contact_key"]}), "/contactDatas"),
        ];
        for (request, pointer) in cases {
            let mut errors = Vec::new();
            convert(&body(request.clone()), &mut errors);
            assert!(
                errors.iter().any(|e| e.pointer == pointer),
                "{request}: {errors:?}"
            );
        }
        let mut errors = Vec::new();
        let converted = convert(
            &body(
                json!({"columns": ["contact_key"], "contactDatas": [["a"]], "failOnError": false}),
            ),
            &mut errors,
        );
        assert_eq!(
            (
                errors.len(),
                &converted.options["mode"],
                &converted.options["allOrNothing"]
            ),
            (0, &json!("updateOnly"), &json!(false))
        );
    }
}
