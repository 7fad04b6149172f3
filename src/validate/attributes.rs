//! Custom attributes: the tenant's field definitions (`FieldKind`, field names) and the conversion
//! of a row's `customAttributes` / Reteno `fields` values to their stored JSON form. Only the
//! attributes a row sends are returned; an unknown name is `unknown_field`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use super::date::{ParsedDate, iso, parse_date, partial_date};
use super::text::{check_chars, check_len, invalid_value, kind_of, quoted};
use super::{DateFormat, ErrorCode, MAX_ATTRIBUTE_TEXT_CHARS, Patch, RowIssue, Rules};

/// Longest custom field name.
pub const MAX_FIELD_NAME_CHARS: usize = 64;
/// Most options an enum field may have.
pub const MAX_ENUM_OPTIONS: usize = 1000;
/// Longest option of an enum field.
pub const MAX_ENUM_OPTION_CHARS: usize = 255;

/// The type names of custom fields, as the API and the database write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Date,
    Enum,
}

impl FieldType {
    /// The API and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Enum => "enum",
        }
    }

    /// Reads the API and stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::String,
            Self::Number,
            Self::Boolean,
            Self::Date,
            Self::Enum,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// The type of a custom field. Enum values must equal one option exactly (case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Number,
    Boolean,
    Date,
    Enum(Vec<String>),
}

impl FieldKind {
    /// From `POST /api/v1/fields` / the database: type name and optional options list (required,
    /// non-empty, unique strings, for "enum"; refused for other types). JSON null counts as no options.
    pub fn parse(type_name: &str, options: Option<&Value>) -> Result<Self, String> {
        let options = options.filter(|o| !o.is_null());
        let kind = match type_name {
            "string" => Self::String,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "date" => Self::Date,
            "enum" => return parse_options(options).map(Self::Enum),
            other => {
                return Err(format!(
                    "unknown field type {}; expected string, number, boolean, date or enum",
                    quoted(other)
                ));
            }
        };
        match options {
            None => Ok(kind),
            Some(_) => Err(format!(
                "options are only allowed for type enum, not {type_name}"
            )),
        }
    }

    /// `string`, `number`, `boolean`, `date` or `enum`.
    pub fn type_name(&self) -> &'static str {
        self.field_type().as_str()
    }

    /// The type without its options.
    pub fn field_type(&self) -> FieldType {
        match self {
            Self::String => FieldType::String,
            Self::Number => FieldType::Number,
            Self::Boolean => FieldType::Boolean,
            Self::Date => FieldType::Date,
            Self::Enum(_) => FieldType::Enum,
        }
    }

    /// The options of an enum field.
    pub fn options(&self) -> Option<&[String]> {
        match self {
            Self::Enum(options) => Some(options),
            _ => None,
        }
    }

    /// Converts one sent value to its stored JSON form; null or a blank string clears it.
    fn convert(
        &self,
        value: &Value,
        field: &str,
        format: DateFormat,
        warnings: &mut Vec<RowIssue>,
    ) -> Result<Patch<Value>, RowIssue> {
        let text = match value {
            Value::Null => return Ok(Patch::Clear),
            Value::String(s) => {
                check_chars(s).map_err(|m| invalid_value(field, m))?;
                let trimmed = s.trim();
                if trimmed.is_empty() {
                    return Ok(Patch::Clear);
                }
                Some(trimmed)
            }
            _ => None,
        };
        let wrong = || {
            invalid_value(
                field,
                format!("{}, got {}", self.expected(), kind_of(value)),
            )
        };
        let stored = match (self, value, text) {
            (Self::String, _, Some(s)) => {
                check_len(s, field, MAX_ATTRIBUTE_TEXT_CHARS)?;
                Value::String(s.to_owned())
            }
            (Self::String, Value::Number(_) | Value::Bool(_), _) => {
                Value::String(value.to_string())
            }
            (Self::Number, Value::Number(n), _) => Value::Number(n.clone()),
            (Self::Number, _, Some(s)) => Value::Number(parse_number(s).ok_or_else(|| {
                invalid_value(field, format!("{}, got {}", self.expected(), quoted(s)))
            })?),
            (Self::Boolean, Value::Bool(b), _) => Value::Bool(*b),
            (Self::Boolean, Value::Number(n), _) if n.as_u64().is_some_and(|n| n <= 1) => {
                Value::Bool(n.as_u64() == Some(1))
            }
            (Self::Boolean, _, Some(s)) => Value::Bool(parse_bool(s).ok_or_else(|| {
                invalid_value(field, format!("{}, got {}", self.expected(), quoted(s)))
            })?),
            (Self::Date, _, Some(s)) => {
                match parse_date(s, format)
                    .map_err(|m| RowIssue::new(field, ErrorCode::InvalidDate, m))?
                {
                    ParsedDate::Day(date) => Value::String(iso(date)),
                    ParsedDate::Zero => return Ok(Patch::Absent),
                    ParsedDate::NoYear => {
                        warnings.push(partial_date(field, s));
                        return Ok(Patch::Absent);
                    }
                }
            }
            (Self::Enum(options), Value::String(_) | Value::Number(_) | Value::Bool(_), _) => {
                let sent = text.map_or_else(|| value.to_string(), str::to_owned);
                if !options.contains(&sent) {
                    let message = format!("{}, got {}", self.expected(), quoted(&sent));
                    return Err(invalid_value(field, message));
                }
                Value::String(sent)
            }
            _ => return Err(wrong()),
        };
        Ok(Patch::Set(stored))
    }

    /// What a value of this type looks like, for messages.
    fn expected(&self) -> String {
        match self {
            Self::String => "expected a string".into(),
            Self::Number => "expected a number such as 12.5".into(),
            Self::Boolean => "expected true or false (or yes/no, 1/0)".into(),
            Self::Date => "expected a date as YYYY-MM-DD".into(),
            Self::Enum(options) => {
                const SHOWN: usize = 10;
                let mut list: Vec<String> = options.iter().take(SHOWN).map(|o| quoted(o)).collect();
                if options.len() > SHOWN {
                    list.push(format!("… ({} in all)", options.len()));
                }
                format!("expected one of {} (exact case)", list.join(", "))
            }
        }
    }
}

