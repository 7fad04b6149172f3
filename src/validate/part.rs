//! The parts of a raw contact read before it is validated in full: its identifiers, which the
//! erasure matches stored rows on (`identifying_part`), and what the JSON intake checks before
//! it stores a request (`intake_part`): the identifier rows are deduplicated on (for
//! `duplicate_in_file`) and the custom attribute names the tenant has not defined (for the 422).
//! Building a whole `serde_json::Value` for 3000 contacts was a third of the intake's time;
//! these parse only the members read and skip the rest unbuilt, and the intake's names are
//! looked up as they are read, without a copy.

use super::Identifier;
use super::attributes::{NamedAt, field_ids};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Which identifiers' members a part keeps (as a `match`, which compares a name's length
/// before its bytes).
#[derive(Clone, Copy)]
enum Keep {
    /// Every identifier's.
    All,
    /// The members `dedupe_key` reads for this identifier.
    Only(Identifier),
}

impl Keep {
    fn reads(self, member: &str) -> bool {
        match self {
            Keep::All => matches!(
                member,
                "id" | "externalId"
                    | "phone"
                    | "primaryPhone"
                    | "email"
                    | "primaryEmail"
                    | "channels"
            ),
            Keep::Only(Identifier::Phone) => {
                matches!(member, "phone" | "primaryPhone" | "channels")
            }
            Keep::Only(Identifier::Email) => {
                matches!(member, "email" | "primaryEmail" | "channels")
            }
            Keep::Only(Identifier::ExternalId) => member == "externalId",
            Keep::Only(Identifier::Id) => member == "id",
        }
    }
}

/// The members of the contact whose JSON text is `raw` that `dedupe_key` reads for any
/// identifier, as an object (a member sent twice: the last one, as `serde_json` does);
/// `Value::Null` when the contact is not an object.
pub fn identifying_part(raw: &str) -> Value {
    let visitor = PartVisitor {
        keep: Keep::All,
        known: None,
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    match deserializer.deserialize_map(visitor) {
        Ok(part) if deserializer.end().is_ok() => Value::Object(part.members),
        _ => Value::Null,
    }
}

/// What the JSON intake reads of one contact.
#[derive(Debug, Default, PartialEq)]
pub struct IntakePart {
    /// The members `dedupe_key` reads for the request's identifier, as `identifying_part`
    /// gives them (`Value::Null` when the contact is not an object).
    pub identifying: Value,
    /// The custom attribute names it sends that the tenant has not defined, in
    /// `attribute_names`' order; empty (and unallocated) in the usual case.
    pub unknown_names: Vec<(String, NamedAt)>,
}

/// Reads the contact whose JSON text is `raw` as the intake checks it: the members of its
/// identifier `on`, and its custom attribute names not in `known`.
pub fn intake_part(raw: &str, on: Identifier, known: &HashSet<String>) -> IntakePart {
    let visitor = PartVisitor {
        keep: Keep::Only(on),
        known: Some(known),
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    match deserializer.deserialize_map(visitor) {
        Ok(part) if deserializer.end().is_ok() => IntakePart {
            identifying: Value::Object(part.members),
            unknown_names: part.unknown_names,
        },
        _ => IntakePart {
            identifying: Value::Null,
            unknown_names: Vec::new(),
        },
    }
}

struct Part {
    members: Map<String, Value>,
    unknown_names: Vec<(String, NamedAt)>,
}

/// Reads a contact object; with `known`, also the names of its custom attributes.
struct PartVisitor<'k> {
    keep: Keep,
    known: Option<&'k HashSet<String>>,
}

impl<'de> Visitor<'de> for PartVisitor<'_> {
    type Value = Part;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a contact object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
        let mut members = Map::new();
        // A member sent twice counts as its last one, as in `serde_json::Map`.
        let mut unknown_attributes = Vec::new();
        let mut fields = None;
        while let Some(Key(key)) = map.next_key()? {
            match self.known {
                _ if self.keep.reads(&key) => {
                    let value: Value = map.next_value()?;
                    members.insert(key.into_owned(), value);
                }
                Some(known) if key == "customAttributes" => {
                    unknown_attributes = map.next_value_seed(UnknownNames(known))?;
                }
                Some(_) if key == "fields" => fields = Some(map.next_value::<Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut unknown_names: Vec<(String, NamedAt)> = unknown_attributes
            .into_iter()
            .map(|name| (name, NamedAt::CustomAttributes))
            .collect();
        if let (Some(known), Some(Value::Array(entries))) = (self.known, &fields) {
            unknown_names.extend(
                field_ids(entries)
                    .filter(|(name, _)| !known.contains(*name))
                    .map(|(name, at)| (name.to_owned(), at)),
            );
        }
        Ok(Part {
            members,
            unknown_names,
        })
    }
}

/// `customAttributes` as the intake reads it: the member names of an object that `0` does not
/// hold, in order and once each (as `serde_json::Map` keeps them); of anything else, none.
/// The values are the worker's to read.
struct UnknownNames<'k>(&'k HashSet<String>);

impl<'de> DeserializeSeed<'de> for UnknownNames<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UnknownNames<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let mut unknown = Vec::new();
        while let Some(Key(name)) = map.next_key()? {
            map.next_value::<IgnoredAny>()?;
            if !self.0.contains(name.as_ref()) {
                unknown.push(name.into_owned());
            }
        }
        unknown.sort_unstable();
        unknown.dedup();
        Ok(unknown)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
}

