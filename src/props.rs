//! Property tests of the pure parsers (proptest): on any input — arbitrary text, bytes and
//! JSON, not only the shapes the tables of cases hold — they answer without panicking, and
//! what they accept keeps its meaning when read again. `cargo test --lib props` runs 256 cases
//! of each; `PROPTEST_CASES=100000 cargo test --release --lib props` runs a longer search.

use crate::intake::records::{MAX_RECORD_BYTES, OVERLONG_RECORD, RecordLimit};
use crate::validate::{self, Identifier, Rules};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read;

/// Any JSON value, nested a few levels, with the contact fields' names among the keys.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("phone".to_owned()),
        Just("email".to_owned()),
        Just("externalId".to_owned()),
        Just("firstName".to_owned()),
        Just("birthday".to_owned()),
        Just("gender".to_owned()),
        Just("channels".to_owned()),
        Just("customAttributes".to_owned()),
        Just("tags".to_owned()),
        Just("address".to_owned()),
        ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[+0-9 ().-]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn rules(fields: &HashMap<String, validate::FieldKind>) -> Rules<'_> {
    Rules {
        dedupe_on: Identifier::Phone,
        default_region: Some("MA"),
        fields,
        today: time::macros::date!(2026 - 12 - 02),
        date_format: Default::default(),
    }
}

proptest! {
    #[test]
    fn any_contact_validates_or_says_why(value in json_value()) {
        let fields = HashMap::new();
        match validate::validate_contact(&value, &rules(&fields)) {
            Ok(contact) => prop_assert!(contact.dedupe_key(Identifier::Phone).is_some()),
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
        // The stored form of the same row reads the same way.
        let text = value.to_string();
        let stored = validate::validate_stored_text(&text, &rules(&fields));
        prop_assert_eq!(stored.is_ok(), validate::validate_contact(&value, &rules(&fields)).is_ok());
        prop_assert_eq!(validate::json_depth(&text), depth(&value));
    }

    #[test]
    fn any_text_is_read_as_a_phone_an_email_or_neither_and_what_is_read_reads_back(
        raw in prop_oneof![".{0,30}", "[+0]{0,2}[0-9 ().-]{0,18}"],
        region in prop_oneof![Just(None), Just(Some("MA")), Just(Some("US")), Just(Some("GB"))],
    ) {
        if let Ok(phone) = validate::normalize_phone(&raw, region) {
            prop_assert!(phone.as_str().starts_with('+'));
            let again = validate::normalize_phone(phone.as_str(), None).expect("E.164 reads back");
            prop_assert_eq!(again.as_str(), phone.as_str());
        }
        if let Ok(email) = validate::normalize_email(&raw) {
            let again = validate::normalize_email(email.as_str()).expect("an email reads back");
            prop_assert_eq!(again.as_str(), email.as_str());
        }
    }

    #[test]
    fn any_bytes_are_an_intake_request_or_a_refusal(body in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = crate::intake::parse(&body);
    }

    #[test]
    fn any_json_body_is_an_intake_request_or_a_refusal(value in json_value()) {
        let body = serde_json::json!({"contacts": [value.clone()], "dedupeOn": "phone"});
        let text = body.to_string();
        let request = crate::intake::parse(text.as_bytes());
        prop_assert!(request.is_ok(), "{:?}", request.err());
        let _ = crate::intake::parse(value.to_string().as_bytes());
    }

    #[test]
    fn csv_records_within_the_limit_pass_unchanged_and_longer_ones_become_markers(
        text in "([a-z\",;\\r\\n ]{0,30}){0,20}",
        max in 1usize..40,
    ) {
        let read = |max: usize| {
            let mut out = Vec::new();
            RecordLimit::new(std::io::BufReader::with_capacity(7, text.as_bytes()), b',', max)
                .read_to_end(&mut out)
                .expect("reading from memory");
            out
        };
        prop_assert_eq!(read(MAX_RECORD_BYTES), text.as_bytes());
        // With a small limit the csv parser reads every record as the original or the marker,
        // and no record the limiter passes on is longer than the limit.
        let limited = read(max);
        let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(limited.as_slice());
        for record in csv.byte_records() {
            let record = record.expect("the limiter passes on CSV");
            let marker = record.len() == 1 && record.get(0) == Some(OVERLONG_RECORD);
            prop_assert!(marker || record.as_slice().len() <= max);
        }
    }
}

/// The nesting of a value as `json_depth` counts it.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