fn parse_options(options: Option<&Value>) -> Result<Vec<String>, String> {
    let needed = "type enum needs options: a non-empty list of distinct strings";
    let Some(Value::Array(items)) = options else {
        return Err(needed.into());
    };
    if items.is_empty() {
        return Err(needed.into());
    }
    if items.len() > MAX_ENUM_OPTIONS {
        return Err(format!(
            "an enum field has at most {MAX_ENUM_OPTIONS} options"
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::String(option) = item else {
            return Err(format!(
                "options[{index}] must be a string, got {}",
                kind_of(item)
            ));
        };
        let problem = if option.trim().is_empty() {
            Some("is empty".to_owned())
        } else if option.trim() != option {
            Some("starts or ends with white space".to_owned())
        } else if option.chars().count() > MAX_ENUM_OPTION_CHARS {
            Some(format!("is longer than {MAX_ENUM_OPTION_CHARS} characters"))
        } else if !seen.insert(option.as_str()) {
            Some(format!("{} is listed twice", quoted(option)))
        } else {
            check_chars(option).err()
        };
        if let Some(problem) = problem {
            return Err(format!("options[{index}] {problem}"));
        }
        out.push(option.clone());
    }
    Ok(out)
}

/// A number written as text: an integer stays an integer; NaN and infinities are refused.
fn parse_number(s: &str) -> Option<Number> {
    if let Ok(whole) = s.parse::<i64>() {
        return Some(whole.into());
    }
    // Rust also reads "inf", "NaN" and "infinity"; keep to what people write as numbers.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(Number::from_f64)
}

fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 3] = ["true", "yes", "1"];
    const FALSE: [&str; 3] = ["false", "no", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// A custom field name: 1-64 chars, ASCII letter first, then letters, digits, '_' ; else Err(message).
pub fn check_field_name(name: &str) -> Result<(), String> {
    let rule = "a field name is 1 to 64 characters: an ASCII letter, then letters, digits or '_'";
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "{} is not a valid field name: {rule}",
            quoted(name)
        ));
    }
    if name.len() > MAX_FIELD_NAME_CHARS {
        return Err(format!(
            "a field name has at most {MAX_FIELD_NAME_CHARS} characters"
        ));
    }
    Ok(())
}

