//! Row validation, the pure step of an import: one raw contact (a JSON object from the intake, or a
//! CSV row converted to the same flat shape) becomes a `ValidContact` or the list of ALL its row
//! errors. No I/O; every checked value is a newtype that only its parser can build.
//!
//! Text limits, in characters, counted after trimming (beyond them: `too_long`):
//! names, `fullName`, `occupation`, `city`, `state` 255 · `address` 1000 · `zip` 32 ·
//! `preferredChannel` 32 · `externalId` 255 · `email` 254 · custom string attribute 2000.
//! Any text holding NUL or another C0 control character (tab, LF and CR excepted) is `invalid_value`.

mod attributes;
pub mod consent;
mod contact;
pub mod date;
mod depth;
mod email;
mod identifiers;
mod part;
mod phone;
pub mod search;
pub mod tags;
mod text;

use std::collections::{BTreeMap, HashMap};

pub use attributes::{FieldKind, FieldType, NamedAt, attribute_names, check_field_name};
pub use contact::{Gender, validate_contact};
pub use date::DateFormat;
pub use depth::{MAX_JSON_DEPTH, json_depth, nests_within};
pub use email::{Email, normalize_email};
pub use identifiers::{ContactId, ExternalId, NEW_EXTERNAL_ID, dedupe_key, dedupe_keys};
pub use part::{IntakePart, identifying_part, intake_part};
pub use phone::{Phone, normalize_phone, parse_region};
pub use tags::{GROUP, MAX_TAGS, TAG, check_tag, read_labels, read_tags};

/// The key a stored row carries when it could not become a contact at intake (a CSV record
/// with the wrong number of fields, or bytes that are not text); the row fails `invalid_row`
/// with its message.
pub const INVALID_ROW: &str = "$invalidRow";

/// What an erased contact's rows become in every stored payload: this, and nothing else.
pub const ERASED_ROW: &str = r#"{"$erased":true}"#;

/// A stored row that could not become a contact, with the reason.
pub fn invalid_row(message: String) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(INVALID_ROW.into(), serde_json::Value::String(message));
    serde_json::Value::Object(m)
}

/// Validates one row as a batch stores it (its JSON text): a contact, a row marked
/// `invalid_row` at intake, or a text that cannot be read, which fails `invalid_row` too.
pub fn validate_stored_text(text: &str, rules: &Rules) -> Result<ValidContact, Vec<RowIssue>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![RowIssue::new(
            "",
            ErrorCode::InvalidRow,
            format!("the row cannot be read: {e}"),
        )]
    })?;
    if let Some(reason) = value.get(INVALID_ROW).and_then(serde_json::Value::as_str) {
        return Err(vec![RowIssue::new("", ErrorCode::InvalidRow, reason)]);
    }
    validate_contact(&value, rules)
}

/// The flat contact's plain members, in the order files and results list them.
pub const CONTACT_FIELDS: [&str; 14] = [
    "externalId",
    "phone",
    "email",
    "firstName",
    "lastName",
    "fullName",
    "occupation",
    "preferredChannel",
    "gender",
    "birthday",
    "address",
    "city",
    "state",
    "zip",
];

/// Longest first name, last name, full name, occupation, city or state.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest street address.
pub const MAX_ADDRESS_CHARS: usize = 1000;
/// Longest postal code.
pub const MAX_ZIP_CHARS: usize = 32;
/// Longest preferred channel.
pub const MAX_PREFERRED_CHANNEL_CHARS: usize = 32;
/// Longest external id.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest value of a custom attribute of type string.
pub const MAX_ATTRIBUTE_TEXT_CHARS: usize = 2000;

/// The kinds of identifier a contact has, each unique per tenant; the one rows are matched on
/// is `dedupeOn` (the CSV option `identifier`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Identifier {
    Phone,
    Email,
    ExternalId,
    /// The contact's own id (`dedupeOn: "id"`, update-only): not one it holds like the others,
    /// so not in `ALL`.
    Id,
}

impl Identifier {
    /// Every identifier a contact holds, each unique per tenant.
    pub const ALL: [Identifier; 3] = [Self::Phone, Self::Email, Self::ExternalId];

