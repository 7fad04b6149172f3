//! The part of a raw contact that the intake checks before it stores a request: its identifiers
//! (for `duplicate_in_file`) and its custom attribute names (for the 422 on unknown fields).
//! Building a whole `serde_json::Value` for 3000 contacts was a third of the intake's time; this
//! parses only the members `dedupe_key` and `attribute_names` read and skips the rest unbuilt.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Whether `dedupe_key` or `attribute_names` reads this member of a contact (as a `match`,
/// which compares a name's length before its bytes).
fn is_read(member: &str) -> bool {
    matches!(
        member,
        "id" | "externalId"
            | "phone"
            | "primaryPhone"
            | "email"
            | "primaryEmail"
            | "channels"
            | "customAttributes"
            | "fields"
    )
}

/// The members of the contact whose JSON text is `raw` that the intake's checks read, as an
/// object (a member sent twice: the last one, as `serde_json` does); `Value::Null` when the
/// contact is not an object.
pub fn identifying_part(raw: &str) -> Value {
    serde_json::from_str::<Part>(raw).map_or(Value::Null, |part| Value::Object(part.0))
}

struct Part(Map<String, Value>);

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PartVisitor)
    }
}

struct PartVisitor;

impl<'de> Visitor<'de> for PartVisitor {
    type Value = Part;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a contact object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
        let mut part = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            if key == "customAttributes" {
                let NamesOnly(names) = map.next_value()?;
                part.insert(key.into_owned(), names);
            } else if is_read(&key) {
                let value: Value = map.next_value()?;
                part.insert(key.into_owned(), value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Part(part))
    }
}

/// `customAttributes` as `attribute_names` reads it: an object's member names, each with a
/// null value (the values are the worker's to read); anything else, null.
struct NamesOnly(Value);

impl<'de> Deserialize<'de> for NamesOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = NamesOnly;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NamesOnly, A::Error> {
                let mut names = Map::new();
                while let Some(Key(name)) = map.next_key()? {
                    map.next_value::<IgnoredAny>()?;
                    names.insert(name.into_owned(), Value::Null);
                }
                Ok(NamesOnly(Value::Object(names)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NamesOnly, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NamesOnly(Value::Null))
            }

            fn visit_unit<E: de::Error>(self) -> Result<NamesOnly, E> {
                Ok(NamesOnly(Value::Null))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NamesOnly, E> {
                Ok(NamesOnly(Value::Null))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NamesOnly, E> {
                Ok(NamesOnly(Value::Null))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NamesOnly, E> {
                Ok(NamesOnly(Value::Null))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NamesOnly, E> {
                Ok(NamesOnly(Value::Null))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<NamesOnly, E> {
                Ok(NamesOnly(Value::Null))
            }
        }
        deserializer.deserialize_any(NamesVisitor)
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
    use crate::validate::{Identifier, attribute_names, dedupe_key};
    use serde_json::json;

    #[test]
    fn the_part_gives_the_same_keys_and_attribute_names_as_the_whole_contact() {
        let contacts = [
            json!({"phone": "+212 6 12 34 56 78", "firstName": "A", "customAttributes": {"plan": "x", "a/b~c": 1}}),
            json!({"primaryPhone": "0612345678", "email": "X@Y.org", "externalId": 42, "fields": [{"id": "plan", "value": "y"}]}),
            json!({"channels": [{"type": "email", "value": "Q@W.io"}, {"type": "SMS", "value": "+447912345678"}], "address": {"town": "London"}}),
            json!({"phone": "+447912345678", "phone": "+212612345678"}),
            json!({"externalId": "crm\u{0}1", "birthday": "2000-01-01", "nested": {"phone": "+447912345678"}}),
            json!({"phone": "+447912345678", "customAttributes": ["plan"], "fields": "plan"}),
            json!({"email": "a@b.co", "customAttributes": "plan"}),
            json!({"customAttributes": null, "fields": [{"id": 7}, "plan", {"id": "tier", "value": {"deep": [1]}}]}),
            json!({"customAttributes": {"plan": {"nested": {"phone": "+447912345678"}}, "tier": [1, 2]}}),
            json!({}),
            json!(["not", "an", "object"]),
            json!("text"),
            json!(null),
        ];
        for contact in &contacts {
            let text = contact.to_string();
            let part = identifying_part(&text);
            for on in [Identifier::Phone, Identifier::Email, Identifier::ExternalId] {
                for region in [None, Some("MA")] {
                    assert_eq!(
                        dedupe_key(&part, on, region),
                        dedupe_key(contact, on, region),
                        "{text} on {on:?} in {region:?}"
                    );
                }
            }
            assert_eq!(
                attribute_names(&part).collect::<Vec<_>>(),
                attribute_names(contact).collect::<Vec<_>>(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_member_sent_twice_keeps_the_last_as_serde_json_does() {
        let text = r#"{"phone": "+447912345678", "city": "x", "phone": "+212612345678"}"#;
        let whole: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(identifying_part(text)["phone"], whole["phone"]);
    }

    #[test]
    fn escaped_member_names_are_read() {
        let part = identifying_part(r#"{"ph\u006fne": "+447912345678", "fir\u0073tName": "A"}"#);
        assert_eq!(part, json!({"phone": "+447912345678"}));
    }
}
