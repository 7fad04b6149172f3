#![allow(dead_code, unused_variables)]
use std::collections::{BTreeMap, HashMap};
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DedupeOn { Phone, Email, ExternalId }
impl DedupeOn { pub fn parse(s: &str) -> Option<Self> { todo!() } pub fn as_str(self) -> &'static str { todo!() } }
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode { InvalidPhone, InvalidEmail, InvalidDate, InvalidValue, TooLong, MissingIdentifier,
    UnknownField, DuplicateInFile, AmbiguousMatch, IdentifierConflict, DeletedContact, InvalidRow,
    AlreadyExists, NotFound }
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowIssue { pub field: String, pub code: ErrorCode, pub message: String }
impl RowIssue { pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self { todo!() } }
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Patch<T> { #[default] Absent, Clear, Set(T) }
#[derive(Clone, Debug, PartialEq)] pub struct Phone(String);
impl Phone { pub fn as_str(&self) -> &str { &self.0 } }
#[derive(Clone, Debug, PartialEq)] pub struct Email(String);
impl Email { pub fn as_str(&self) -> &str { &self.0 } }
#[derive(Clone, Debug, PartialEq)] pub struct ExternalId(String);
impl ExternalId { pub fn as_str(&self) -> &str { &self.0 } }
#[derive(Clone, Debug, PartialEq)] pub enum Gender { Male, Female }
impl Gender { pub fn as_str(&self) -> &'static str { todo!() } }
#[derive(Clone, Debug, PartialEq)]
pub struct ValidContact {
    pub external_id: Patch<ExternalId>, pub phone: Patch<Phone>, pub email: Patch<Email>,
    pub first_name: Patch<String>, pub last_name: Patch<String>, pub full_name: Patch<String>,
    pub occupation: Patch<String>, pub preferred_channel: Patch<String>,
    pub gender: Patch<Gender>, pub birthday: Patch<time::Date>,
    pub address: Patch<String>, pub city: Patch<String>, pub state: Patch<String>, pub zip: Patch<String>,
    pub custom_attributes: BTreeMap<String, Patch<serde_json::Value>>,
}
impl ValidContact { pub fn dedupe_key(&self, on: DedupeOn) -> Option<&str> { todo!() } }
pub enum FieldKind { String, Number, Boolean, Date, Enum(Vec<String>) }
impl FieldKind {
    pub fn parse(type_name: &str, options: Option<&serde_json::Value>) -> Result<Self, String> { todo!() }
    pub fn type_name(&self) -> &'static str { todo!() } pub fn options(&self) -> Option<&[String]> { todo!() }
}
pub fn check_field_name(name: &str) -> Result<(), String> { todo!() }
pub struct Rules<'a> { pub dedupe_on: DedupeOn, pub default_region: Option<&'a str>, pub fields: &'a HashMap<String, FieldKind>, pub today: time::Date }
pub fn validate_contact(raw: &serde_json::Value, rules: &Rules) -> Result<ValidContact, Vec<RowIssue>> { todo!() }
pub fn dedupe_key(raw: &serde_json::Value, dedupe_on: DedupeOn, default_region: Option<&str>) -> Option<String> { todo!() }
pub fn attribute_names(raw: &serde_json::Value) -> Vec<(String, String)> { todo!() }
pub fn parse_region(s: &str) -> Option<String> { todo!() }
pub fn normalize_phone(raw: &str, default_region: Option<&str>) -> Result<Phone, String> { todo!() }
pub fn normalize_email(raw: &str) -> Result<Email, String> { todo!() }
