//! Reading one JSON value as text, the first step for every string field of a contact:
//! it tells absent from null from blank, trims, refuses control characters PostgreSQL or people
//! cannot use, and enforces the length limits listed in the module header.

use std::borrow::Cow;

use serde_json::Value;

use super::{ErrorCode, Patch, RowIssue};

/// A JSON value seen as text.
#[derive(Debug, PartialEq)]
pub(super) enum Text<'v> {
    /// The key is not in the row.
    Absent,
    /// JSON `null`.
    Null,
    /// A string that is empty or only white space.
    Blank,
    /// A trimmed, non-empty string free of control characters.
    Value(Cow<'v, str>),
}

/// Whether a JSON number is read as its decimal text (phone, zip, externalId) or refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Numbers {
    Refused,
    AsText,
}

/// Reads `value` (None when the key is absent) as text for `field`.
pub(super) fn read<'v>(
    value: Option<&'v Value>,
    field: &str,
    numbers: Numbers,
) -> Result<Text<'v>, RowIssue> {
    match value {
        None => Ok(Text::Absent),
        Some(Value::Null) => Ok(Text::Null),
        Some(Value::String(s)) => {
            check_chars(s).map_err(|m| invalid_value(field, m))?;
            let trimmed = s.trim();
            if trimmed.is_empty() {
                Ok(Text::Blank)
            } else {
                Ok(Text::Value(Cow::Borrowed(trimmed)))
            }
        }
        Some(Value::Number(n)) if numbers == Numbers::AsText => match n.as_u64() {
            Some(whole) => Ok(Text::Value(Cow::Owned(whole.to_string()))),
            None => Err(invalid_value(
                field,
                format!("expected a string or a whole number, got {n}"),
            )),
        },
        Some(other) => Err(invalid_value(
            field,
            format!("expected a string, got {}", kind_of(other)),
        )),
    }
}

/// Reads an optional free-text field: blank or null clears it, longer than `max` is `too_long`.
pub(super) fn text_patch(
    value: Option<&Value>,
    field: &str,
    max: usize,
) -> Result<Patch<String>, RowIssue> {
    Ok(match read(value, field, Numbers::Refused)? {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        Text::Value(s) => {
            check_len(&s, field, max)?;
            Patch::Set(s.into_owned())
        }
    })
}

/// `too_long` when `s` has more than `max` characters.
pub(super) fn check_len(s: &str, field: &str, max: usize) -> Result<(), RowIssue> {
    // A string of at most `max` bytes cannot have more than `max` characters: skip the count.
    if s.len() <= max {
        return Ok(());
    }
    let chars = s.chars().count();
    if chars <= max {
        return Ok(());
    }
    Err(RowIssue::new(
        field,
        ErrorCode::TooLong,
        format!("is {chars} characters long; at most {max} are allowed"),
    ))
}

