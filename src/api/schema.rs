//! The OpenAPI shapes of what clients send. The intakes read their bodies by hand (a contact
//! stays JSON text until a worker builds it, and every problem gets a pointer), so these types
//! describe those bodies for `/openapi.json`; they are never deserialised. What the API answers
//! is described by the answer types themselves.

// Never constructed: these types exist for their `ToSchema` only.
#![allow(dead_code)]

use crate::import::Mode;
use crate::validate::Identifier;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A channel of Reteno's shape: email goes to `email`, the others to `phone`.
#[derive(Serialize, ToSchema)]
pub struct Channel {
    #[schema(pattern = "^(email|sms|phone|whatsapp)$")]
    pub r#type: String,
    pub value: String,
}

/// Reteno's address object: town → city, region → state, postcode → zip.
#[derive(Serialize, ToSchema)]
pub struct AddressObject {
    pub town: Option<String>,
    pub region: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
}

/// Reteno's custom attribute item.
#[derive(Serialize, ToSchema)]
pub struct FieldValue {
    /// The custom field's name.
    pub id: String,
    pub value: Value,
}

/// A contact of the intake, in the flat (Gomobile) or the Reteno shape. A field that is
/// absent is left as it is; `null` clears it (with `overwrite`). A problem in one contact fails
/// that row only, with its reasons in the row results.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactInput {
    pub external_id: Option<String>,
    /// Any usual writing; stored in E.164. Without a country code, `defaultRegion` applies.
    #[schema(examples("+212612345678"))]
    pub phone: Option<String>,
    /// Alias of `phone`.
    pub primary_phone: Option<String>,
    pub email: Option<String>,
    /// Alias of `email`.
    pub primary_email: Option<String>,
    pub channels: Option<Vec<Channel>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub occupation: Option<String>,
    pub preferred_channel: Option<String>,
    /// `male` or `female`.
    pub gender: Option<String>,
    /// `YYYY-MM-DD` (or the `dateFormat`'s order).
    pub birthday: Option<String>,
    /// A street address, or Reteno's address object.
    #[schema(value_type = Option<Value>)]
    pub address: Option<Value>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    /// Values by field name; each name must be a field of the tenant (`POST /api/v1/fields`).
    pub custom_attributes: Option<BTreeMap<String, Value>>,
    /// Reteno's form of `customAttributes`.
    pub fields: Option<Vec<FieldValue>>,
    pub tags: Option<Vec<String>>,
    /// Consent by channel (`email`, `sms`, `whatsapp`, `call`): a word (`optedIn`, `optedOut`,
    /// `yes`/`no`, `true`/`false`, `1`/`0`, `subscribed`/`unsubscribed`) or an object with its
    /// time and source; `null` clears a channel. A stored opt-out is kept unless
    /// `allowResubscribe`.
    pub consent: Option<ConsentsInput>,
    /// `active` (default) or `passive`: kept, but to be sent nothing.
    pub status: Option<crate::validate::consent::Reach>,
    /// `passive`: the email address is unreachable.
    pub email_status: Option<crate::validate::consent::Reach>,
    /// `passive`: the phone number is unreachable.
    pub phone_status: Option<crate::validate::consent::Reach>,
}

/// A row's consent, by channel; a channel left out is left as it is, `null` clears it.
#[derive(Serialize, ToSchema)]
pub struct ConsentsInput {
    pub email: Option<ConsentInput>,
    pub sms: Option<ConsentInput>,
    pub whatsapp: Option<ConsentInput>,
    pub call: Option<ConsentInput>,
}

/// One channel's consent: a word (`optedIn`, `optedOut`, `yes`/`no`, `subscribed`, …), a
/// boolean or 0/1, or the status with its time and source.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ConsentInput {
    Word(String),
    Flag(bool),
    Number(u8),
    Detailed(ConsentDetail),
}

/// A consent with its time and source.
#[derive(Serialize, ToSchema)]
pub struct ConsentDetail {
    /// `optedIn` or `optedOut` (or another spelling of them).
    pub status: String,
    /// When it was given, RFC 3339; default when applied.
    #[schema(format = DateTime)]
    pub at: Option<String>,
    /// Where from (at most 255 characters); default `import:<asyncSessionId>`, or `api`.
    #[schema(max_length = 255)]
    pub source: Option<String>,
}

