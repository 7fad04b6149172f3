//! What contact search compares (API.md): a contact's search words, stored with it as a
//! `tsvector` (migration 0019), and a search text's query over them. A term matches the start
//! of a word of the names or of the email (its local part and its domain count as words),
//! case- and accent-insensitively; a term of digits matches the start of the phone, with or
//! without its country code, or its end. Both sides are folded here by the same function, so
//! that they always agree; PostgreSQL only stores the words and matches prefixes of them.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest search text, in characters (the API refuses longer ones); words are kept to
/// this length, which keeps every prefix a search can ask for (and PostgreSQL's limit on a
/// lexeme, 2 KB, far away).
pub const MAX_SEARCH_CHARS: usize = 100;

/// Marks a phone's reversed digits, so that they match only a reversed term.
const REVERSED: char = '~';

/// A text as search compares it: compatibility forms unfolded (`ﬁ` → `fi`, full-width digits →
/// digits), lower case, accents removed, and the Latin letters that have no decomposition
/// spelled as their base letters (`ø` → `o`, `ß` → `ss`).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        for lower in ch.to_lowercase() {
            match lower {
                'ß' => out.push_str("ss"),
                'æ' => out.push_str("ae"),
                'œ' => out.push_str("oe"),
                'þ' => out.push_str("th"),
                'ø' => out.push('o'),
                'ł' | 'ŀ' => out.push('l'),
                'đ' | 'ð' => out.push('d'),
                'ħ' => out.push('h'),
                'ı' => out.push('i'),
                other => out.push(other),
            }
        }
    }
    out
}

/// The number of digits of an E.164 number's country code, from its first digits: the codes
/// are prefix-free; `1` and `7` have one digit, the codes below two, every other three.
fn country_code_len(digits: &str) -> usize {
    const TWO_DIGITS: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if digits.get(..2).is_some_and(|two| TWO_DIGITS.contains(&two)) {
        2
    } else {
        3
    }
}

/// At most `MAX_SEARCH_CHARS` characters of `word`.
fn clip(word: &str) -> &str {
    word.char_indices()
        .nth(MAX_SEARCH_CHARS)
        .map_or(word, |(end, _)| &word[..end])
}

/// A contact's search words, sorted and distinct, none empty:
/// - each word of the names, whole as written between spaces (`jean-pierre`, `o'brien`) and in
///   its runs of letters and digits (`jean`, `pierre`, `o`, `brien`);
/// - the email, whole (its start is the local part's), and its domain;
/// - the phone's digits with the country code, without it, and reversed behind `~`.
pub fn words(names: [Option<&str>; 3], email: Option<&str>, phone: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names.into_iter().flatten() {
        let folded = fold(name);
        for token in folded.split_whitespace() {
            out.push(clip(token).to_owned());
            for part in token.split(|c: char| !c.is_alphanumeric()) {
                if !part.is_empty() && part.len() != token.len() {
                    out.push(clip(part).to_owned());
                }
            }
        }
    }
    if let Some(email) = email {
        let folded = fold(email.trim());
        if let Some((_, domain)) = folded.split_once('@') {
            out.push(clip(domain).to_owned());
        }
        out.push(clip(&folded).to_owned());
    }
    if let Some(phone) = phone {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            let national = &digits[country_code_len(&digits).min(digits.len())..];
            out.push(national.to_owned());
            out.push(format!(
                "{REVERSED}{}",
                digits.chars().rev().collect::<String>()
            ));
            out.push(digits);
        }
    }
    out.retain(|w| !w.is_empty());
    out.sort_unstable();
    out.dedup();
    out
}

/// A term of digits: digits with `+`, `-`, `.`, `/`, brackets between them, at least one.
fn phone_term(term: &str) -> Option<String> {
    let rest = term.strip_prefix('+').unwrap_or(term);
    if !rest.chars().any(|c| c.is_ascii_digit())
        || !rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '.' | '/' | '(' | ')'))
    {
        return None;
    }
    Some(rest.chars().filter(char::is_ascii_digit).collect())
}

/// `word` as a tsquery prefix: quoted, its quotes doubled and backslashes escaped.
fn prefix(word: &str, out: &mut String) {
    out.push('\'');
    for ch in word.chars() {
        match ch {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            other => out.push(other),
        }
    }
    out.push_str("':*");
}

