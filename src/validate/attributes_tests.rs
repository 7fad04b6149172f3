//! Tables of cases for custom attributes: field definitions, names, values of each type,
//! the two shapes a row can send them in, and their JSON pointers.

use super::*;
use serde_json::json;
use std::collections::HashMap;

fn tenant_fields() -> HashMap<String, FieldKind> {
    let plans = vec![
        "free".to_owned(),
        "standard".to_owned(),
        "premium".to_owned(),
    ];
    [
        ("plan", FieldKind::Enum(plans)),
        ("note", FieldKind::String),
        ("account_balance", FieldKind::Number),
        ("vip", FieldKind::Boolean),
        ("signed_up", FieldKind::Date),
    ]
    .into_iter()
    .map(|(name, kind)| (name.to_owned(), kind))
    .collect()
}

fn read(contact: Value) -> (BTreeMap<String, Patch<Value>>, Vec<RowIssue>) {
    let (attributes, errors, warnings) = read_as(contact, DateFormat::Iso);
    assert_eq!(warnings, []);
    (attributes, errors)
}

fn read_as(
    contact: Value,
    date_format: DateFormat,
) -> (BTreeMap<String, Patch<Value>>, Vec<RowIssue>, Vec<RowIssue>) {
    let fields = tenant_fields();
    let rules = Rules {
        dedupe_on: crate::validate::Identifier::Phone,
        default_region: None,
        fields: &fields,
        today: time::macros::date!(2026 - 01 - 01),
        date_format,
    };
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let attributes = read_attributes(
        contact.as_object().unwrap(),
        &rules,
        &mut errors,
        &mut warnings,
    );
    (attributes, errors, warnings)
}

#[test]
fn date_attributes_follow_the_date_format_and_a_missing_year_is_a_warning() {
    let (attributes, errors, warnings) = read_as(
        json!({"customAttributes": {"signed_up": "17/05/2021"}}),
        DateFormat::DayMonthYear,
    );
    assert_eq!(errors, []);
    assert_eq!(warnings, []);
    assert_eq!(attributes["signed_up"], Patch::Set(json!("2021-05-17")));
    let (attributes, errors, warnings) = read_as(
        json!({"customAttributes": {"signed_up": "17/05", "plan": "free"}}),
        DateFormat::DayMonthYear,
    );
    assert_eq!(errors, []);
    assert_eq!(attributes["signed_up"], Patch::Absent);
    assert_eq!(attributes["plan"], Patch::Set(json!("free")));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].code, ErrorCode::PartialDate);
    assert_eq!(warnings[0].field, "customAttributes.signed_up");
    let (_, errors, _) = read_as(
        json!({"customAttributes": {"signed_up": "05/17/2021"}}),
        DateFormat::DayMonthYear,
    );
    assert_eq!(errors[0].code, ErrorCode::InvalidDate);
}

#[test]
fn field_kinds_parse_from_type_and_options() {
    let ok = [
        ("string", None, FieldKind::String),
        ("number", None, FieldKind::Number),
        ("boolean", Some(json!(null)), FieldKind::Boolean),
        ("date", None, FieldKind::Date),
        (
            "enum",
            Some(json!(["a", "B"])),
            FieldKind::Enum(vec!["a".into(), "B".into()]),
        ),
    ];
    for (type_name, options, expected) in ok {
        let kind = FieldKind::parse(type_name, options.as_ref()).unwrap();
        assert_eq!(kind, expected);
        assert_eq!(kind.type_name(), type_name);
        assert_eq!(kind.options().is_some(), type_name == "enum");
    }
    let bad = [
        ("text", None, "unknown field type \"text\""),
        ("String", None, "unknown field type"),
        ("string", Some(json!(["a"])), "only allowed for type enum"),
        ("enum", None, "needs options"),
        ("enum", Some(json!([])), "needs options"),
        ("enum", Some(json!("a,b")), "needs options"),
        (
            "enum",
            Some(json!(["a", "a"])),
            "options[1] \"a\" is listed twice",
        ),
        (
            "enum",
            Some(json!(["a", 2])),
            "options[1] must be a string, got a number",
        ),
        ("enum", Some(json!(["  "])), "options[0] is empty"),
        ("enum", Some(json!([" a"])), "white space"),
        ("enum", Some(json!(["a\u{0}"])), "NUL"),
        ("enum", Some(json!(["x".repeat(256)])), "longer than 255"),
    ];
    for (type_name, options, needle) in bad {
        let message = FieldKind::parse(type_name, options.as_ref()).unwrap_err();
        assert!(
            message.contains(needle),
            "{type_name} {options:?}: {message}"
        );
    }
    let too_many: Vec<String> = (0..=MAX_ENUM_OPTIONS).map(|i| i.to_string()).collect();
    assert!(FieldKind::parse("enum", Some(&json!(too_many))).is_err());
}

