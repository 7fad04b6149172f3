//! The three identifiers a contact is matched on (externalId, phone, email) and where a row writes
//! them: flat keys, their aliases, or Reteno's `channels`. `validate_contact` and the intake's cheap
//! `dedupe_key` read them through the same functions, so both see the same normalised key.

use serde_json::{Map, Value};
use std::borrow::Borrow;
use std::collections::HashMap;

use super::email::parse_email;
use super::phone::{compact, normalize_phone};
use super::text::{Numbers, Text, check_len, invalid_value, kind_of, quoted, read};
use super::{Email, ErrorCode, Identifier, MAX_EXTERNAL_ID_CHARS, Patch, Phone, RowIssue};

/// A contact's id in the client's own system: trimmed, 1 to 255 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    /// Checks and trims an external id; `Err` is a human message.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = Value::String(raw.to_owned());
        match read_external_id_value(Some(&value)) {
            Ok(Patch::Set(id)) => Ok(id),
            Ok(_) => Err("is empty".into()),
            Err(issue) => Err(issue.message),
        }
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact's own id as a row names it (`dedupeOn: "id"`): a UUID, kept with its hyphenated
/// lower-case text, which is the dedupe key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactId {
    uuid: uuid::Uuid,
    text: String,
}

impl ContactId {
    /// Reads a UUID in any of its usual writings; `Err` is a human message.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let uuid = uuid::Uuid::parse_str(raw.trim())
            .map_err(|_| format!("expected a contact id (a UUID), got {}", quoted(raw)))?;
        Ok(Self {
            uuid,
            text: uuid.hyphenated().to_string(),
        })
    }

    pub fn uuid(&self) -> uuid::Uuid {
        self.uuid
    }

    /// `0193…-…`, hyphenated lower case.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The row's `id`, when rows are matched on it.
pub(super) fn read_contact_id(contact: &Map<String, Value>) -> Result<Option<ContactId>, RowIssue> {
    match read(contact.get("id"), "id", Numbers::Refused)? {
        Text::Value(s) => ContactId::parse(&s)
            .map(Some)
            .map_err(|m| invalid_value("id", m)),
        _ => Ok(None),
    }
}

impl From<ExternalId> for String {
    fn from(value: ExternalId) -> Self {
        value.0
    }
}

impl AsRef<str> for ExternalId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The normalised dedupe identifier of a raw contact (same normalisation as validate_contact), or None
/// when it is missing or invalid. Used at intake to find two rows with the same identifier; must be cheap
/// (only looks at that one identifier).
pub fn dedupe_key(
    raw: &Value,
    dedupe_on: Identifier,
    default_region: Option<&str>,
) -> Option<String> {
    let contact = raw.as_object()?;
    match dedupe_on {
        Identifier::Phone => read_phone(contact, default_region)
            .ok()?
            .into_set()
            .map(String::from),
        Identifier::Email => read_email(contact).ok()?.into_set().map(String::from),
        Identifier::ExternalId => read_external_id(contact).ok()?.into_set().map(String::from),
        Identifier::Id => read_contact_id(contact)
            .ok()?
            .map(|id| id.as_str().to_owned()),
    }
}