/// Refuses NUL (PostgreSQL cannot store it) and the other C0 controls except tab, LF and CR.
pub(super) fn check_chars(s: &str) -> Result<(), String> {
    // In UTF-8 a byte below 0x20 is always that ASCII character.
    match s
        .bytes()
        .find(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    {
        None => Ok(()),
        Some(0) => Err("contains a NUL character (U+0000), which cannot be stored".into()),
        Some(b) => Err(format!("contains the control character U+{b:04X}")),
    }
}

/// An `invalid_value` issue.
pub(super) fn invalid_value(field: &str, message: impl Into<String>) -> RowIssue {
    RowIssue::new(field, ErrorCode::InvalidValue, message)
}

/// The JSON type of `value`, with its article, for messages.
pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `s` in double quotes for a message, cut after 40 characters.
pub(super) fn quoted(s: &str) -> String {
    const SHOWN: usize = 40;
    match s.char_indices().nth(SHOWN) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_fields_tell_absent_null_blank_and_values_apart() {
        let ok: [(Option<Value>, Patch<&str>); 8] = [
            (None, Patch::Absent),
            (Some(json!(null)), Patch::Clear),
            (Some(json!("")), Patch::Clear),
            (Some(json!("  \t\n ")), Patch::Clear),
            (Some(json!("  Amina ")), Patch::Set("Amina")),
            (
                Some(json!("Anne-Marie\tO'Brien")),
                Patch::Set("Anne-Marie\tO'Brien"),
            ),
            (
                Some(json!("line one\r\nline two")),
                Patch::Set("line one\r\nline two"),
            ),
            (Some(json!("Jürgen")), Patch::Set("Jürgen")),
        ];
        for (value, expected) in ok {
            let got = text_patch(value.as_ref(), "firstName", 40).unwrap();
            assert_eq!(got, expected.map(String::from), "{value:?}");
        }
    }

    #[test]
    fn text_fields_refuse_wrong_types_control_characters_and_long_values() {
        let bad = [
            (
                json!(12),
                ErrorCode::InvalidValue,
                "expected a string, got a number",
            ),
            (json!(true), ErrorCode::InvalidValue, "got a boolean"),
            (json!(["a"]), ErrorCode::InvalidValue, "got an array"),
            (json!({"a": 1}), ErrorCode::InvalidValue, "got an object"),
            (json!("Ami\u{0}na"), ErrorCode::InvalidValue, "NUL"),
            (json!("\u{0}"), ErrorCode::InvalidValue, "NUL"),
            (json!("bell\u{7}"), ErrorCode::InvalidValue, "U+0007"),
            (
                json!("\u{b} vertical tab"),
                ErrorCode::InvalidValue,
                "U+000B",
            ),
            (json!("\u{1b}[31m"), ErrorCode::InvalidValue, "U+001B"),
            (json!("abcdefghijk"), ErrorCode::TooLong, "11 characters"),
            (json!("ééééééééééé"), ErrorCode::TooLong, "at most 10"),
        ];
        for (value, code, needle) in bad {
            let err = text_patch(Some(&value), "firstName", 10).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code),
                ("firstName", code),
                "{value}"
            );
            assert!(err.message.contains(needle), "{value}: {}", err.message);
        }
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        // Ten two-byte characters fit a limit of ten; padding spaces are trimmed first.
        let cases = [
            ("éééééééééé", true),
            ("  abcdefghij  ", true),
            ("abcdefghijk", false),
        ];
        for (s, fits) in cases {
            let got = text_patch(Some(&json!(s)), "city", 10);
            assert_eq!(got.is_ok(), fits, "{s:?}");
        }
    }

    #[test]
    fn numbers_are_read_as_text_only_where_allowed() {
        let cases = [
            (
                json!(212612345678u64),
                Numbers::AsText,
                Ok(Text::Value("212612345678".into())),
            ),
            (
                json!(75001),
                Numbers::AsText,
                Ok(Text::Value("75001".into())),
            ),
            (
                json!(-5),
                Numbers::AsText,
                Err("expected a string or a whole number, got -5"),
            ),
            (
                json!(1.5),
                Numbers::AsText,
                Err("expected a string or a whole number, got 1.5"),
            ),
            (
                json!(75001),
                Numbers::Refused,
                Err("expected a string, got a number"),
            ),
            (
                json!(true),
                Numbers::AsText,
                Err("expected a string, got a boolean"),
            ),
        ];
        for (value, numbers, expected) in cases {
            let got = read(Some(&value), "zip", numbers).map_err(|e| e.message);
            assert_eq!(got, expected.map_err(String::from), "{value}");
        }
    }

    #[test]
    fn quoted_cuts_long_values() {
        let cases = [
            ("short", "\"short\"".to_string()),
            (&"x".repeat(41), format!("\"{}\"…", "x".repeat(40))),
            (&"é".repeat(40), format!("\"{}\"", "é".repeat(40))),
        ];
        for (s, expected) in cases {
            assert_eq!(quoted(s), expected);
        }
    }
}
