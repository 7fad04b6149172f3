//! One raw contact → `ValidContact`, accepting both the flat (Gomobile) and the Reteno shape.
//! Every field is read even after a failure, so a row reports ALL its errors at once; a row
//! passes only when the identifier named by `dedupeOn` is present and valid.

use serde_json::{Map, Value};
use time::Date;

use super::attributes::read_attributes;
use super::consent::{read_consent, read_reach};
use super::date::{ParsedDate, parse_date, partial_date};
use super::identifiers::{
    check_channels, read_contact_id, read_email, read_external_id, read_new_external_id, read_phone,
};
use super::text::{Numbers, Text, check_len, invalid_value, kind_of, quoted, read, text_patch};
use super::{
    ErrorCode, Identifier, MAX_ADDRESS_CHARS, MAX_NAME_CHARS, MAX_PREFERRED_CHANNEL_CHARS,
    MAX_ZIP_CHARS, Patch, RowIssue, Rules, ValidContact,
};

/// A contact's gender, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// Reads `male` or `female`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("male") {
            Some(Self::Male)
        } else if s.eq_ignore_ascii_case("female") {
            Some(Self::Female)
        } else {
            None
        }
    }

    /// `male` or `female`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
        }
    }
}

/// Validates one raw contact; `Err` holds every problem of the row.
pub fn validate_contact(raw: &Value, rules: &Rules) -> Result<ValidContact, Vec<RowIssue>> {
    let Some(contact) = raw.as_object() else {
        let message = format!("a contact must be a JSON object, got {}", kind_of(raw));
        return Err(vec![RowIssue::new("", ErrorCode::InvalidRow, message)]);
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let e = &mut errors;
    let text = |key: &str, max: usize| text_patch(contact.get(key), key, max);
    let [address, city, state, zip] = read_address(contact);
    let mut valid = ValidContact {
        external_id: keep(e, read_external_id(contact)),
        phone: keep(e, read_phone(contact, rules.default_region)),
        email: keep(e, read_email(contact)),
        first_name: keep(e, text("firstName", MAX_NAME_CHARS)),
        last_name: keep(e, text("lastName", MAX_NAME_CHARS)),
        full_name: keep(e, text("fullName", MAX_NAME_CHARS)),
        occupation: keep(e, text("occupation", MAX_NAME_CHARS)),
        preferred_channel: keep(e, text("preferredChannel", MAX_PREFERRED_CHANNEL_CHARS)),
        gender: keep(e, read_gender(contact.get("gender"))),
        birthday: keep(
            e,
            read_birthday(contact.get("birthday"), rules, &mut warnings),
        ),
        address: keep(e, address),
        city: keep(e, city),
        state: keep(e, state),
        zip: keep(e, zip),
        custom_attributes: Default::default(),
        tags: keep(e, super::tags::contact_tags(contact.get("tags"))),
        consent: Default::default(),
        status: keep(e, read_reach(contact.get("status"), "status")),
        email_status: keep(e, read_reach(contact.get("emailStatus"), "emailStatus")),
        phone_status: keep(e, read_reach(contact.get("phoneStatus"), "phoneStatus")),
        id: None,
        new_external_id: keep(e, read_new_external_id(contact)),
        warnings: Vec::new(),
    };
    if rules.dedupe_on == Identifier::Id {
        match read_contact_id(contact) {
            Ok(id) => valid.id = id,
            Err(issue) => errors.push(issue),
        }
    }
    valid.consent = read_consent(contact, &mut errors);
    errors.extend(check_channels(contact));
    valid.custom_attributes = read_attributes(contact, rules, &mut errors, &mut warnings);
    valid.warnings = warnings;

    let on = rules.dedupe_on;
    if valid.dedupe_key(on).is_none() && !errors.iter().any(|e| e.field == on.as_str()) {
        errors.push(missing_identifier(on));
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(errors)
    }
}

/// The field's patch, or `Absent` after recording its error, so that the row goes on.
fn keep<T>(errors: &mut Vec<RowIssue>, result: Result<Patch<T>, RowIssue>) -> Patch<T> {
    result.unwrap_or_else(|issue| {
        errors.push(issue);
        Patch::Absent
    })
}

fn missing_identifier(on: Identifier) -> RowIssue {
    let what = match on {
        Identifier::Phone => {
            "a phone number (phone, primaryPhone or an sms/phone/whatsapp channel)"
        }
        Identifier::Email => "an email address (email, primaryEmail or an email channel)",
        Identifier::ExternalId => "an externalId",
        Identifier::Id => "its own id (the contact's id, as GET /api/v1/contacts shows it)",
    };
    let message = format!(
        "contacts are matched on {}, so each one needs {what}",
        on.as_str()
    );
    RowIssue::new(on.as_str(), ErrorCode::MissingIdentifier, message)
}

fn read_gender(value: Option<&Value>) -> Result<Patch<Gender>, RowIssue> {
    Ok(match read(value, "gender", Numbers::Refused)? {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        // Outlook writes `Unspecified` for a contact whose gender was not given.
        Text::Value(s) if s.eq_ignore_ascii_case("unspecified") => Patch::Absent,
        Text::Value(s) => match Gender::parse(&s) {
            Some(gender) => Patch::Set(gender),
            None => {
                let message = format!("expected \"male\" or \"female\", got {}", quoted(&s));
                return Err(invalid_value("gender", message));
            }
        },
    })
}

/// A birthday: a real date, from 1900 on, not after today, written `YYYY-MM-DD` or in the
/// import's `dateFormat`; one without a year is left out with the warning `partial_date`.
fn read_birthday(
    value: Option<&Value>,
    rules: &Rules,
    warnings: &mut Vec<RowIssue>,
) -> Result<Patch<Date>, RowIssue> {
    let invalid = |message: String| RowIssue::new("birthday", ErrorCode::InvalidDate, message);
    Ok(match read(value, "birthday", Numbers::Refused)? {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        Text::Value(s) => match parse_date(&s, rules.date_format).map_err(invalid)? {
            ParsedDate::Zero => Patch::Absent,
            ParsedDate::NoYear => {
                warnings.push(partial_date("birthday", &s));
                Patch::Absent
            }
            ParsedDate::Day(date) if date.year() < 1900 => {
                return Err(invalid(format!("{s} is before 1900")));
            }
            ParsedDate::Day(date) if date > rules.today => {
                return Err(invalid(format!("{s} is in the future")));
            }
            ParsedDate::Day(date) => Patch::Set(date),
        },
    })
}

/// `[address, city, state, zip]`, from a string `address` with flat `city`/`state`/`zip`, or from
/// Reteno's object `{town, region, address, postcode}`; a flat key wins over the object's member.
fn read_address(contact: &Map<String, Value>) -> [Result<Patch<String>, RowIssue>; 4] {
    let mut parts: [Option<&Value>; 4] = [None; 4];
    let address = match contact.get("address") {
        Some(Value::Object(reteno)) => {
            parts = ["address", "town", "region", "postcode"].map(|key| reteno.get(key));
            text_patch(parts[0], "address", MAX_ADDRESS_CHARS)
        }
        Some(other @ (Value::Bool(_) | Value::Number(_) | Value::Array(_))) => Err(invalid_value(
            "address",
            format!(
                "expected a string or an object {{town, region, address, postcode}}, got {}",
                kind_of(other)
            ),
        )),
        flat => text_patch(flat, "address", MAX_ADDRESS_CHARS),
    };
    let flat_or = |key: &str, member: usize| contact.get(key).or(parts[member]);
    let zip = match read(flat_or("zip", 3), "zip", Numbers::AsText) {
        Ok(Text::Absent) => Ok(Patch::Absent),
        Ok(Text::Null | Text::Blank) => Ok(Patch::Clear),
        Ok(Text::Value(s)) => {
            check_len(&s, "zip", MAX_ZIP_CHARS).map(|()| Patch::Set(s.into_owned()))
        }
        Err(issue) => Err(issue),
    };
    [
        address,
        text_patch(flat_or("city", 1), "city", MAX_NAME_CHARS),
        text_patch(flat_or("state", 2), "state", MAX_NAME_CHARS),
        zip,
    ]
}

#[cfg(test)]
#[path = "contact_tests.rs"]
mod tests;