/// The dedupe keys of a request's contacts, to find the rows that share one: each row's
/// `dedupe_key`, except that a phone whose last four digits no other row's phone ends with is
/// not normalised at all (`None`: it cannot share its number with another row).
///
/// Normalising phones was the largest part of a JSON intake's CPU. Two phones can only
/// normalise to the same number when they end with the same four digits: whatever
/// libphonenumber strips or rewrites (a '+', an international or national prefix, a carrier
/// code) is at the start, the national number's digits stay at the end as written, and no
/// valid national number has fewer than four (`phone_tails_survive_every_written_form` checks
/// this on every region's example numbers).
pub fn dedupe_keys<C: Borrow<Value>>(
    contacts: &[C],
    on: Identifier,
    default_region: Option<&str>,
) -> Vec<Option<String>> {
    if on != Identifier::Phone {
        return contacts
            .iter()
            .map(|contact| dedupe_key(contact.borrow(), on, default_region))
            .collect();
    }
    let tails: Vec<Option<String>> = contacts.iter().map(|c| phone_tail(c.borrow())).collect();
    let mut counts: HashMap<&str, u32> = HashMap::with_capacity(tails.len());
    for tail in tails.iter().flatten() {
        *counts.entry(tail).or_default() += 1;
    }
    contacts
        .iter()
        .zip(&tails)
        .map(|(contact, tail)| match tail {
            Some(tail) if counts.get(tail.as_str()).is_some_and(|&n| n > 1) => {
                dedupe_key(contact.borrow(), on, default_region)
            }
            _ => None,
        })
        .collect()
}

/// The last four digits of the phone `read_phone` would normalise (all of them when it has
/// fewer); `None` when there is none, or it is no phone number at all.
fn phone_tail(raw: &Value) -> Option<String> {
    let contact = raw.as_object()?;
    let value = match source(contact, ["phone", "primaryPhone"], is_phone_channel) {
        Source::Absent => return None,
        Source::Key(value) => Some(value),
        Source::Channel(_, value) => value,
    };
    let Ok(Text::Value(number)) = read(value, "phone", Numbers::AsText) else {
        return None;
    };
    let digits = compact(&number).ok()?;
    let digits = digits.trim_start_matches('+');
    Some(digits[digits.len().saturating_sub(PHONE_TAIL_DIGITS)..].to_owned())
}

/// How many of a phone's last digits `dedupe_keys` compares before it normalises the phone.
pub(super) const PHONE_TAIL_DIGITS: usize = 4;

/// The contact's `externalId`; integers are taken as their decimal text.
pub(super) fn read_external_id(
    contact: &Map<String, Value>,
) -> Result<Patch<ExternalId>, RowIssue> {
    read_external_id_value(contact.get("externalId"))
}

fn read_external_id_value(value: Option<&Value>) -> Result<Patch<ExternalId>, RowIssue> {
    external_id_as(value, "externalId")
}

/// The external id a matched contact is given instead of the one it was matched on
/// (BulkUpsert's `new_contact_key`).
pub(super) fn read_new_external_id(
    contact: &Map<String, Value>,
) -> Result<Patch<ExternalId>, RowIssue> {
    match external_id_as(contact.get(NEW_EXTERNAL_ID), "new_contact_key")? {
        // It renames: it cannot clear.
        Patch::Clear => Ok(Patch::Absent),
        patch => Ok(patch),
    }
}

/// The member a BulkUpsert row carries for `new_contact_key`.
pub const NEW_EXTERNAL_ID: &str = "$newExternalId";

fn external_id_as(value: Option<&Value>, field: &str) -> Result<Patch<ExternalId>, RowIssue> {
    Ok(match read(value, field, Numbers::AsText)? {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        Text::Value(id) => {
            check_len(&id, field, MAX_EXTERNAL_ID_CHARS)?;
            Patch::Set(ExternalId(id.into_owned()))
        }
    })
}

/// The contact's phone: `phone`, else `primaryPhone`, else the first sms/phone/whatsapp channel.
pub(super) fn read_phone(
    contact: &Map<String, Value>,
    default_region: Option<&str>,
) -> Result<Patch<Phone>, RowIssue> {
    let (value, channel) = match source(contact, ["phone", "primaryPhone"], is_phone_channel) {
        Source::Absent => return Ok(Patch::Absent),
        Source::Key(value) => (Some(value), None),
        Source::Channel(index, value) => (value, Some(index)),
    };
    let text = read(value, "phone", Numbers::AsText).map_err(|e| from_channel(e, channel))?;
    Ok(match text {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        Text::Value(number) => match normalize_phone(&number, default_region) {
            Ok(phone) => Patch::Set(phone),
            Err(message) => {
                let issue = RowIssue::new("phone", ErrorCode::InvalidPhone, message);
                return Err(from_channel(issue, channel));
            }
        },
    })
}

