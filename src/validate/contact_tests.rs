//! Tables of cases for whole rows: the two shapes, absent/null/blank, limits, gender, birthdays,
//! identifiers required by dedupeOn, every error of a row collected, and dedupe_key agreeing
//! with validate_contact.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use time::macros::date;

use super::super::{
    DateFormat, ExternalId, FieldKind, MAX_EXTERNAL_ID_CHARS, Phone, dedupe_key, normalize_email,
    normalize_phone,
};
use super::*;

const TODAY: Date = date!(2025 - 06 - 15);

fn fields() -> HashMap<String, FieldKind> {
    let plans = ["free", "standard", "premium", "trial"]
        .map(String::from)
        .to_vec();
    HashMap::from([
        ("plan".to_owned(), FieldKind::Enum(plans)),
        ("account_balance".to_owned(), FieldKind::Number),
    ])
}

fn check(raw: &Value, on: Identifier) -> Result<ValidContact, Vec<RowIssue>> {
    let fields = fields();
    let rules = Rules {
        dedupe_on: on,
        default_region: Some("MA"),
        fields: &fields,
        today: TODAY,
        date_format: Default::default(),
    };
    validate_contact(raw, &rules)
}

fn codes(issues: &[RowIssue]) -> Vec<(&str, ErrorCode)> {
    issues.iter().map(|i| (i.field.as_str(), i.code)).collect()
}

fn phone(s: &str) -> Phone {
    normalize_phone(s, None).unwrap()
}

#[test]
fn a_flat_row_from_the_generator_validates() {
    let raw = json!({
        "externalId": "crm-000000017", "phone": "(+212) 612-345678", "email": "Fatima.Benali17@Yahoo.com",
        "firstName": "Fatima", "lastName": "Benali", "city": "Casablanca", "gender": "female",
        "birthday": "1987-03-21", "occupation": "nurse",
        "customAttributes": {"plan": "premium", "account_balance": 1234.5},
        "tags": ["vip"], "groups": ["x"], "somethingElse": {"ignored": true}
    });
    let expected = ValidContact {
        external_id: Patch::Set(ExternalId::parse("crm-000000017").unwrap()),
        phone: Patch::Set(phone("+212612345678")),
        email: Patch::Set(normalize_email("fatima.benali17@yahoo.com").unwrap()),
        first_name: Patch::Set("Fatima".into()),
        last_name: Patch::Set("Benali".into()),
        city: Patch::Set("Casablanca".into()),
        gender: Patch::Set(Gender::Female),
        birthday: Patch::Set(date!(1987 - 03 - 21)),
        occupation: Patch::Set("nurse".into()),
        custom_attributes: BTreeMap::from([
            ("plan".to_owned(), Patch::Set(json!("premium"))),
            ("account_balance".to_owned(), Patch::Set(json!(1234.5))),
        ]),
        tags: Patch::Set(vec!["vip".into()]),
        ..ValidContact::default()
    };
    assert_eq!(check(&raw, Identifier::Phone), Ok(expected));
}

#[test]
fn reteno_and_flat_shapes_give_the_same_contact() {
    let cases = [
        (
            json!({"phone": "+212612345678", "email": "a@b.com", "city": "Rabat", "state": "Rabat-Salé",
                   "zip": "10000", "address": "1 Avenue Mohammed V",
                   "customAttributes": {"plan": "free"}}),
            json!({"channels": [{"type": "sms", "value": "+212 6 12 34 56 78"}, {"type": "email", "value": "A@B.com"}],
                   "address": {"town": "Rabat", "region": "Rabat-Salé", "postcode": "10000", "address": "1 Avenue Mohammed V"},
                   "fields": [{"id": "plan", "value": "free"}]}),
        ),
        (
            json!({"phone": "+212612345678", "email": "a@b.com"}),
            json!({"primaryPhone": "0612345678", "primaryEmail": "a@b.com"}),
        ),
        (
            json!({"phone": "+447912345678", "city": null, "zip": "SW1A 1AA"}),
            json!({"channels": [{"type": "whatsapp", "value": "447912345678"}], "address": {"town": null, "postcode": "SW1A 1AA"}}),
        ),
        (
            json!({"phone": "+212612345678", "zip": "20250"}),
            json!({"channels": [{"type": "phone", "value": 212612345678u64}], "address": {"postcode": 20250}}),
        ),
        (
            // A flat key wins over the member of Reteno's address object.
            json!({"phone": "+212612345678", "city": "Fès"}),
            json!({"phone": "+212612345678", "city": "Fès", "address": {"town": "Meknès"}}),
        ),
    ];
    for (flat, reteno) in cases {
        let a = check(&flat, Identifier::Phone).unwrap_or_else(|e| panic!("{flat}: {e:?}"));
        let b = check(&reteno, Identifier::Phone).unwrap_or_else(|e| panic!("{reteno}: {e:?}"));
        assert_eq!(a, b, "{flat} vs {reteno}");
    }
}