/// A member name, borrowed from the input unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{attribute_names, dedupe_key};
    use serde_json::json;

    fn contacts() -> Vec<Value> {
        vec![
            json!({"phone": "+212 6 12 34 56 78", "firstName": "A", "customAttributes": {"plan": "x", "a/b~c": 1}}),
            json!({"primaryPhone": "0612345678", "email": "X@Y.org", "externalId": 42, "fields": [{"id": "plan", "value": "y"}, {"id": "tier"}]}),
            json!({"channels": [{"type": "email", "value": "Q@W.io"}, {"type": "SMS", "value": "+447912345678"}], "address": {"town": "London"}}),
            json!({"phone": "+447912345678", "phone": "+212612345678"}),
            json!({"externalId": "crm\u{0}1", "birthday": "2000-01-01", "nested": {"phone": "+447912345678"}}),
            json!({"phone": "+447912345678", "customAttributes": ["plan"], "fields": "plan"}),
            json!({"email": "a@b.co", "customAttributes": "plan"}),
            json!({"customAttributes": null, "fields": [{"id": 7}, "plan", {"id": "tier", "value": {"deep": [1]}}]}),
            json!({"customAttributes": {"plan": {"nested": {"phone": "+447912345678"}}, "tier": [1, 2], "zone": null}}),
            json!({"id": "0193b3a0-0000-7000-8000-000000000001", "customAttributes": {"b": 1, "a": 2}}),
            json!({}),
            json!(["not", "an", "object"]),
            json!("text"),
            json!(null),
        ]
    }

    #[test]
    fn the_parts_give_the_same_keys_and_unknown_names_as_the_whole_contact() {
        let known: HashSet<String> = ["plan".to_owned()].into();
        for contact in &contacts() {
            let text = contact.to_string();
            let part = identifying_part(&text);
            for on in [
                Identifier::Phone,
                Identifier::Email,
                Identifier::ExternalId,
                Identifier::Id,
            ] {
                let intake = intake_part(&text, on, &known);
                for region in [None, Some("MA")] {
                    let whole = dedupe_key(contact, on, region);
                    assert_eq!(dedupe_key(&part, on, region), whole, "{text} on {on:?}");
                    assert_eq!(
                        dedupe_key(&intake.identifying, on, region),
                        whole,
                        "{text} on {on:?} in {region:?}"
                    );
                }
                let unknown: Vec<(String, NamedAt)> = attribute_names(contact)
                    .filter(|(name, _)| !known.contains(*name))
                    .map(|(name, at)| (name.to_owned(), at))
                    .collect();
                assert_eq!(intake.unknown_names, unknown, "{text}");
            }
        }
    }

    #[test]
    fn the_intake_keeps_only_the_members_of_its_identifier() {
        let text = r#"{"phone": "+447912345678", "email": "a@b.co", "externalId": "x", "channels": [], "customAttributes": {"plan": 1}}"#;
        let known = HashSet::new();
        let on_email = intake_part(text, Identifier::Email, &known);
        assert_eq!(
            on_email.identifying,
            json!({"email": "a@b.co", "channels": []})
        );
        let on_external_id = intake_part(text, Identifier::ExternalId, &known);
        assert_eq!(on_external_id.identifying, json!({"externalId": "x"}));
        assert_eq!(
            on_external_id.unknown_names,
            [("plan".to_owned(), NamedAt::CustomAttributes)]
        );
    }

    #[test]
    fn a_member_sent_twice_keeps_the_last_as_serde_json_does() {
        let text = r#"{"phone": "+447912345678", "city": "x", "phone": "+212612345678",
            "customAttributes": {"old": 1}, "customAttributes": {"new": 1, "new": 2}}"#;
        let whole: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(identifying_part(text)["phone"], whole["phone"]);
        let intake = intake_part(text, Identifier::Phone, &HashSet::new());
        assert_eq!(intake.identifying["phone"], whole["phone"]);
        assert_eq!(
            intake.unknown_names,
            [("new".to_owned(), NamedAt::CustomAttributes)]
        );
    }

    #[test]
    fn escaped_member_names_are_read() {
        let text = r#"{"ph\u006fne": "+447912345678", "fir\u0073tName": "A", "customAttributes": {"pl\u0061n": 1, "ti\u0065r": 2}}"#;
        assert_eq!(identifying_part(text), json!({"phone": "+447912345678"}));
        let known: HashSet<String> = ["plan".to_owned()].into();
        let intake = intake_part(text, Identifier::Phone, &known);
        assert_eq!(intake.identifying, json!({"phone": "+447912345678"}));
        assert_eq!(
            intake.unknown_names,
            [("tier".to_owned(), NamedAt::CustomAttributes)]
        );
    }

    #[test]
    fn text_after_the_contact_makes_it_no_object() {
        let known = HashSet::new();
        assert_eq!(identifying_part(r#"{"phone": "1"} x"#), Value::Null);
        assert_eq!(
            intake_part(
                r#"{"customAttributes": {"a": 1}} {"#,
                Identifier::Phone,
                &known
            ),
            IntakePart::default()
        );
    }
}