/// The contact's email: `email`, else `primaryEmail`, else the first email channel.
pub(super) fn read_email(contact: &Map<String, Value>) -> Result<Patch<Email>, RowIssue> {
    let (value, channel) = match source(contact, ["email", "primaryEmail"], is_email_channel) {
        Source::Absent => return Ok(Patch::Absent),
        Source::Key(value) => (Some(value), None),
        Source::Channel(index, value) => (value, Some(index)),
    };
    let text = read(value, "email", Numbers::Refused).map_err(|e| from_channel(e, channel))?;
    Ok(match text {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        Text::Value(address) => match parse_email(&address) {
            Ok(email) => Patch::Set(email),
            Err((code, message)) => {
                return Err(from_channel(RowIssue::new("email", code, message), channel));
            }
        },
    })
}

/// Problems in the shape of `channels` (an array of `{"type", "value"}` with known types).
pub(super) fn check_channels(contact: &Map<String, Value>) -> Vec<RowIssue> {
    let entries = match contact.get("channels") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            let message = format!(
                "expected an array of {{\"type\", \"value\"}}, got {}",
                kind_of(other)
            );
            return vec![invalid_value("channels", message)];
        }
    };
    let mut issues = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let problem = match (entry.get("type"), entry.get("value")) {
            (Some(Value::String(kind)), Some(_))
                if is_email_channel(kind) || is_phone_channel(kind) =>
            {
                continue;
            }
            (Some(Value::String(kind)), Some(_)) => format!(
                "channels[{index}] has type {}; expected email, sms, phone or whatsapp",
                quoted(kind)
            ),
            _ => format!(
                "channels[{index}] must be an object {{\"type\": \"email\"|\"sms\"|\"phone\"|\"whatsapp\", \"value\": \"...\"}}"
            ),
        };
        issues.push(invalid_value("channels", problem));
    }
    issues
}

/// Where a row writes one identifier.
enum Source<'v> {
    Absent,
    /// A flat key, which wins over channels even when it is null or blank.
    Key(&'v Value),
    /// The first channel of a matching type (its index, and its value if it has one).
    Channel(usize, Option<&'v Value>),
}

fn source<'v>(
    contact: &'v Map<String, Value>,
    keys: [&str; 2],
    channel_type: fn(&str) -> bool,
) -> Source<'v> {
    if let Some(value) = keys.iter().find_map(|key| contact.get(*key)) {
        return Source::Key(value);
    }
    let Some(Value::Array(channels)) = contact.get("channels") else {
        return Source::Absent;
    };
    channels
        .iter()
        .enumerate()
        .find(|(_, entry)| matches!(entry.get("type"), Some(Value::String(t)) if channel_type(t)))
        .map_or(Source::Absent, |(index, entry)| {
            Source::Channel(index, entry.get("value"))
        })
}

fn is_phone_channel(kind: &str) -> bool {
    ["sms", "phone", "whatsapp"]
        .iter()
        .any(|k| kind.eq_ignore_ascii_case(k))
}

fn is_email_channel(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("email")
}