type Getter = fn(&ValidContact) -> &Patch<String>;

const TEXT_FIELDS: [(&str, usize, Getter); 9] = [
    ("firstName", MAX_NAME_CHARS, |c| &c.first_name),
    ("lastName", MAX_NAME_CHARS, |c| &c.last_name),
    ("fullName", MAX_NAME_CHARS, |c| &c.full_name),
    ("occupation", MAX_NAME_CHARS, |c| &c.occupation),
    ("preferredChannel", MAX_PREFERRED_CHANNEL_CHARS, |c| {
        &c.preferred_channel
    }),
    ("address", MAX_ADDRESS_CHARS, |c| &c.address),
    ("city", MAX_NAME_CHARS, |c| &c.city),
    ("state", MAX_NAME_CHARS, |c| &c.state),
    ("zip", MAX_ZIP_CHARS, |c| &c.zip),
];

#[test]
fn absent_leaves_null_and_blank_clear_and_strings_are_trimmed() {
    let cases: [(Option<Value>, Patch<&str>); 5] = [
        (None, Patch::Absent),
        (Some(json!(null)), Patch::Clear),
        (Some(json!("")), Patch::Clear),
        (Some(json!("   ")), Patch::Clear),
        (Some(json!("  x y  ")), Patch::Set("x y")),
    ];
    for (key, _, get) in TEXT_FIELDS {
        for (value, expected) in &cases {
            let mut raw = json!({"phone": "+212612345678"});
            if let Some(value) = value {
                raw[key] = value.clone();
            }
            let contact = check(&raw, Identifier::Phone).unwrap();
            assert_eq!(
                get(&contact),
                &expected.clone().map(String::from),
                "{key} = {value:?}"
            );
        }
    }
    let identifiers = [
        (
            json!({"externalId": "e", "phone": null, "email": ""}),
            Patch::Clear,
            Patch::Clear,
        ),
        (json!({"externalId": "e"}), Patch::Absent, Patch::Absent),
        (
            json!({"externalId": "e", "gender": null, "birthday": ""}),
            Patch::Absent,
            Patch::Absent,
        ),
    ];
    for (raw, phone, email) in identifiers {
        let contact = check(&raw, Identifier::ExternalId).unwrap();
        assert_eq!((contact.phone, contact.email), (phone, email), "{raw}");
    }
    let contact = check(
        &json!({"externalId": "e", "gender": null, "birthday": " "}),
        Identifier::ExternalId,
    )
    .unwrap();
    assert_eq!(
        (contact.gender, contact.birthday),
        (Patch::Clear, Patch::Clear)
    );
}

#[test]
fn every_text_field_has_its_limit_and_refuses_control_characters() {
    let limits = TEXT_FIELDS.map(|(key, max, _)| (key, max));
    for (key, max) in limits
        .into_iter()
        .chain([("externalId", MAX_EXTERNAL_ID_CHARS)])
    {
        let row = |value: Value| {
            let mut raw = json!({"phone": "+212612345678"});
            raw[key] = value;
            check(&raw, Identifier::Phone)
        };
        assert!(
            row(json!("é".repeat(max))).is_ok(),
            "{key} at its limit {max}"
        );
        let cases = [
            (json!("é".repeat(max + 1)), ErrorCode::TooLong),
            (json!("a\u{0}b"), ErrorCode::InvalidValue),
            (json!("a\u{1f}b"), ErrorCode::InvalidValue),
            (json!(["a"]), ErrorCode::InvalidValue),
        ];
        for (value, code) in cases {
            let errors = row(value.clone()).unwrap_err();
            assert_eq!(codes(&errors), vec![(key, code)], "{key} = {value}");
        }
    }
    let numbers_as_text = [
        ("zip", true),
        ("externalId", true),
        ("city", false),
        ("firstName", false),
    ];
    for (key, accepted) in numbers_as_text {
        let mut raw = json!({"phone": "+212612345678"});
        raw[key] = json!(75001);
        assert_eq!(
            check(&raw, Identifier::Phone).is_ok(),
            accepted,
            "{key} = 75001"
        );
    }
}

