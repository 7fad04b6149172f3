//! Phone numbers, normalised to E.164 with libphonenumber: the form contacts are stored and matched
//! on. A `Phone` is always a number libphonenumber calls valid, not merely parseable. Runs for
//! every row, so the input is first reduced to '+' and ASCII digits by a cheap scan.

use rlibphonenumber::{PHONE_NUMBER_UTIL, ParseError, PhoneNumberFormat, Region};

use super::text::quoted;

/// A valid phone number in E.164, e.g. `+212612345678`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Same as [`normalize_phone`].
    pub fn parse(raw: &str, default_region: Option<&str>) -> Result<Self, String> {
        normalize_phone(raw, default_region)
    }

    /// The number in E.164.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> Self {
        value.0
    }
}

impl AsRef<str> for Phone {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longer input is refused before any parsing.
const MAX_INPUT_CHARS: usize = 64;
/// No valid number has more digits (E.164 allows 15; the margin is for a trunk prefix or 00).
const MAX_DIGITS: usize = 18;

/// ISO 3166-1 alpha-2 region known to libphonenumber (case-insensitive input) → its upper-case code.
pub fn parse_region(s: &str) -> Option<String> {
    known_region(s.trim()).map(|region| region.to_string())
}

fn known_region(code: &str) -> Option<Region> {
    // Two letters only: `Region::from_code` also takes "001", the non-geographic entity.
    if code.len() != 2 {
        return None;
    }
    let region = Region::from_code(code).ok()?;
    PHONE_NUMBER_UTIL
        .get_country_code_for_region(region)
        .map(|_| region)
}

/// Normalises a phone number written the way people write them to E.164; `Err` is a human message.
///
/// Accepts `+CC` or `00CC` international numbers, national numbers of `default_region`, and
/// digits-only international numbers without '+'. Spaces, dashes, dots, slashes and brackets are
/// ignored; letters, extensions and anything else are refused.
pub fn normalize_phone(raw: &str, default_region: Option<&str>) -> Result<Phone, String> {
    let region =
        match default_region {
            None => None,
            Some(code) => Some(known_region(code).ok_or_else(|| {
                format!("{} is not a region known for phone numbers", quoted(code))
            })?),
        };
    let number = compact(raw)?;
    let util = &*PHONE_NUMBER_UTIL;
    let e164 =
        |n: &rlibphonenumber::PhoneNumber| util.format(n, PhoneNumberFormat::E164).into_owned();
    let international = number.starts_with('+');
    let first = util.parse(&number, region);
    if let Ok(parsed) = &first
        && util.is_valid_number(parsed)
    {
        let with_region = e164(parsed);
        // "4915123456789" with region DE also reads as a valid German national number (area code
        // 0491). Digits that start with the region's own country code are far more likely that
        // code written without '+', so that reading wins whenever it is valid too.
        if let Some(region) = region
            && !international
            && with_region[1..] != number
            && util
                .get_country_code_for_region(region)
                .is_some_and(|cc| number.starts_with(&cc.to_string()))
            && let Ok(plus) = util.parse(format!("+{number}"), None)
            && util.is_valid_number(&plus)
        {
            return Ok(Phone(e164(&plus)));
        }
        return Ok(Phone(with_region));
    }
    if !international
        && let Ok(plus) = util.parse(format!("+{number}"), None)
        && util.is_valid_number(&plus)
    {
        return Ok(Phone(e164(&plus)));
    }
    Err(explain(raw.trim(), international, region, &first))
}

/// The number as '+' (for "+" or "00") and ASCII digits, without the punctuation between them.
pub(super) fn compact(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is empty".into());
    }
    if raw.chars().nth(MAX_INPUT_CHARS).is_some() {
        return Err(format!("{} is too long to be a phone number", quoted(raw)));
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if let Some(digit) = ascii_digit(c) {
            out.push(digit);
        } else if c == '+' || c == '\u{FF0B}' {
            if !out.is_empty() {
                return Err(format!("{} has a '+' after its start", quoted(raw)));
            }
            out.push('+');
        } else if !(c.is_whitespace() || is_separator(c)) {
            return Err(format!(
                "{} contains {c:?}, which does not belong in a phone number",
                quoted(raw)
            ));
        }
    }
    let digits = out.trim_start_matches('+').len();
    if digits == 0 {
        return Err(format!("{} has no digits", quoted(raw)));
    }
    if digits > MAX_DIGITS {
        return Err(format!(
            "{} has too many digits for a phone number",
            quoted(raw)
        ));
    }
    if let Some(rest) = out.strip_prefix("00") {
        out = format!("+{rest}");
    }
    Ok(out)
}