/// Says in the message that the value came from `channels[i]` (the field stays the flat name).
fn from_channel(mut issue: RowIssue, channel: Option<usize>) -> RowIssue {
    if let Some(index) = channel {
        issue.message = format!("channels[{index}].value: {}", issue.message);
    }
    issue
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, PhoneNumberType};
    use serde_json::json;

    const TYPES: [PhoneNumberType; 11] = [
        PhoneNumberType::FixedLine,
        PhoneNumberType::Mobile,
        PhoneNumberType::FixedLineOrMobile,
        PhoneNumberType::TollFree,
        PhoneNumberType::PremiumRate,
        PhoneNumberType::SharedCost,
        PhoneNumberType::VoIP,
        PhoneNumberType::PersonalNumber,
        PhoneNumberType::Pager,
        PhoneNumberType::UAN,
        PhoneNumberType::VoiceMail,
    ];

    /// Every region's example number of every type, as (region, E.164, the ways people write
    /// it: international, national with its prefix, E.164, E.164 with 00 for '+').
    fn written_examples() -> Vec<(String, String, Vec<String>)> {
        let util = &*PHONE_NUMBER_UTIL;
        let mut out = Vec::new();
        for region in util.get_supported_regions() {
            for kind in TYPES {
                let Ok(number) = util.get_example_number_for_type_and_region(region, kind) else {
                    continue;
                };
                let e164 = util.format(&number, PhoneNumberFormat::E164).into_owned();
                let forms = vec![
                    util.format(&number, PhoneNumberFormat::International)
                        .into_owned(),
                    util.format(&number, PhoneNumberFormat::National)
                        .into_owned(),
                    format!("00{}", &e164[1..]),
                    e164.clone(),
                ];
                out.push((region.to_string(), e164, forms));
            }
        }
        out
    }

    fn tail(phone: &str) -> String {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        digits[digits.len().saturating_sub(PHONE_TAIL_DIGITS)..].to_owned()
    }

    #[test]
    fn phone_tails_survive_every_written_form() {
        let examples = written_examples();
        let mut read = 0;
        for (region, e164, forms) in &examples {
            for form in forms {
                let Ok(phone) = normalize_phone(form, Some(region)) else {
                    continue;
                };
                read += 1;
                assert_eq!(phone.as_str(), e164, "{form} in {region}");
                assert_eq!(
                    tail(form),
                    tail(e164),
                    "{form} in {region} ends otherwise than {e164}"
                );
                let national = PHONE_NUMBER_UTIL
                    .parse(e164.as_str(), None)
                    .map(|n| n.national_number.to_string().len())
                    .unwrap_or_default();
                assert!(
                    national >= PHONE_TAIL_DIGITS,
                    "{e164}: a national number of {national} digits"
                );
            }
        }
        // Most of the 245 regions have several example numbers, each read in most forms.
        assert!(read > 2000, "only {read} written forms read back");
    }

    #[test]
    fn dedupe_keys_find_the_rows_normalising_every_phone_finds() {
        let examples = written_examples();
        // A third of the example numbers four times, written in different ways and shapes of
        // contact; the others once; and rows without a readable phone, which have no key
        // either way.
        let mut contacts = Vec::new();
        for (i, (_, e164, forms)) in examples.iter().enumerate() {
            if i % 3 == 0 {
                contacts.push(json!({"phone": forms[0]}));
                contacts.push(json!({"primaryPhone": forms[i % forms.len()]}));
                contacts.push(json!({"channels": [{"type": "sms", "value": forms[2]}]}));
            }
            contacts.push(json!({"phone": e164}));
        }
        // Moroccan mobiles with pseudo-random digits: tails as varied as real data's.
        let mut seed: u64 = 7;
        for _ in 0..600 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            contacts.push(json!({"phone": format!("+2126{:08}", (seed >> 33) % 100_000_000)}));
        }
        contacts.extend([
            json!({"phone": null}),
            json!({"phone": "  "}),
            json!({"phone": "12"}),
            json!({"phone": "+1234"}),
            json!({"phone": "call me"}),
            json!({"phone": 212612345678u64}),
            json!({"phone": "0612345678"}),
            json!({"phone": "+212 6 12 34 56 78"}),
            json!({"email": "a@b.org"}),
            json!("not an object"),
        ]);
        for region in [None, Some("MA"), Some("GB"), Some("US")] {
            let keys = dedupe_keys(&contacts, Identifier::Phone, region);
            let every: Vec<Option<String>> = contacts
                .iter()
                .map(|c| dedupe_key(c, Identifier::Phone, region))
                .collect();
            let mut shared = 0;
            for i in 0..contacts.len() {
                for j in i + 1..contacts.len() {
                    let want = every[i].is_some() && every[i] == every[j];
                    let got = keys[i].is_some() && keys[i] == keys[j];
                    assert_eq!(
                        got, want,
                        "{} and {} in {region:?}",
                        contacts[i], contacts[j]
                    );
                    shared += usize::from(want);
                }
            }
            assert!(
                shared > 500,
                "only {shared} pairs share a phone in {region:?}"
            );
            // The phones alone in their last four digits were not normalised.
            let skipped = keys
                .iter()
                .zip(&every)
                .filter(|(k, e)| k.is_none() && e.is_some());
            let skipped = skipped.count();
            assert!(skipped > 200, "{skipped} skipped in {region:?}");
        }
        for on in [Identifier::Email, Identifier::ExternalId, Identifier::Id] {
            let keys = dedupe_keys(&contacts, on, None);
            let every: Vec<_> = contacts.iter().map(|c| dedupe_key(c, on, None)).collect();
            assert_eq!(keys, every, "{on:?}");
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a JSON object")
    }

    #[test]
    fn phone_and_email_come_from_keys_aliases_or_channels() {
        let cases = [
            (
                json!({"phone": "+212612345678"}),
                Some("+212612345678"),
                None,
            ),
            (
                json!({"primaryPhone": "0612345678"}),
                Some("+212612345678"),
                None,
            ),
            (
                json!({"phone": "+447912345678", "primaryPhone": "+212612345678"}),
                Some("+447912345678"),
                None,
            ),
            (
                json!({"phone": 212612345678u64}),
                Some("+212612345678"),
                None,
            ),
            (json!({"email": " A@B.com "}), None, Some("a@b.com")),
            (json!({"primaryEmail": "A@B.com"}), None, Some("a@b.com")),
            (
                json!({"channels": [{"type": "email", "value": "X@Y.org"}, {"type": "SMS", "value": "0612345678"}]}),
                Some("+212612345678"),
                Some("x@y.org"),
            ),
            (
                json!({"channels": [{"type": "whatsapp", "value": "+447912345678"}, {"type": "sms", "value": "+212612345678"}]}),
                Some("+447912345678"),
                None,
            ),
            (
                json!({"phone": "+212612345678", "email": "a@b.com",
                       "channels": [{"type": "phone", "value": "+447912345678"}, {"type": "email", "value": "c@d.com"}]}),
                Some("+212612345678"),
                Some("a@b.com"),
            ),
        ];
        for (raw, phone, email) in cases {
            let contact = object(raw.clone());
            let got_phone = read_phone(&contact, Some("MA")).unwrap();
            let got_email = read_email(&contact).unwrap();
            assert_eq!(got_phone.as_set().map(Phone::as_str), phone, "{raw}");
            assert_eq!(got_email.as_set().map(Email::as_str), email, "{raw}");
            assert!(check_channels(&contact).is_empty(), "{raw}");
        }
    }

    #[test]
    fn an_explicit_key_wins_over_channels_even_when_null() {
        let contact =
            object(json!({"phone": null, "channels": [{"type": "sms", "value": "+212612345678"}]}));
        assert_eq!(read_phone(&contact, None).unwrap(), Patch::Clear);
    }

    #[test]
    fn bad_channel_values_are_reported_on_the_flat_field() {
        let cases = [
            (
                json!({"channels": [{"type": "sms", "value": "12345"}]}),
                "phone",
                ErrorCode::InvalidPhone,
                "channels[0].value: ",
            ),
            (
                json!({"channels": [{"type": "sms", "value": true}]}),
                "phone",
                ErrorCode::InvalidValue,
                "channels[0].value: expected a string",
            ),
            (
                json!({"channels": [{"type": "push", "value": "x"}, {"type": "email", "value": "nope"}]}),
                "email",
                ErrorCode::InvalidEmail,
                "channels[1].value: ",
            ),
        ];
        for (raw, field, code, needle) in cases {
            let contact = object(raw.clone());
            let issue = match field {
                "phone" => read_phone(&contact, None).unwrap_err(),
                _ => read_email(&contact).unwrap_err(),
            };
            assert_eq!((issue.field.as_str(), issue.code), (field, code), "{raw}");
            assert!(
                issue.message.starts_with(needle),
                "{raw}: {}",
                issue.message
            );
        }
    }

    #[test]
    fn malformed_channels_are_invalid_values() {
        let cases = [
            (json!({"channels": "sms"}), vec!["expected an array"]),
            (
                json!({"channels": {"type": "sms"}}),
                vec!["expected an array"],
            ),
            (
                json!({"channels": [{"type": "telegram", "value": "@x"}]}),
                vec!["channels[0] has type \"telegram\""],
            ),
            (
                json!({"channels": ["+212612345678", {"type": "sms"}, {"type": 1, "value": "x"}]}),
                vec![
                    "channels[0] must be",
                    "channels[1] must be",
                    "channels[2] must be",
                ],
            ),
        ];
        for (raw, needles) in cases {
            let issues = check_channels(&object(raw.clone()));
            assert_eq!(issues.len(), needles.len(), "{raw}: {issues:?}");
            for (issue, needle) in issues.iter().zip(needles) {
                assert_eq!(
                    (issue.field.as_str(), issue.code),
                    ("channels", ErrorCode::InvalidValue)
                );
                assert!(issue.message.contains(needle), "{raw}: {}", issue.message);
            }
        }
        assert!(check_channels(&object(json!({"channels": null}))).is_empty());
    }

    #[test]
    fn external_ids_are_trimmed_checked_text() {
        let long = "x".repeat(256);
        let cases: [(Value, Result<Patch<&str>, ErrorCode>); 9] = [
            (json!(" crm-000000042 "), Ok(Patch::Set("crm-000000042"))),
            (json!(42), Ok(Patch::Set("42"))),
            (json!("x".repeat(255)), Ok(Patch::Set(&long[..255]))),
            (json!(""), Ok(Patch::Clear)),
            (json!(null), Ok(Patch::Clear)),
            (json!(long), Err(ErrorCode::TooLong)),
            (json!("crm\u{0}42"), Err(ErrorCode::InvalidValue)),
            (json!(4.2), Err(ErrorCode::InvalidValue)),
            (json!(["crm-1"]), Err(ErrorCode::InvalidValue)),
        ];
        for (value, expected) in cases {
            let got = read_external_id(&object(json!({"externalId": value})));
            let got = got.map(|p| p.map(String::from)).map_err(|e| e.code);
            assert_eq!(got, expected.map(|p| p.map(String::from)), "{value}");
        }
        assert_eq!(ExternalId::parse(" a ").unwrap().as_str(), "a");
        assert_eq!(ExternalId::parse("  "), Err("is empty".into()));
    }

    #[test]
    fn dedupe_key_reads_only_the_chosen_identifier() {
        let raw = json!({"externalId": " crm-7 ", "phone": "06 12 34 56 78", "email": "Bad@", "birthday": "nonsense"});
        let cases = [
            (Identifier::Phone, Some("MA"), Some("+212612345678")),
            (Identifier::Phone, None, None),
            (Identifier::Email, Some("MA"), None),
            (Identifier::ExternalId, None, Some("crm-7")),
        ];
        for (on, region, expected) in cases {
            assert_eq!(
                dedupe_key(&raw, on, region).as_deref(),
                expected,
                "{on:?} {region:?}"
            );
        }
        assert_eq!(dedupe_key(&json!([1]), Identifier::Phone, None), None);
        assert_eq!(
            dedupe_key(&json!({"phone": null}), Identifier::Phone, None),
            None
        );
    }
}