/// The body of `POST /api/v1/contacts`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactsRequest {
    /// 1 to 3000 contacts.
    #[schema(min_items = 1, max_items = 3000)]
    pub contacts: Vec<ContactInput>,
    /// Default `phone`.
    pub dedupe_on: Option<Identifier>,
    /// If any row fails, apply none: the others end `skipped` with the warning `not_applied`
    /// and the import ends `failed`.
    pub all_or_nothing: Option<bool>,
    #[serde(flatten)]
    pub options: ImportRequestOptions,
}

/// The body of `POST /api/v1/contact`: one contact and the options of the bulk intake that a
/// single contact takes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactRequest {
    pub contact: ContactInput,
    /// Default `phone`.
    pub dedupe_on: Option<Identifier>,
    /// Default `upsert`.
    pub mode: Option<Mode>,
    /// Default true; false only fills empty fields and only adds tags and groups.
    pub overwrite: Option<bool>,
    /// ISO 3166-1 alpha-2 region for phones written without a country code.
    pub default_region: Option<String>,
    /// A match on a soft-deleted contact: restore it (true) or skip it (false, default).
    pub restore_deleted: Option<bool>,
    /// Added to the contact.
    pub tags: Option<Vec<String>>,
    /// Removed from the contact.
    pub tags_remove: Option<Vec<String>>,
    /// The contact joins these groups (created on first use).
    pub group_names: Option<Vec<String>>,
    /// The contact leaves these groups.
    pub group_names_exclude: Option<Vec<String>>,
    /// Opt the contact back in to a channel it opted out of (default false).
    pub allow_resubscribe: Option<bool>,
    /// How `birthday` and date attributes are written (default `YYYY-MM-DD`).
    pub date_format: Option<crate::validate::DateFormat>,
}

/// The options both intakes take (JSON members, or CSV options).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequestOptions {
    /// Default `upsert`.
    pub mode: Option<Mode>,
    /// Default true; false only fills empty fields and only adds tags and groups.
    pub overwrite: Option<bool>,
    /// ISO 3166-1 alpha-2 region for phones written without a country code.
    #[schema(examples("MA"))]
    pub default_region: Option<String>,
    /// A match on a soft-deleted contact: restore it (true) or skip the row (false, default).
    pub restore_deleted: Option<bool>,
    /// Give every row the outcome it would get (counters and row results included) and change
    /// nothing else.
    pub dry_run: Option<bool>,
    /// Added to every applied contact (at most 100; 1 to 64 characters each).
    pub tags: Option<Vec<String>>,
    /// Removed from every applied contact.
    pub tags_remove: Option<Vec<String>>,
    /// Every applied contact joins these groups (created on first use; 1 to 128 characters).
    pub group_names: Option<Vec<String>>,
    /// Every applied contact leaves these groups.
    pub group_names_exclude: Option<Vec<String>>,
    /// One persistent message per created contact on the topic exchange `{prefix}.events`,
    /// with this routing key.
    pub event_key_for_new_contacts: Option<String>,
    /// POSTed the final status, signed (`X-Signature: sha256=<hex HMAC-SHA256>`); http(s), to a
    /// public address.
    #[schema(format = "uri")]
    pub callback_url: Option<String>,
    /// How birthdays and date fields are written (default `YYYY-MM-DD`, which is always taken
    /// too); a date without a year is left out with the warning `partial_date`.
    pub date_format: Option<crate::validate::DateFormat>,
    /// A row may opt a contact back in to a channel it opted out of (default false: the
    /// opt-out is kept, with the warning `consent_kept`).
    pub allow_resubscribe: Option<bool>,
}

/// The `options` part of a multipart CSV upload (the same names are query parameters of a raw
/// upload).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsvImportOptions {
    /// Like `dedupeOn`; default `phone`.
    pub identifier: Option<Identifier>,
    /// `{"CSV column": "field"}`; `customAttributes.NAME` for a custom field; `null` skips the
    /// column. Without it, headers that name a field map to it.
    pub mapping: Option<BTreeMap<String, Option<String>>>,
    /// An empty cell clears the field instead of leaving it as it is.
    pub empty_cells_clear: Option<bool>,
    /// Tag every applied contact with `import-YYYYMMDD-<first 8 characters of the import id>`
    /// (default true).
    pub import_tag: Option<bool>,
    /// The file's character encoding, a WHATWG label (`utf-8`, `windows-1252`, `iso-8859-1`,
    /// `utf-16le`, …); detected when absent (a BOM, valid UTF-8, else the legacy encoding the
    /// bytes point to).
    pub encoding: Option<String>,
    #[serde(flatten)]
    pub options: ImportRequestOptions,
}