#[test]
fn gender_is_male_or_female_in_any_case() {
    let cases = [
        (json!("male"), Ok(Patch::Set(Gender::Male))),
        (json!("Female"), Ok(Patch::Set(Gender::Female))),
        (json!(" MALE "), Ok(Patch::Set(Gender::Male))),
        (json!(""), Ok(Patch::Clear)),
        (
            json!("M"),
            Err("expected \"male\" or \"female\", got \"M\""),
        ),
        (json!("unknown"), Err("got \"unknown\"")),
        (json!("X"), Err("got \"X\"")),
        (json!(1), Err("expected a string, got a number")),
    ];
    for (value, expected) in cases {
        let got = check(
            &json!({"phone": "+212612345678", "gender": value}),
            Identifier::Phone,
        );
        match (got, expected) {
            (Ok(contact), Ok(gender)) => assert_eq!(contact.gender, gender, "{value}"),
            (Err(errors), Err(needle)) => {
                assert_eq!(
                    codes(&errors),
                    vec![("gender", ErrorCode::InvalidValue)],
                    "{value}"
                );
                assert!(
                    errors[0].message.contains(needle),
                    "{value}: {}",
                    errors[0].message
                );
            }
            (got, _) => panic!("{value}: {got:?}"),
        }
    }
    assert_eq!(
        (Gender::Male.as_str(), Gender::Female.as_str()),
        ("male", "female")
    );
}

#[test]
fn birthdays_are_real_past_dates_from_1900() {
    let cases = [
        ("2024-02-29", Ok(date!(2024 - 02 - 29))),
        ("1900-01-01", Ok(date!(1900 - 01 - 01))),
        ("2025-06-15", Ok(TODAY)),
        (
            "2023-02-29",
            Err((ErrorCode::InvalidDate, "not a day of the calendar")),
        ),
        ("2025-06-16", Err((ErrorCode::InvalidDate, "in the future"))),
        ("1899-12-31", Err((ErrorCode::InvalidDate, "before 1900"))),
        ("1990-1-5", Err((ErrorCode::InvalidDate, "YYYY-MM-DD"))),
        ("31/12/1990", Err((ErrorCode::InvalidDate, "YYYY-MM-DD"))),
        ("1990-13-01", Err((ErrorCode::InvalidDate, "not a day"))),
        ("yesterday", Err((ErrorCode::InvalidDate, "YYYY-MM-DD"))),
    ];
    for (value, expected) in cases {
        let got = check(
            &json!({"phone": "+212612345678", "birthday": value}),
            Identifier::Phone,
        );
        match (got, expected) {
            (Ok(contact), Ok(day)) => assert_eq!(contact.birthday, Patch::Set(day), "{value}"),
            (Err(errors), Err((code, needle))) => {
                assert_eq!(codes(&errors), vec![("birthday", code)], "{value}");
                assert!(
                    errors[0].message.contains(needle),
                    "{value}: {}",
                    errors[0].message
                );
            }
            (got, _) => panic!("{value}: {got:?}"),
        }
    }
    let number = check(
        &json!({"phone": "+212612345678", "birthday": 19900105}),
        Identifier::Phone,
    );
    assert_eq!(
        codes(&number.unwrap_err()),
        vec![("birthday", ErrorCode::InvalidValue)]
    );
}

