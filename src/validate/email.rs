//! Email addresses as contacts are stored and matched on: trimmed, the whole address lower-cased,
//! RFC 5322 syntax (no display name, no IP literal) with a dotted domain, at most 254 characters.

use email_address::{EmailAddress, Options};

use super::text::quoted;
use super::{ErrorCode, MAX_EMAIL_CHARS};

/// A checked, lower-cased email address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Same as [`normalize_email`].
    pub fn parse(raw: &str) -> Result<Self, String> {
        normalize_email(raw)
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalises an email address; `Err` is a human message.
pub fn normalize_email(raw: &str) -> Result<Email, String> {
    parse_email(raw).map_err(|(_, message)| message)
}

/// Like [`normalize_email`], with the row error code: `too_long` or `invalid_email`.
pub(super) fn parse_email(raw: &str) -> Result<Email, (ErrorCode, String)> {
    let address = raw.trim().to_lowercase();
    let invalid = |why: &str| {
        let message = format!("{} is not a valid email address: {why}", quoted(&address));
        (ErrorCode::InvalidEmail, message)
    };
    if address.is_empty() {
        return Err((ErrorCode::InvalidEmail, "is empty".into()));
    }
    let chars = address.chars().count();
    if chars > MAX_EMAIL_CHARS {
        let message = format!("is {chars} characters long; at most {MAX_EMAIL_CHARS} are allowed");
        return Err((ErrorCode::TooLong, message));
    }
    let options = Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_required_tld();
    if let Err(error) = EmailAddress::parse_with_options(&address, options) {
        return Err(invalid(why(&error)));
    }
    Ok(Email(address))
}

fn why(error: &email_address::Error) -> &'static str {
    use email_address::Error as E;
    match error {
        E::MissingSeparator => "it has no '@'",
        E::LocalPartEmpty => "nothing before the '@'",
        E::LocalPartTooLong => "more than 64 characters before the '@'",
        E::DomainEmpty => "nothing after the '@'",
        E::DomainTooFew => "its domain needs a dot, as in example.com",
        E::DomainTooLong | E::SubDomainTooLong => "its domain is too long",
        E::SubDomainEmpty | E::DomainInvalidSeparator => "its domain has a misplaced dot",
        E::UnbalancedQuotes => "unbalanced quotes",
        E::UnsupportedDomainLiteral | E::InvalidIPAddress => {
            "an IP address is not accepted as domain"
        }
        E::UnsupportedDisplayName | E::MissingDisplayName | E::MissingEndBracket => {
            "write the address alone, without a name or <brackets>"
        }
        E::InvalidCharacter | E::InvalidComment => "it contains a character not allowed there",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let cases = [
            ("ahmed.benali@gmail.com", "ahmed.benali@gmail.com"),
            (
                "  Amina.ElAmrani12@Yahoo.com ",
                "amina.elamrani12@yahoo.com",
            ),
            ("JOHN.SMITH@OUTLOOK.COM", "john.smith@outlook.com"),
            ("olena+news@mail.ru", "olena+news@mail.ru"),
            ("o'neil@example.org", "o'neil@example.org"),
            ("Chloé.Dubois@proton.me", "chloé.dubois@proton.me"),
            ("user@sub.domain.co.uk", "user@sub.domain.co.uk"),
            ("\"john smith\"@example.org", "\"john smith\"@example.org"),
        ];
        for (input, expected) in cases {
            match normalize_email(input) {
                Ok(email) => assert_eq!(email.as_str(), expected, "{input:?}"),
                Err(message) => panic!("{input:?}: {message}"),
            }
        }
    }

    #[test]
    fn invalid_emails_are_refused_with_a_reason() {
        let local_64 = "a".repeat(64);
        let long = format!("{local_64}@{}.com", "b".repeat(190));
        let too_long_local = format!("{}@example.org", "a".repeat(65));
        let cases = [
            ("not-an-email", ErrorCode::InvalidEmail, "no '@'"),
            ("a@@b.com", ErrorCode::InvalidEmail, "not allowed"),
            ("x@", ErrorCode::InvalidEmail, "nothing after"),
            ("@example.org", ErrorCode::InvalidEmail, "nothing before"),
            ("", ErrorCode::InvalidEmail, "is empty"),
            ("john@localhost", ErrorCode::InvalidEmail, "needs a dot"),
            ("john@example.", ErrorCode::InvalidEmail, "misplaced dot"),
            (
                "john@.example.com",
                ErrorCode::InvalidEmail,
                "misplaced dot",
            ),
            (
                "john..smith@example.com",
                ErrorCode::InvalidEmail,
                "not allowed",
            ),
            (
                "john smith@example.com",
                ErrorCode::InvalidEmail,
                "not allowed",
            ),
            (
                "John <john@example.com>",
                ErrorCode::InvalidEmail,
                "without a name",
            ),
            ("john@[127.0.0.1]", ErrorCode::InvalidEmail, "IP address"),
            (
                too_long_local.as_str(),
                ErrorCode::InvalidEmail,
                "64 characters",
            ),
            (long.as_str(), ErrorCode::TooLong, "at most 254"),
        ];
        for (input, code, needle) in cases {
            match parse_email(input) {
                Ok(email) => panic!("{input:?} was accepted as {email}"),
                Err((got, message)) => {
                    assert_eq!(got, code, "{input:?}: {message}");
                    assert!(message.contains(needle), "{input:?}: {message}");
                    assert_eq!(normalize_email(input), Err(message));
                }
            }
        }
    }
}
