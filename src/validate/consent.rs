//! Consent per channel and the contact's statuses, as rows write them. A row sets a channel's
//! consent as a word (`"consent": {"sms": "optedIn"}`, or `yes`, `true`, `1`, `subscribed`,
//! `opt-in`, … as files write it) or as an object with its time and source
//! (`{"status": "optedOut", "at": "2026-01-05T10:00:00Z", "source": "shop"}`). What an opt-out
//! means for a later import (it is sticky) is the planner's rule, not this module's.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::text::{Numbers, Text, check_len, invalid_value, kind_of, quoted, read};
use super::{Patch, RowIssue};

/// A contact's statuses and consents as flat members (`consent.<channel>`), in the order file
/// columns and the export list them.
pub const FLAT_MEMBERS: [&str; 7] = [
    "status",
    "emailStatus",
    "phoneStatus",
    "consent.email",
    "consent.sms",
    "consent.whatsapp",
    "consent.call",
];

/// The longest consent source.
pub const MAX_SOURCE_CHARS: usize = 255;

/// A channel a contact consents to be reached on.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
    Call,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [Self::Email, Self::Sms, Self::Whatsapp, Self::Call];

    /// The API name: `email`, `sms`, `whatsapp` or `call`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Call => "call",
        }
    }

    /// Reads the API name (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

/// Whether a contact agreed to be reached on a channel.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
}

impl ConsentStatus {
    /// `optedIn` or `optedOut`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedIn => "optedIn",
            Self::OptedOut => "optedOut",
        }
    }

    /// Reads the spellings files use: `optedIn`/`optedOut`, `yes`/`no`, `true`/`false`,
    /// `1`/`0`, `subscribed`/`unsubscribed`, `opt-in`/`opt-out` (any case; `_`, `-` and spaces
    /// ignored).
    pub fn parse(s: &str) -> Option<Self> {
        let word: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        match word.as_str() {
            "optedin" | "optin" | "yes" | "y" | "true" | "1" | "subscribed" => Some(Self::OptedIn),
            "optedout" | "optout" | "no" | "n" | "false" | "0" | "unsubscribed" => {
                Some(Self::OptedOut)
            }
            _ => None,
        }
    }
}

/// A channel's consent as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub status: ConsentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Where it came from: `import:<asyncSessionId>`, `api`, or what the row said.
    pub source: String,
}

/// A channel's consent as a row sets it; the time and source default when it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentSet {
    pub status: ConsentStatus,
    pub at: Option<OffsetDateTime>,
    pub source: Option<String>,
}

/// A contact's consents, by channel.
pub type Consents = BTreeMap<Channel, Consent>;

/// `active` (the default) or `passive`: for the contact (kept, but to be sent nothing) and for
/// each of its addresses (unreachable).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Active,
    Passive,
}

impl Reach {
    /// `active` or `passive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
        }
    }

    /// Reads `active`/`passive`, or BulkUpsert's `A`/`P` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "active" | "a" => Some(Self::Active),
            "passive" | "p" => Some(Self::Passive),
            _ => None,
        }
    }
}

/// `status`, `emailStatus` or `phoneStatus`.
pub(super) fn read_reach(value: Option<&Value>, field: &str) -> Result<Patch<Reach>, RowIssue> {
    Ok(match read(value, field, Numbers::Refused)? {
        Text::Absent => Patch::Absent,
        Text::Null | Text::Blank => Patch::Clear,
        Text::Value(s) => match Reach::parse(&s) {
            Some(reach) => Patch::Set(reach),
            None => {
                let message = format!("expected \"active\" or \"passive\", got {}", quoted(&s));
                return Err(invalid_value(field, message));
            }
        },
    })
}

/// The row's `consent`: each channel it names, set or cleared (`null`). Problems go to
/// `errors`, each on `consent.<channel>`.
pub(super) fn read_consent(
    contact: &Map<String, Value>,
    errors: &mut Vec<RowIssue>,
) -> BTreeMap<Channel, Patch<ConsentSet>> {
    let mut out = BTreeMap::new();
    let entries = match contact.get("consent") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            errors.push(invalid_value(
                "consent",
                format!(
                    "expected an object {{\"sms\": \"optedIn\", …}}, got {}",
                    kind_of(other)
                ),
            ));
            return out;
        }
    };
    for (name, value) in entries {
        let Some(channel) = Channel::parse(name) else {
            errors.push(invalid_value(
                "consent",
                format!(
                    "{} is not a channel; the channels are email, sms, whatsapp and call",
                    quoted(name)
                ),
            ));
            continue;
        };
        let field = format!("consent.{}", channel.as_str());
        match read_one(value, &field) {
            Ok(patch) => {
                out.insert(channel, patch);
            }
            Err(issue) => errors.push(issue),
        }
    }
    out
}