#[test]
fn the_identifier_named_by_dedupe_on_is_required() {
    use Identifier::{Email as ByEmail, ExternalId as ById, Phone as ByPhone};
    let cases = [
        (
            ByPhone,
            json!({"email": "a@b.com"}),
            Some(("phone", ErrorCode::MissingIdentifier)),
        ),
        (
            ByPhone,
            json!({"phone": null}),
            Some(("phone", ErrorCode::MissingIdentifier)),
        ),
        (
            ByPhone,
            json!({"phone": "  "}),
            Some(("phone", ErrorCode::MissingIdentifier)),
        ),
        (
            ByPhone,
            json!({"channels": [{"type": "email", "value": "a@b.com"}]}),
            Some(("phone", ErrorCode::MissingIdentifier)),
        ),
        (
            ByPhone,
            json!({"phone": "12345"}),
            Some(("phone", ErrorCode::InvalidPhone)),
        ),
        (ByPhone, json!({"phone": "0612345678"}), None),
        (
            ByEmail,
            json!({"phone": "+212612345678"}),
            Some(("email", ErrorCode::MissingIdentifier)),
        ),
        (
            ByEmail,
            json!({"email": ""}),
            Some(("email", ErrorCode::MissingIdentifier)),
        ),
        (
            ByEmail,
            json!({"email": "x@"}),
            Some(("email", ErrorCode::InvalidEmail)),
        ),
        (ByEmail, json!({"primaryEmail": "x@y.io"}), None),
        (
            ByEmail,
            json!({"phone": "12345", "email": "x@y.io"}),
            Some(("phone", ErrorCode::InvalidPhone)),
        ),
        (
            ById,
            json!({"phone": "+212612345678", "email": "a@b.com"}),
            Some(("externalId", ErrorCode::MissingIdentifier)),
        ),
        (
            ById,
            json!({"externalId": null}),
            Some(("externalId", ErrorCode::MissingIdentifier)),
        ),
        (
            ById,
            json!({"externalId": "x".repeat(256)}),
            Some(("externalId", ErrorCode::TooLong)),
        ),
        (ById, json!({"externalId": 42}), None),
    ];
    for (on, raw, expected) in cases {
        match (check(&raw, on), expected) {
            (Ok(contact), None) => assert!(contact.dedupe_key(on).is_some(), "{on:?} {raw}"),
            (Err(errors), Some(issue)) => {
                assert_eq!(codes(&errors), vec![issue], "{on:?} {raw}");
                if issue.1 == ErrorCode::MissingIdentifier {
                    assert!(
                        errors[0]
                            .message
                            .contains(&format!("matched on {}", on.as_str()))
                    );
                }
            }
            (got, _) => panic!("{on:?} {raw}: {got:?}"),
        }
    }
}

#[test]
fn every_error_of_a_row_is_reported() {
    let raw = json!({
        "externalId": "crm\u{0}1", "phone": "+999123456789", "email": "a@@b.com",
        "firstName": "x".repeat(256), "lastName": 7, "gender": "X", "birthday": "1990-13-01",
        "address": 12, "zip": "1".repeat(33),
        "channels": [{"type": "fax", "value": "1"}],
        "customAttributes": {"plan": "gold", "coupon": "X", "account_balance": "lots"}
    });
    let errors = check(&raw, Identifier::Phone).unwrap_err();
    assert_eq!(
        codes(&errors),
        vec![
            ("externalId", ErrorCode::InvalidValue),
            ("phone", ErrorCode::InvalidPhone),
            ("email", ErrorCode::InvalidEmail),
            ("firstName", ErrorCode::TooLong),
            ("lastName", ErrorCode::InvalidValue),
            ("gender", ErrorCode::InvalidValue),
            ("birthday", ErrorCode::InvalidDate),
            ("address", ErrorCode::InvalidValue),
            ("zip", ErrorCode::TooLong),
            ("channels", ErrorCode::InvalidValue),
            ("customAttributes.account_balance", ErrorCode::InvalidValue),
            ("customAttributes.coupon", ErrorCode::UnknownField),
            ("customAttributes.plan", ErrorCode::InvalidValue),
        ]
    );
    let missing = check(
        &json!({"email": "bad", "firstName": "\u{0}"}),
        Identifier::Phone,
    )
    .unwrap_err();
    assert_eq!(
        codes(&missing),
        vec![
            ("email", ErrorCode::InvalidEmail),
            ("firstName", ErrorCode::InvalidValue),
            ("phone", ErrorCode::MissingIdentifier),
        ]
    );
}