    /// Reads the API spelling: `phone`, `email` or `externalId` (exact).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "phone" => Some(Self::Phone),
            "email" => Some(Self::Email),
            "externalId" => Some(Self::ExternalId),
            "id" => Some(Self::Id),
            _ => None,
        }
    }

    /// The identifier's field name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Email => "email",
            Self::ExternalId => "externalId",
            Self::Id => "id",
        }
    }
}

/// Row error and warning codes (docs/api.md, "Row outcome codes"); serialised as snake_case strings.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidPhone,
    InvalidEmail,
    InvalidDate,
    InvalidValue,
    TooLong,
    MissingIdentifier,
    UnknownField,
    DuplicateInFile,
    AmbiguousMatch,
    IdentifierConflict,
    DeletedContact,
    InvalidRow,
    AlreadyExists,
    NotFound,
    /// The row's whole batch could not be applied (dead-lettered); not a problem of the row.
    BatchFailed,
    /// The import was cancelled before the row was applied (a warning; the row is skipped).
    Cancelled,
    /// `allOrNothing`: another row failed, so this one was not applied (a warning; skipped).
    NotApplied,
    /// A stored opt-out was kept: the row would have opted the channel back in (a warning).
    ConsentKept,
    /// A date without a year was left out (a warning; the row goes on).
    PartialDate,
}

impl ErrorCode {
    /// The code as written in row results, e.g. `invalid_phone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPhone => "invalid_phone",
            Self::InvalidEmail => "invalid_email",
            Self::InvalidDate => "invalid_date",
            Self::InvalidValue => "invalid_value",
            Self::TooLong => "too_long",
            Self::MissingIdentifier => "missing_identifier",
            Self::UnknownField => "unknown_field",
            Self::DuplicateInFile => "duplicate_in_file",
            Self::AmbiguousMatch => "ambiguous_match",
            Self::IdentifierConflict => "identifier_conflict",
            Self::DeletedContact => "deleted_contact",
            Self::InvalidRow => "invalid_row",
            Self::AlreadyExists => "already_exists",
            Self::NotFound => "not_found",
            Self::BatchFailed => "batch_failed",
            Self::Cancelled => "cancelled",
            Self::NotApplied => "not_applied",
            Self::PartialDate => "partial_date",
            Self::ConsentKept => "consent_kept",
        }
    }
}

/// One `{field, code, message}` entry of a row's errors or warnings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RowIssue {
    /// The contact field (its flat API name), or `""` for the whole row.
    pub field: String,
    pub code: ErrorCode,
    pub message: String,
}

impl RowIssue {
    /// An issue on `field` (its flat API name, `""` for the whole row).
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// What a request says about one field: absent (leave as is), null (clear), or a value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// The value, when one was sent.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Self::Set(value) => Some(value),
            _ => None,
        }
    }

    /// The value, when one was sent, by value.
    pub fn into_set(self) -> Option<T> {
        match self {
            Self::Set(value) => Some(value),
            _ => None,
        }
    }

    /// True when the row did not mention the field.
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// True when the row asked to clear the field.
    pub fn is_clear(&self) -> bool {
        matches!(self, Self::Clear)
    }

    /// Converts the value, keeping absent and clear as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Self::Absent => Patch::Absent,
            Self::Clear => Patch::Clear,
            Self::Set(value) => Patch::Set(f(value)),
        }
    }
}