#[test]
fn field_names_are_short_identifiers() {
    let cases = [
        ("plan", true),
        ("account_balance", true),
        ("A1_b2", true),
        (&"a".repeat(64), true),
        (&"a".repeat(65), false),
        ("", false),
        ("1plan", false),
        ("_plan", false),
        ("plan-type", false),
        ("plan type", false),
        ("plän", false),
        ("a/b", false),
    ];
    for (name, ok) in cases {
        assert_eq!(check_field_name(name).is_ok(), ok, "{name:?}");
    }
}

#[test]
fn values_are_converted_by_type() {
    let cases = [
        // string: text, numbers and booleans as their text
        ("note", json!("  hello "), Patch::Set(json!("hello"))),
        ("note", json!(12.5), Patch::Set(json!("12.5"))),
        ("note", json!(true), Patch::Set(json!("true"))),
        (
            "note",
            json!("x".repeat(2000)),
            Patch::Set(json!("x".repeat(2000))),
        ),
        // number: JSON numbers, numeric strings
        ("account_balance", json!(12.5), Patch::Set(json!(12.5))),
        ("account_balance", json!(-3), Patch::Set(json!(-3))),
        ("account_balance", json!("12.5"), Patch::Set(json!(12.5))),
        ("account_balance", json!(" 42 "), Patch::Set(json!(42))),
        ("account_balance", json!("1e3"), Patch::Set(json!(1000.0))),
        // boolean: JSON booleans, 1/0, words in any case
        ("vip", json!(true), Patch::Set(json!(true))),
        ("vip", json!(0), Patch::Set(json!(false))),
        ("vip", json!("YES"), Patch::Set(json!(true))),
        ("vip", json!("no"), Patch::Set(json!(false))),
        ("vip", json!("1"), Patch::Set(json!(true))),
        ("vip", json!("False"), Patch::Set(json!(false))),
        // date: stored as the YYYY-MM-DD string
        (
            "signed_up",
            json!("2024-02-29"),
            Patch::Set(json!("2024-02-29")),
        ),
        (
            "signed_up",
            json!("2999-01-01"),
            Patch::Set(json!("2999-01-01")),
        ),
        // enum: exact option
        ("plan", json!("premium"), Patch::Set(json!("premium"))),
        ("plan", json!(" free "), Patch::Set(json!("free"))),
        // null or blank clears, whatever the type
        ("plan", json!(null), Patch::Clear),
        ("vip", json!(""), Patch::Clear),
        ("account_balance", json!("  "), Patch::Clear),
    ];
    for (name, value, expected) in cases {
        let (attributes, errors) = read(json!({"customAttributes": {name: value.clone()}}));
        assert_eq!(errors, vec![], "{name} {value}");
        assert_eq!(attributes.get(name), Some(&expected), "{name} {value}");
    }
}

#[test]
fn wrong_values_name_the_attribute_and_what_was_expected() {
    let cases = [
        (
            "note",
            json!({"a": 1}),
            ErrorCode::InvalidValue,
            "expected a string, got an object",
        ),
        (
            "note",
            json!("x".repeat(2001)),
            ErrorCode::TooLong,
            "at most 2000",
        ),
        ("note", json!("a\u{0}b"), ErrorCode::InvalidValue, "NUL"),
        (
            "account_balance",
            json!("12,5"),
            ErrorCode::InvalidValue,
            "expected a number such as 12.5, got \"12,5\"",
        ),
        (
            "account_balance",
            json!("NaN"),
            ErrorCode::InvalidValue,
            "expected a number",
        ),
        (
            "account_balance",
            json!("inf"),
            ErrorCode::InvalidValue,
            "expected a number",
        ),
        (
            "account_balance",
            json!("1e999"),
            ErrorCode::InvalidValue,
            "expected a number",
        ),
        (
            "account_balance",
            json!(true),
            ErrorCode::InvalidValue,
            "got a boolean",
        ),
        (
            "vip",
            json!("maybe"),
            ErrorCode::InvalidValue,
            "expected true or false",
        ),
        ("vip", json!(2), ErrorCode::InvalidValue, "got a number"),
        (
            "signed_up",
            json!("2023-02-29"),
            ErrorCode::InvalidDate,
            "not a day",
        ),
        (
            "signed_up",
            json!("29/02/2024"),
            ErrorCode::InvalidDate,
            "YYYY-MM-DD",
        ),
        (
            "signed_up",
            json!(20240229),
            ErrorCode::InvalidValue,
            "expected a date as YYYY-MM-DD, got a number",
        ),
        (
            "plan",
            json!("Premium"),
            ErrorCode::InvalidValue,
            "expected one of \"free\", \"standard\", \"premium\" (exact case), got \"Premium\"",
        ),
        (
            "plan",
            json!(["free"]),
            ErrorCode::InvalidValue,
            "got an array",
        ),
        (
            "coupon",
            json!("X1"),
            ErrorCode::UnknownField,
            "no custom field named \"coupon\"",
        ),
        (
            "coupon",
            json!(null),
            ErrorCode::UnknownField,
            "no custom field named",
        ),
    ];
    for (name, value, code, needle) in cases {
        let (attributes, errors) = read(json!({"customAttributes": {name: value.clone()}}));
        assert!(attributes.is_empty(), "{name} {value}");
        assert_eq!(errors.len(), 1, "{name} {value}: {errors:?}");
        let issue = &errors[0];
        assert_eq!(
            (issue.field.clone(), issue.code),
            (format!("customAttributes.{name}"), code)
        );
        assert!(
            issue.message.contains(needle),
            "{name} {value}: {}",
            issue.message
        );
    }
}