/// One channel's value: a status word (or boolean, or 0/1), an object, or `null`.
fn read_one(value: &Value, field: &str) -> Result<Patch<ConsentSet>, RowIssue> {
    let status_of = |value: &Value| -> Result<Option<ConsentStatus>, RowIssue> {
        let word = match value {
            Value::Bool(b) => return Ok(Some(status_from_bool(*b))),
            Value::Number(n) if n.as_u64() == Some(1) => return Ok(Some(ConsentStatus::OptedIn)),
            Value::Number(n) if n.as_u64() == Some(0) => return Ok(Some(ConsentStatus::OptedOut)),
            other => read(Some(other), field, Numbers::Refused)?,
        };
        match word {
            Text::Absent | Text::Null | Text::Blank => Ok(None),
            Text::Value(s) => ConsentStatus::parse(&s).map(Some).ok_or_else(|| {
                invalid_value(
                    field,
                    format!(
                        "expected optedIn or optedOut (or yes/no, true/false, 1/0, subscribed/unsubscribed), got {}",
                        quoted(&s)
                    ),
                )
            }),
        }
    };
    let Value::Object(object) = value else {
        return Ok(match status_of(value)? {
            Some(status) => Patch::Set(ConsentSet {
                status,
                at: None,
                source: None,
            }),
            None => Patch::Clear,
        });
    };
    let Some(status) = status_of(object.get("status").unwrap_or(&Value::Null))? else {
        return Err(invalid_value(
            field,
            "a consent object needs a status: optedIn or optedOut",
        ));
    };
    let at = match read(object.get("at"), field, Numbers::Refused)? {
        Text::Value(s) => Some(OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| {
            invalid_value(
                field,
                format!(
                    "at must be an RFC 3339 time such as 2026-01-05T10:00:00Z, got {}",
                    quoted(&s)
                ),
            )
        })?),
        _ => None,
    };
    let source = match read(object.get("source"), field, Numbers::Refused)? {
        Text::Value(s) => {
            check_len(&s, field, MAX_SOURCE_CHARS)?;
            Some(s.into_owned())
        }
        _ => None,
    };
    Ok(Patch::Set(ConsentSet { status, at, source }))
}

fn status_from_bool(b: bool) -> ConsentStatus {
    if b {
        ConsentStatus::OptedIn
    } else {
        ConsentStatus::OptedOut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_all(consent: Value) -> (BTreeMap<Channel, Patch<ConsentSet>>, Vec<RowIssue>) {
        let mut errors = Vec::new();
        let contact = json!({ "consent": consent });
        let out = read_consent(contact.as_object().unwrap(), &mut errors);
        (out, errors)
    }

    fn set(status: ConsentStatus) -> Patch<ConsentSet> {
        Patch::Set(ConsentSet {
            status,
            at: None,
            source: None,
        })
    }

    #[test]
    fn consent_is_read_in_the_spellings_files_use() {
        use ConsentStatus::*;
        let cases = [
            (json!("optedIn"), Ok(set(OptedIn))),
            (json!("opted_out"), Ok(set(OptedOut))),
            (json!("Opt-In"), Ok(set(OptedIn))),
            (json!("YES"), Ok(set(OptedIn))),
            (json!("no"), Ok(set(OptedOut))),
            (json!(true), Ok(set(OptedIn))),
            (json!(false), Ok(set(OptedOut))),
            (json!(1), Ok(set(OptedIn))),
            (json!("0"), Ok(set(OptedOut))),
            (json!("Unsubscribed"), Ok(set(OptedOut))),
            (json!(null), Ok(Patch::Clear)),
            (json!(""), Ok(Patch::Clear)),
            (json!("maybe"), Err("expected optedIn or optedOut")),
            (json!(2), Err("expected a string")),
            (json!({"source": "shop"}), Err("needs a status")),
            (
                json!({"status": "optedOut", "at": "yesterday"}),
                Err("RFC 3339"),
            ),
        ];
        for (value, expected) in cases {
            let (out, errors) = read_all(json!({ "sms": value.clone() }));
            match expected {
                Ok(patch) => {
                    assert_eq!(errors, [], "{value}");
                    assert_eq!(out.get(&Channel::Sms), Some(&patch), "{value}");
                }
                Err(needle) => {
                    assert_eq!(errors.len(), 1, "{value}");
                    assert_eq!(errors[0].field, "consent.sms");
                    assert!(
                        errors[0].message.contains(needle),
                        "{value}: {:?}",
                        errors[0]
                    );
                }
            }
        }
    }

    #[test]
    fn an_object_carries_its_time_and_source_and_channels_are_checked() {
        let (out, errors) = read_all(json!({
            "Email": {"status": "optedOut", "at": "2026-01-05T10:00:00Z", "source": " shop "},
            "fax": "yes",
        }));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("not a channel"), "{errors:?}");
        let Some(Patch::Set(email)) = out.get(&Channel::Email) else {
            panic!("{out:?}");
        };
        assert_eq!(email.status, ConsentStatus::OptedOut);
        assert_eq!(email.source.as_deref(), Some("shop"));
        assert_eq!(
            email.at,
            Some(time::macros::datetime!(2026-01-05 10:00:00 UTC))
        );
        let (_, errors) = read_all(json!(["sms"]));
        assert_eq!(errors[0].field, "consent");
    }

    #[test]
    fn reach_reads_active_passive_and_the_bulk_upsert_letters() {
        for (s, expected) in [
            ("active", Some(Reach::Active)),
            ("PASSIVE", Some(Reach::Passive)),
            ("A", Some(Reach::Active)),
            ("p", Some(Reach::Passive)),
            ("gone", None),
        ] {
            assert_eq!(Reach::parse(s), expected, "{s}");
        }
        assert!(read_reach(Some(&json!("gone")), "status").is_err());
        assert_eq!(read_reach(Some(&json!(null)), "status"), Ok(Patch::Clear));
    }
}
