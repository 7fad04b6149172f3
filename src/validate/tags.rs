//! Tags: a contact's own `tags`, and the request-level `tags` and `tagsRemove`. A tag is kept
//! as sent once trimmed (case included): 1 to 64 characters, no control character. A list holds
//! at most 100 tags; a tag listed twice counts once.

use super::text::{kind_of, quoted};
use super::{ErrorCode, Patch, RowIssue};
use serde_json::Value;

/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Most tags in one list.
pub const MAX_TAGS: usize = 100;

/// Longest group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 128;

/// What a list holds: tags or group names.
#[derive(Clone, Copy, Debug)]
pub struct Label {
    what: &'static str,
    max_chars: usize,
}

/// Tags.
pub const TAG: Label = Label {
    what: "tag",
    max_chars: MAX_TAG_CHARS,
};

/// Group names.
pub const GROUP: Label = Label {
    what: "group name",
    max_chars: MAX_GROUP_NAME_CHARS,
};

/// One tag, trimmed; `Err` says what is wrong with it.
pub fn check_tag(raw: &str) -> Result<String, String> {
    check_label(raw, TAG)
}

fn check_label(raw: &str, label: Label) -> Result<String, String> {
    let what = label.what;
    let max = label.max_chars;
    let item = raw.trim();
    if item.is_empty() {
        return Err(format!("a {what} cannot be empty"));
    }
    if item.chars().count() > max {
        return Err(format!(
            "{what} {} is longer than {max} characters",
            quoted(item)
        ));
    }
    if item.chars().any(char::is_control) {
        return Err(format!(
            "{what} {} contains a control character",
            quoted(item)
        ));
    }
    Ok(item.to_owned())
}

/// A JSON list of tags, checked and without repeats (first spelling kept); `Err` holds the
/// position of the bad item (`None` when the list itself is wrong) and why.
pub fn read_tags(value: &Value) -> Result<Vec<String>, (Option<usize>, String)> {
    read_labels(value, TAG)
}

/// A JSON list of tags or group names (see `read_tags`).
pub fn read_labels(value: &Value, label: Label) -> Result<Vec<String>, (Option<usize>, String)> {
    let Value::Array(items) = value else {
        return Err((
            None,
            format!("expected an array of strings, got {}", kind_of(value)),
        ));
    };
    if items.len() > MAX_TAGS {
        return Err((None, format!("{} tags; at most {MAX_TAGS}", items.len())));
    }
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(raw) = item else {
            return Err((
                Some(i),
                format!("a {} is a string, got {}", label.what, kind_of(item)),
            ));
        };
        let tag = check_label(raw, label).map_err(|message| (Some(i), message))?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// A contact's `tags`: absent leaves them, `null` clears them, a list sets (or, without
/// `overwrite`, adds) them.
pub(super) fn contact_tags(value: Option<&Value>) -> Result<Patch<Vec<String>>, RowIssue> {
    match value {
        None => Ok(Patch::Absent),
        Some(Value::Null) => Ok(Patch::Clear),
        Some(list) => read_tags(list)
            .map(Patch::Set)
            .map_err(|(_, message)| RowIssue::new("tags", ErrorCode::InvalidValue, message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_are_trimmed_checked_and_listed_once() {
        assert_eq!(
            read_tags(&json!([" vip ", "VIP", "vip", "new-2026"])),
            Ok(vec![
                "vip".to_owned(),
                "VIP".to_owned(),
                "new-2026".to_owned()
            ])
        );
        assert!(read_tags(&json!("vip")).is_err_and(|(at, _)| at.is_none()));
        assert!(read_tags(&json!(["ok", 3])).is_err_and(|(at, _)| at == Some(1)));
        assert!(read_tags(&json!(["ok", "  "])).is_err_and(|(at, _)| at == Some(1)));
        assert!(read_tags(&json!(["a\u{7}b"])).is_err());
        assert!(read_tags(&json!(["x".repeat(65)])).is_err());
        assert!(read_tags(&json!(["x".repeat(64)])).is_ok());
        let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        assert!(read_tags(&json!(many)).is_err());
    }

    #[test]
    fn a_contacts_tags_are_a_patch() {
        assert_eq!(contact_tags(None), Ok(Patch::Absent));
        assert_eq!(contact_tags(Some(&json!(null))), Ok(Patch::Clear));
        assert_eq!(
            contact_tags(Some(&json!(["a"]))),
            Ok(Patch::Set(vec!["a".to_owned()]))
        );
        let issue = contact_tags(Some(&json!([1]))).unwrap_err();
        assert_eq!(
            (issue.field.as_str(), issue.code),
            ("tags", ErrorCode::InvalidValue)
        );
    }
}