/// Where a custom attribute's name stands in a raw contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedAt {
    /// A member name of `customAttributes`.
    CustomAttributes,
    /// The `id` of this entry of Reteno's `fields`.
    Fields(usize),
}

impl NamedAt {
    /// The JSON pointer of `name` inside the contact: "/customAttributes/foo" (with `~` and
    /// `/` escaped per RFC 6901) or "/fields/2/id".
    pub fn pointer(self, name: &str) -> String {
        match self {
            NamedAt::CustomAttributes => format!(
                "/customAttributes/{}",
                name.replace('~', "~0").replace('/', "~1")
            ),
            NamedAt::Fields(index) => format!("/fields/{index}/id"),
        }
    }
}

/// Custom attribute names a raw contact uses, and where each stands, for the intake's 422 on
/// unknown names. Nothing is copied: the intake reads 3000 contacts' names per request, and
/// only an unknown name needs its pointer written out.
pub fn attribute_names(raw: &Value) -> impl Iterator<Item = (&str, NamedAt)> {
    let attributes = match raw.get("customAttributes") {
        Some(Value::Object(attributes)) => Some(attributes),
        _ => None,
    };
    let entries = match raw.get("fields") {
        Some(Value::Array(entries)) => Some(entries),
        _ => None,
    };
    let named = attributes.into_iter().flat_map(|a| {
        a.keys()
            .map(|name| (name.as_str(), NamedAt::CustomAttributes))
    });
    named.chain(entries.into_iter().flat_map(|entries| field_ids(entries)))
}

/// The names Reteno's `fields` entries give (each entry's `id`, when it is a string), and
/// where each stands.
pub(super) fn field_ids(entries: &[Value]) -> impl Iterator<Item = (&str, NamedAt)> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| match entry.get("id") {
            Some(Value::String(id)) => Some((id.as_str(), NamedAt::Fields(index))),
            _ => None,
        })
}

/// The row's custom attributes, from `customAttributes` then Reteno `fields`; for a name sent
/// twice the first wins (`customAttributes` before `fields`). Problems go to `errors`.
pub(super) fn read_attributes(
    contact: &Map<String, Value>,
    rules: &Rules,
    errors: &mut Vec<RowIssue>,
    warnings: &mut Vec<RowIssue>,
) -> BTreeMap<String, Patch<Value>> {
    let fields = rules.fields;
    let mut sent: Vec<(&String, &Value)> = Vec::new();
    match contact.get("customAttributes") {
        None => {}
        Some(Value::Object(attributes)) => sent.extend(attributes),
        Some(other) => errors.push(invalid_value(
            "customAttributes",
            format!(
                "expected an object {{\"name\": value}}, got {}; to clear one attribute send {{\"name\": null}}",
                kind_of(other)
            ),
        )),
    }
    match contact.get("fields") {
        None => {}
        Some(Value::Array(entries)) => {
            for (index, entry) in entries.iter().enumerate() {
                match (entry, entry.get("id"), entry.get("value")) {
                    (Value::Object(_), Some(Value::String(id)), Some(value)) => {
                        sent.push((id, value))
                    }
                    _ => errors.push(invalid_value(
                        "fields",
                        format!(
                            "fields[{index}] must be an object {{\"id\": \"name\", \"value\": ...}}"
                        ),
                    )),
                }
            }
        }
        Some(other) => errors.push(invalid_value(
            "fields",
            format!(
                "expected an array of {{\"id\", \"value\"}}, got {}",
                kind_of(other)
            ),
        )),
    }

    let mut seen = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (name, value) in sent {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let field = format!("customAttributes.{name}");
        let converted = match fields.get(name) {
            Some(kind) => kind.convert(value, &field, rules.date_format, warnings),
            None => Err(RowIssue::new(
                &field,
                ErrorCode::UnknownField,
                format!("no custom field named {} is defined", quoted(name)),
            )),
        };
        match converted {
            Ok(patch) => {
                out.insert(name.clone(), patch);
            }
            Err(issue) => errors.push(issue),
        }
    }
    out
}

#[cfg(test)]
#[path = "attributes_tests.rs"]
mod tests;