/// The ASCII digit of `c`, for ASCII, Arabic-Indic, Persian, Devanagari and full-width digits.
fn ascii_digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    const ZEROS: [u32; 4] = [0x0660, 0x06F0, 0x0966, 0xFF10];
    let code = u32::from(c);
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|&zero| char::from_digit(code - zero, 10))
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        '-' | '.' | '(' | ')' | '/' | '\u{2010}'..='\u{2015}' | '\u{2212}'
    )
}

fn explain(
    raw: &str,
    international: bool,
    region: Option<Region>,
    first: &Result<rlibphonenumber::PhoneNumber, ParseError>,
) -> String {
    let raw = quoted(raw);
    match (international, region, first) {
        (true, _, Err(ParseError::InvalidCountryCode)) => {
            format!("{raw} does not start with a known country code")
        }
        (true, _, Err(ParseError::TooLongNsn)) => format!("{raw} is too long to be a phone number"),
        (true, _, Err(_)) => format!("{raw} is too short to be a phone number"),
        (true, _, Ok(parsed)) => {
            let cc = parsed.country_code;
            match PHONE_NUMBER_UTIL.get_region_for_country_code(cc) {
                Some(r) if r != Region::World => {
                    format!("{raw} is not a valid +{cc} ({r}) number: wrong length or prefix")
                }
                _ => format!("{raw} is not a valid +{cc} number: wrong length or prefix"),
            }
        }
        (false, None, _) => format!(
            "{raw} is not a valid phone number for any region; \
             write it with its country code (+CC) or set defaultRegion"
        ),
        (false, Some(r), _) => format!(
            "{raw} is not a valid phone number for {r}, nor with a country code in front; \
             write it with its country code (+CC)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_every_usual_format_become_e164() {
        let cases = [
            // Morocco: spaced, 00, national, digits-only without '+', brackets
            ("+212612345678", None, "+212612345678"),
            ("+212 6 12 34 56 78", None, "+212612345678"),
            ("00212612345678", None, "+212612345678"),
            ("00212612345678", Some("MA"), "+212612345678"),
            ("0612345678", Some("MA"), "+212612345678"),
            ("06.12.34.56.78", Some("MA"), "+212612345678"),
            ("212612345678", None, "+212612345678"),
            ("212612345678", Some("MA"), "+212612345678"),
            ("(+212) 661-234567", None, "+212661234567"),
            ("+2120612345678", None, "+212612345678"),
            // Other countries, international and national
            ("+44 791 234 5678", None, "+447912345678"),
            ("+44 (0) 7912 345678", None, "+447912345678"),
            ("07912 345678", Some("GB"), "+447912345678"),
            ("447912345678", Some("GB"), "+447912345678"),
            ("+1 415 555 2671", None, "+14155552671"),
            ("(415) 555-2671", Some("US"), "+14155552671"),
            ("14155552671", None, "+14155552671"),
            ("+33 6 12 34 56 78", None, "+33612345678"),
            ("06 12 34 56 78", Some("FR"), "+33612345678"),
            ("0033612345678", Some("US"), "+33612345678"),
            ("+4915123456789", None, "+4915123456789"),
            ("0151 23456789", Some("DE"), "+4915123456789"),
            ("4915123456789", Some("DE"), "+4915123456789"),
            ("+91 98123 45678", None, "+919812345678"),
            ("098123 45678", Some("IN"), "+919812345678"),
            ("9812345678", Some("IN"), "+919812345678"),
            ("+55 (11) 98765-4321", None, "+5511987654321"),
            ("(11) 98765-4321", Some("BR"), "+5511987654321"),
            ("5511987654321", None, "+5511987654321"),
            ("+234 803 123 4567", None, "+2348031234567"),
            ("0803 123 4567", Some("NG"), "+2348031234567"),
            ("2348031234567", Some("MA"), "+2348031234567"),
            ("+60 12-345 6789", None, "+60123456789"),
            ("012-345 6789", Some("MY"), "+60123456789"),
            ("0060123456789", None, "+60123456789"),
            ("+380 50 123 4567", None, "+380501234567"),
            ("050 123 4567", Some("UA"), "+380501234567"),
            ("380501234567", None, "+380501234567"),
            // An international number wins over defaultRegion; region case does not matter
            ("+212 6 12 34 56 78", Some("GB"), "+212612345678"),
            ("0612345678", Some("ma"), "+212612345678"),
            // Unicode digits and separators people paste
            ("٠٦١٢٣٤٥٦٧٨", Some("MA"), "+212612345678"),
            ("＋２１２６１２３４５６７８", None, "+212612345678"),
            ("+212\u{a0}612\u{2013}345\u{2013}678", None, "+212612345678"),
            ("  +212612345678  ", None, "+212612345678"),
        ];
        for (input, region, expected) in cases {
            match normalize_phone(input, region) {
                Ok(phone) => assert_eq!(phone.as_str(), expected, "{input:?} {region:?}"),
                Err(message) => panic!("{input:?} {region:?}: {message}"),
            }
        }
    }

    #[test]
    fn invalid_phones_are_refused_with_a_reason() {
        let cases = [
            (
                "12345",
                None,
                "not a valid phone number for any region; write it with its country code (+CC) or set defaultRegion",
            ),
            ("12345", Some("MA"), "not a valid phone number for MA"),
            (
                "+999123456789",
                None,
                "does not start with a known country code",
            ),
            ("phone", None, "contains 'p'"),
            ("+2126", None, "too short"),
            ("", None, "is empty"),
            ("   ", Some("MA"), "is empty"),
            // "00" is the international prefix: what follows must be a country code
            ("0000000", None, "does not start with a known country code"),
            (
                "0000000",
                Some("MA"),
                "does not start with a known country code",
            ),
            ("0", Some("MA"), "not a valid phone number for MA"),
            ("+44 12", None, "not a valid +44 (GB) number"),
            ("+212 6 12", None, "not a valid +212 (MA) number"),
            ("0612345678", None, "set defaultRegion"),
            ("0612345678", Some("GB"), "for GB"),
            ("+212612345678 ext. 12", None, "contains 'e'"),
            ("tel:+212612345678", None, "contains 't'"),
            ("1-800-FLOWERS", Some("US"), "contains 'F'"),
            ("+212+612345678", None, "'+' after its start"),
            ("212+612345678", None, "'+' after its start"),
            ("++212612345678", None, "'+' after its start"),
            ("+", None, "no digits"),
            ("(-)", None, "no digits"),
            ("+1234567890123456789", None, "too many digits"),
            ("+2126123456789999", None, "not a valid +212 (MA) number"),
            ("0612345678", Some("XX"), "not a region known"),
        ];
        for (input, region, needle) in cases {
            match normalize_phone(input, region) {
                Ok(phone) => panic!("{input:?} {region:?} was accepted as {phone}"),
                Err(message) => assert!(message.contains(needle), "{input:?}: {message}"),
            }
        }
        let long = "1".repeat(MAX_INPUT_CHARS + 1);
        assert!(
            normalize_phone(&long, None)
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn regions_are_two_letter_codes_known_to_libphonenumber() {
        let cases = [
            ("MA", Some("MA")),
            ("ma", Some("MA")),
            (" gB ", Some("GB")),
            ("US", Some("US")),
            ("XK", Some("XK")),
            ("UK", None),
            ("EU", None),
            ("XX", None),
            ("001", None),
            ("MAR", None),
            ("M", None),
            ("", None),
            ("M1", None),
            ("é", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_region(input).as_deref(), expected, "{input:?}");
        }
    }
}