#[test]
fn reteno_fields_and_custom_attributes_read_the_same() {
    let cases = [
        (
            json!({"customAttributes": {"plan": "free", "account_balance": 10, "vip": null}}),
            json!({"fields": [{"id": "plan", "value": "free"}, {"id": "account_balance", "value": 10}, {"id": "vip", "value": null}]}),
        ),
        (
            json!({"customAttributes": {"note": "first"}}),
            json!({"customAttributes": {"note": "first"}, "fields": [{"id": "note", "value": "second"}]}),
        ),
        (
            json!({"customAttributes": {"note": "first"}}),
            json!({"fields": [{"id": "note", "value": "first"}, {"id": "note", "value": "second"}]}),
        ),
    ];
    for (flat, reteno) in cases {
        let (a, a_errors) = read(flat.clone());
        let (b, b_errors) = read(reteno.clone());
        assert!(
            a_errors.is_empty() && b_errors.is_empty(),
            "{a_errors:?} {b_errors:?}"
        );
        assert_eq!(a, b, "{flat} vs {reteno}");
    }
}

#[test]
fn malformed_attribute_containers_are_invalid_values() {
    let cases = [
        (
            json!({"customAttributes": ["plan"]}),
            vec![("customAttributes", "expected an object")],
        ),
        (
            json!({"customAttributes": null}),
            vec![("customAttributes", "to clear one attribute")],
        ),
        (
            json!({"fields": {"plan": "free"}}),
            vec![("fields", "expected an array")],
        ),
        (json!({"fields": null}), vec![("fields", "got null")]),
        (
            json!({"fields": [{"id": "plan"}, {"id": 3, "value": 1}, "plan", {"id": "plan", "value": "free"}]}),
            vec![
                ("fields", "fields[0] must be"),
                ("fields", "fields[1] must be"),
                ("fields", "fields[2] must be"),
            ],
        ),
    ];
    for (contact, expected) in cases {
        let (_, errors) = read(contact.clone());
        let got: Vec<(&str, ErrorCode)> =
            errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        let want: Vec<(&str, ErrorCode)> = expected
            .iter()
            .map(|(f, _)| (*f, ErrorCode::InvalidValue))
            .collect();
        assert_eq!(got, want, "{contact}");
        for (issue, (_, needle)) in errors.iter().zip(&expected) {
            assert!(
                issue.message.contains(needle),
                "{contact}: {}",
                issue.message
            );
        }
    }
}

#[test]
fn attribute_names_come_with_their_json_pointers() {
    let cases = [
        (
            json!({"customAttributes": {"plan": 1, "vip": true}}),
            vec![
                ("plan", "/customAttributes/plan"),
                ("vip", "/customAttributes/vip"),
            ],
        ),
        (
            json!({"customAttributes": {"a/b": 1, "m~n": 2}}),
            vec![
                ("a/b", "/customAttributes/a~1b"),
                ("m~n", "/customAttributes/m~0n"),
            ],
        ),
        (
            json!({"customAttributes": {"~/": 1}}),
            vec![("~/", "/customAttributes/~0~1")],
        ),
        (
            json!({"fields": [{"id": "plan", "value": 1}, {"value": 2}, {"id": "vip"}, "x"]}),
            vec![("plan", "/fields/0/id"), ("vip", "/fields/2/id")],
        ),
        (
            json!({"customAttributes": {"note": "x"}, "fields": [{"id": "coupon", "value": "y"}]}),
            vec![
                ("note", "/customAttributes/note"),
                ("coupon", "/fields/0/id"),
            ],
        ),
        (
            json!({"customAttributes": "plan", "fields": {"id": "x"}}),
            vec![],
        ),
        (json!({"phone": "+212612345678"}), vec![]),
        (json!("not an object"), vec![]),
    ];
    for (contact, expected) in cases {
        let got: Vec<(String, String)> = attribute_names(&contact)
            .map(|(name, at)| (name.to_owned(), at.pointer(name)))
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect();
        assert_eq!(got, want, "{contact}");
        for (_, pointer) in &got {
            assert!(
                contact.pointer(pointer).is_some(),
                "{pointer} does not resolve in {contact}"
            );
        }
    }
}