/// A multipart CSV upload: the `options` part (JSON), then the `file` part.
#[derive(Serialize, ToSchema)]
pub struct CsvUpload {
    /// A JSON object: `CsvImportOptions`.
    pub options: Option<String>,
    /// UTF-8 CSV, `,` or `;` delimited, with a header row; or an `.xlsx` workbook (file name
    /// ending `.xlsx`, or its media type), whose first sheet is imported.
    #[schema(format = Binary, content_media_type = "text/csv")]
    pub file: String,
}

/// The body of `POST /api/v1/fields`: an enum field lists its options, the others have none.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FieldRequest {
    Plain(PlainFieldRequest),
    Enum(EnumFieldRequest),
}

/// The kinds of field without options.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlainFieldType {
    String,
    Number,
    Boolean,
    Date,
}

/// A string, number, boolean or date field. A name is an ASCII letter, then letters, digits or
/// `_`, 64 characters at most (`validate::check_field_name`).
#[derive(Serialize, ToSchema)]
pub struct PlainFieldRequest {
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_]{0,63}$")]
    pub name: String,
    pub r#type: PlainFieldType,
}

/// The one kind of field with options.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum EnumFieldType {
    Enum,
}

/// An enum field: a value must be one of `options`.
#[derive(Serialize, ToSchema)]
pub struct EnumFieldRequest {
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_]{0,63}$")]
    pub name: String,
    pub r#type: EnumFieldType,
    /// The allowed values, distinct.
    #[schema(min_items = 1, max_items = 1000)]
    pub options: std::collections::BTreeSet<EnumOption>,
}

/// One allowed value of an enum field: 1 to 255 characters, not starting or ending with white
/// space (as Rust's `char::is_whitespace` has it).
#[derive(Serialize, ToSchema, PartialEq, Eq, PartialOrd, Ord)]
#[schema(
    max_length = 255,
    pattern = r"^[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$"
)]
pub struct EnumOption(pub String);

/// The options of a raw `text/csv` upload, as query parameters (a multipart upload sends them
/// as its `options` part instead).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case)]
pub struct CsvQuery {
    /// Like `dedupeOn`; default `phone`.
    pub identifier: Option<Identifier>,
    pub mode: Option<Mode>,
    pub overwrite: Option<bool>,
    /// ISO 3166-1 alpha-2 region for phones written without a country code.
    pub defaultRegion: Option<String>,
    pub restoreDeleted: Option<bool>,
    /// The column mapping as JSON: `{"CSV column": "field"}`.
    pub mapping: Option<String>,
    /// An empty cell clears the field instead of leaving it as it is.
    pub emptyCellsClear: Option<bool>,
    /// Give every row the outcome it would get and change nothing else.
    pub dryRun: Option<bool>,
    /// Tags added to every applied contact, comma-separated.
    pub tags: Option<String>,
    /// Tags removed from every applied contact, comma-separated.
    pub tagsRemove: Option<String>,
    /// Groups every applied contact joins, comma-separated.
    pub groupNames: Option<String>,
    /// Groups every applied contact leaves, comma-separated.
    pub groupNamesExclude: Option<String>,
    /// One event with this routing key per created contact.
    pub eventKeyForNewContacts: Option<String>,
    /// POSTed the final status, signed.
    pub callbackUrl: Option<String>,
    /// Tag every applied contact with `import-YYYYMMDD-<first 8 characters of the import id>`
    /// (default true).
    pub importTag: Option<bool>,
    /// The file's character encoding, a WHATWG label; detected when absent.
    pub encoding: Option<String>,
    /// How birthdays and date fields are written (default `YYYY-MM-DD`, always taken too).
    pub dateFormat: Option<crate::validate::DateFormat>,
    /// A row may opt a contact back in to a channel it opted out of.
    pub allowResubscribe: Option<bool>,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(examples("ok"))]
    pub status: String,
}

/// `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: String,
    /// `up` or `down`.
    pub database: String,
    /// `up` or `down`: whether this process's relay holds a broker connection.
    pub broker: String,
}

/// An `.xlsx` workbook: its first sheet is imported (at most MAX_XLSX_BYTES).
#[derive(Serialize, ToSchema)]
#[schema(format = Binary)]
pub struct XlsxFile(pub String);