#[test]
fn a_contact_must_be_a_json_object() {
    for raw in [
        json!(null),
        json!("+212612345678"),
        json!(12),
        json!([{"phone": "+212612345678"}]),
    ] {
        let errors = check(&raw, Identifier::Phone).unwrap_err();
        assert_eq!(codes(&errors), vec![("", ErrorCode::InvalidRow)], "{raw}");
        assert!(errors[0].message.contains("must be a JSON object"));
    }
}

#[test]
fn dedupe_key_agrees_with_validate_contact() {
    let rows = [
        json!({"externalId": " crm-1 ", "phone": "0612345678", "email": " A@B.com "}),
        json!({"externalId": 123456, "primaryPhone": "00212 612 345 678", "primaryEmail": "X.Y@Example.ORG"}),
        json!({"externalId": "crm-2", "channels": [{"type": "SMS", "value": "212612345678"}, {"type": "email", "value": "Q@W.io"}]}),
        json!({"externalId": "crm-3", "phone": 212612345678u64, "email": "z@z.co"}),
        json!({"externalId": "crm-4", "phone": "+44 (0) 7912 345678", "email": "\tMIXED@Case.Com\n"}),
        json!({"externalId": "crm-5", "phone": "4915123456789", "email": "de@example.de"}),
    ];
    for raw in &rows {
        for on in [Identifier::Phone, Identifier::Email, Identifier::ExternalId] {
            let contact = check(raw, on).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            let key = dedupe_key(raw, on, Some("MA"));
            assert!(key.is_some(), "{on:?} {raw}");
            assert_eq!(contact.dedupe_key(on), key.as_deref(), "{on:?} {raw}");
        }
    }
    let expected = [
        ("+212612345678", "a@b.com", "crm-1"),
        ("+212612345678", "x.y@example.org", "123456"),
        ("+212612345678", "q@w.io", "crm-2"),
    ];
    for (raw, (phone, email, id)) in rows.iter().zip(expected) {
        let keys = [Identifier::Phone, Identifier::Email, Identifier::ExternalId]
            .map(|on| dedupe_key(raw, on, Some("MA")).unwrap());
        assert_eq!(keys, [phone, email, id].map(String::from), "{raw}");
    }
}

#[test]
fn birthdays_follow_the_date_format_and_one_without_a_year_is_left_out_with_a_warning() {
    let fields = fields();
    let rules = |date_format| Rules {
        dedupe_on: Identifier::Phone,
        default_region: Some("MA"),
        fields: &fields,
        today: TODAY,
        date_format,
    };
    let row = |birthday: &str| json!({"phone": "+212612345678", "birthday": birthday});
    let french = rules(DateFormat::DayMonthYear);
    let contact = validate_contact(&row("21/03/1987"), &french).unwrap();
    assert_eq!(contact.birthday, Patch::Set(date!(1987 - 03 - 21)));
    assert_eq!(contact.warnings, []);
    // ISO is always taken; the other order is not.
    let contact = validate_contact(&row("1987-03-21"), &french).unwrap();
    assert_eq!(contact.birthday, Patch::Set(date!(1987 - 03 - 21)));
    let errors = validate_contact(&row("03/21/1987"), &french).unwrap_err();
    assert_eq!(codes(&errors), vec![("birthday", ErrorCode::InvalidDate)]);
    let errors = validate_contact(&row("21/03/2030"), &french).unwrap_err();
    assert!(errors[0].message.contains("in the future"), "{errors:?}");
    for (birthday, format) in [
        ("07/21", DateFormat::Iso),
        ("--07-21", DateFormat::Iso),
        ("21/07", DateFormat::DayMonthYear),
    ] {
        let contact = validate_contact(&row(birthday), &rules(format)).unwrap();
        assert_eq!(contact.birthday, Patch::Absent, "{birthday}");
        assert_eq!(
            codes(&contact.warnings),
            vec![("birthday", ErrorCode::PartialDate)],
            "{birthday}"
        );
    }
}