/// The tsquery (its text) of a search: every term, split on spaces and folded, must start a
/// word; a term of digits starts the phone (with or without its country code) or, reversed,
/// ends it. Punctuation at either end of a term is dropped (`@gmail.com` is `gmail.com`).
/// `None` when no term is left (a search of punctuation only matches nothing).
pub fn query(search: &str) -> Option<String> {
    let folded = fold(search);
    let mut out = String::new();
    for term in folded.split_whitespace() {
        let before = out.len();
        if before > 0 {
            out.push_str(" & ");
        }
        if let Some(digits) = phone_term(term) {
            let digits = clip(&digits);
            out.push('(');
            prefix(digits, &mut out);
            out.push_str(" | ");
            let reversed: String = std::iter::once(REVERSED)
                .chain(digits.chars().rev())
                .collect();
            prefix(&reversed, &mut out);
            out.push(')');
            continue;
        }
        let trimmed = term.trim_matches(|c: char| !c.is_alphanumeric());
        if trimmed.is_empty() {
            out.truncate(before);
            continue;
        }
        prefix(clip(trimmed), &mut out);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(words: &[String], search: &str) -> bool {
        // What PostgreSQL does with the query: every term one of whose alternatives is a
        // prefix of a word.
        let Some(q) = query(search) else { return false };
        q.split(" & ").all(|term| {
            term.trim_matches(|c| c == '(' || c == ')')
                .split(" | ")
                .any(|alt| {
                    let lexeme = alt
                        .strip_prefix('\'')
                        .and_then(|a| a.strip_suffix("':*"))
                        .unwrap_or(alt)
                        .replace("''", "'")
                        .replace("\\\\", "\\");
                    words.iter().any(|w| w.starts_with(&lexeme))
                })
        })
    }

    #[test]
    fn accents_case_and_letters_without_decomposition_fold_away() {
        assert_eq!(fold("Élodie MÜLLER"), "elodie muller");
        assert_eq!(
            fold("Øster Łukasz Straße Æsir"),
            "oster lukasz strasse aesir"
        );
        assert_eq!(fold("ﬁne １２３"), "fine 123");
        assert_eq!(fold("Йорк"), "иорк");
    }

    #[test]
    fn a_contact_has_its_words_parts_email_domain_and_phone_forms() {
        let w = words(
            [Some("Jean-Pierre"), Some("O'Brien"), None],
            Some("JP.Obrien@Example.co.uk"),
            Some("+212612345678"),
        );
        for expected in [
            "jean-pierre",
            "jean",
            "pierre",
            "o'brien",
            "o",
            "brien",
            "jp.obrien@example.co.uk",
            "example.co.uk",
            "212612345678",
            "612345678",
            "~876543216212",
        ] {
            assert!(w.iter().any(|x| x == expected), "{expected} in {w:?}");
        }
        assert_eq!(w.len(), 11, "{w:?}");
        assert!(words([None, None, None], None, None).is_empty());
    }

    #[test]
    fn terms_match_word_starts_only() {
        let w = words(
            [Some("Élodie"), Some("Dupont-Martin"), None],
            Some("e.dupont@gmail.com"),
            Some("+33612345678"),
        );
        for (search, expected) in [
            ("elo", true),
            ("ÉLODIE martin", true),
            ("lodie", false),
            ("@gmail.com", true),
            ("gmail", true),
            ("e.dup", true),
            ("dupont,", true),
            ("elodie benali", false),
            ("33612", true),
            ("+33 6", true),
            ("612345", true),
            ("5678", true),
            ("0612", false),
            ("1234", false),
            ("-", false),
            ("", false),
        ] {
            assert_eq!(matches(&w, search), expected, "{search:?} in {w:?}");
        }
    }

    #[test]
    fn a_query_quotes_what_it_takes_literally() {
        assert_eq!(query("o'bri").as_deref(), Some("'o''bri':*"));
        assert_eq!(query(r"a\b").as_deref(), Some(r"'a\\b':*"));
        assert_eq!(
            query("ali +212 6").as_deref(),
            Some("'ali':* & ('212':* | '~212':*) & ('6':* | '~6':*)")
        );
        assert_eq!(query(" ; , "), None);
    }

    #[test]
    fn long_words_keep_every_prefix_a_search_can_ask_for() {
        let long = "a".repeat(5000);
        let w = words([Some(&long), None, None], None, None);
        assert_eq!(w, vec!["a".repeat(MAX_SEARCH_CHARS)]);
        assert!(matches(&w, &"a".repeat(MAX_SEARCH_CHARS)));
    }

    /// The country code lengths agree with libphonenumber's list of calling codes.
    #[test]
    fn country_code_lengths_agree_with_libphonenumber() {
        let util = &*rlibphonenumber::PHONE_NUMBER_UTIL;
        let mut checked = 0;
        for code in util.get_supported_calling_codes() {
            let digits = format!("{code}000000");
            assert_eq!(country_code_len(&digits), code.to_string().len(), "+{code}");
            checked += 1;
        }
        assert!(checked > 200, "{checked} calling codes");
    }
}