/// A contact whose every field has been checked and normalised.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ValidContact {
    pub external_id: Patch<ExternalId>,
    pub phone: Patch<Phone>,
    pub email: Patch<Email>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub full_name: Patch<String>,
    pub occupation: Patch<String>,
    pub preferred_channel: Patch<String>,
    pub gender: Patch<Gender>,
    pub birthday: Patch<time::Date>,
    pub address: Patch<String>,
    pub city: Patch<String>,
    pub state: Patch<String>,
    pub zip: Patch<String>,
    /// Only the attributes the row sent, already converted to their stored JSON form.
    pub custom_attributes: BTreeMap<String, Patch<serde_json::Value>>,
    /// The contact's own tags.
    pub tags: Patch<Vec<String>>,
    /// The channels whose consent the row sets (or clears).
    pub consent: BTreeMap<consent::Channel, Patch<consent::ConsentSet>>,
    pub status: Patch<consent::Reach>,
    pub email_status: Patch<consent::Reach>,
    pub phone_status: Patch<consent::Reach>,
    /// The contact's own id, read only when rows are matched on it (`dedupeOn: "id"`).
    pub id: Option<ContactId>,
    /// The external id a matched contact gets instead of the one it was matched on
    /// (BulkUpsert's `new_contact_key`).
    pub new_external_id: Patch<ExternalId>,
    /// What was read but left out, such as a date without a year (`partial_date`).
    pub warnings: Vec<RowIssue>,
}

impl ValidContact {
    /// The normalised identifier the row is matched on.
    pub fn dedupe_key(&self, on: Identifier) -> Option<&str> {
        match on {
            Identifier::Phone => self.phone.as_set().map(Phone::as_str),
            Identifier::Email => self.email.as_set().map(Email::as_str),
            Identifier::ExternalId => self.external_id.as_set().map(ExternalId::as_str),
            Identifier::Id => self.id.as_ref().map(ContactId::as_str),
        }
    }
}

/// Everything validation needs besides the row.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub dedupe_on: Identifier,
    /// Region for phones written without country code, already checked with `parse_region`.
    pub default_region: Option<&'a str>,
    /// The tenant's custom fields, by name.
    pub fields: &'a HashMap<String, FieldKind>,
    /// Today's date, for birthdays in the future.
    pub today: time::Date,
    /// How the import writes its dates (ISO is always taken too).
    pub date_format: DateFormat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_on_reads_and_writes_the_api_names() {
        let cases = [
            ("phone", Some(Identifier::Phone)),
            ("email", Some(Identifier::Email)),
            ("externalId", Some(Identifier::ExternalId)),
            ("external_id", None),
            ("Phone", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(Identifier::parse(input), expected, "{input:?}");
            if let Some(on) = expected {
                assert_eq!(on.as_str(), input);
                assert_eq!(serde_json::to_value(on).unwrap(), input);
            }
        }
    }

    #[test]
    fn error_codes_serialise_as_their_snake_case_names() {
        let codes = [
            ErrorCode::InvalidPhone,
            ErrorCode::InvalidEmail,
            ErrorCode::InvalidDate,
            ErrorCode::InvalidValue,
            ErrorCode::TooLong,
            ErrorCode::MissingIdentifier,
            ErrorCode::UnknownField,
            ErrorCode::DuplicateInFile,
            ErrorCode::AmbiguousMatch,
            ErrorCode::IdentifierConflict,
            ErrorCode::DeletedContact,
            ErrorCode::InvalidRow,
            ErrorCode::AlreadyExists,
            ErrorCode::NotFound,
            ErrorCode::BatchFailed,
            ErrorCode::Cancelled,
            ErrorCode::NotApplied,
            ErrorCode::PartialDate,
            ErrorCode::ConsentKept,
        ];
        for code in codes {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            let back: ErrorCode = serde_json::from_value(code.as_str().into()).unwrap();
            assert_eq!(back, code);
        }
        let issue = RowIssue::new("phone", ErrorCode::InvalidPhone, "bad");
        assert_eq!(
            serde_json::to_value(&issue).unwrap(),
            serde_json::json!({"field": "phone", "code": "invalid_phone", "message": "bad"})
        );
    }

    #[test]
    fn patch_helpers() {
        let cases: [(Patch<u8>, Option<u8>, bool, bool); 3] = [
            (Patch::Absent, None, true, false),
            (Patch::Clear, None, false, true),
            (Patch::Set(7), Some(7), false, false),
        ];
        for (patch, set, absent, clear) in cases {
            assert_eq!(patch.as_set().copied(), set);
            assert_eq!(patch.is_absent(), absent);
            assert_eq!(patch.is_clear(), clear);
            assert_eq!(patch.clone().map(u16::from).into_set(), set.map(u16::from));
        }
    }
}
