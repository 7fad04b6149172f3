//! Calendar dates: `YYYY-MM-DD` always, and the other orders a file may write them in (the
//! `dateFormat` option: `DD/MM/YYYY`, `MM/DD/YYYY`, `DD.MM.YYYY`). Used by `birthday` and by
//! custom attributes of type date. A parsed date is always a real day of the calendar; a date
//! without a year (`--05-17`, `05/17`) is told apart, so that it can be left out with a
//! warning instead of failing its row.

use time::{Date, Month};

use super::text::quoted;
use super::{ErrorCode, RowIssue};

/// The warning for a date without a year, which is left out.
pub(super) fn partial_date(field: &str, written: &str) -> RowIssue {
    RowIssue::new(
        field,
        ErrorCode::PartialDate,
        format!(
            "{} has no year, so {field} was left as it was",
            quoted(written)
        ),
    )
}

/// `YYYY-MM-DD`.
pub(super) fn iso(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// How the dates of an import are written (the `dateFormat` option). ISO `YYYY-MM-DD` is
/// taken whatever the format.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub enum DateFormat {
    #[default]
    #[serde(rename = "YYYY-MM-DD")]
    Iso,
    #[serde(rename = "DD/MM/YYYY")]
    DayMonthYear,
    #[serde(rename = "MM/DD/YYYY")]
    MonthDayYear,
    #[serde(rename = "DD.MM.YYYY")]
    DotDayMonthYear,
}

impl DateFormat {
    /// Every format, as the API names them.
    pub const ALL: [DateFormat; 4] = [
        Self::Iso,
        Self::DayMonthYear,
        Self::MonthDayYear,
        Self::DotDayMonthYear,
    ];

    /// The API name: `YYYY-MM-DD`, `DD/MM/YYYY`, `MM/DD/YYYY` or `DD.MM.YYYY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iso => "YYYY-MM-DD",
            Self::DayMonthYear => "DD/MM/YYYY",
            Self::MonthDayYear => "MM/DD/YYYY",
            Self::DotDayMonthYear => "DD.MM.YYYY",
        }
    }

    /// Reads the API name (exact).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The separator, and whether the day comes first, of a format other than ISO.
    fn shape(self) -> Option<(u8, bool)> {
        match self {
            Self::Iso => None,
            Self::DayMonthYear => Some((b'/', true)),
            Self::MonthDayYear => Some((b'/', false)),
            Self::DotDayMonthYear => Some((b'.', true)),
        }
    }
}

/// A date as a row writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParsedDate {
    /// A whole date.
    Day(Date),
    /// A day and month without a year: `--05-17`, `--0517`, or `05/17` / `17.05`.
    NoYear,
    /// No date, written as zeros: Outlook's `0/0/00`, a database's `0000-00-00`.
    Zero,
}

/// Reads a date written as `YYYY-MM-DD` or in `format`; `Err` is a human message.
pub(super) fn parse_date(s: &str, format: DateFormat) -> Result<ParsedDate, String> {
    if s.contains('0') && s.bytes().all(|b| matches!(b, b'0' | b'/' | b'.' | b'-')) {
        return Ok(ParsedDate::Zero);
    }
    if let Some(rest) = s.strip_prefix("--") {
        return no_year(s, rest, None, false);
    }
    let iso = parse_iso_date(s);
    let Some((separator, day_first)) = format.shape() else {
        return match iso {
            Ok(date) => Ok(ParsedDate::Day(date)),
            // `05/17` or `17.05`: day and month, but which is which is not said; either way
            // there is no year to store.
            Err(e) => [b'/', b'.']
                .into_iter()
                .filter(|&sep| s.as_bytes().contains(&sep))
                .flat_map(|sep| [false, true].map(|day_first| no_year(s, s, Some(sep), day_first)))
                .find_map(Result::ok)
                .ok_or(e),
        };
    };
    if iso.is_ok() || s.len() == 10 && s.as_bytes()[4] == b'-' {
        return iso.map(ParsedDate::Day);
    }
    let expected = || {
        format!(
            "expected a date as {} (or YYYY-MM-DD), got {}",
            format.as_str(),
            quoted(s)
        )
    };
    let parts: Vec<&str> = s.split(separator as char).collect();
    match parts[..] {
        [_, _] => no_year(s, s, Some(separator), day_first).map_err(|_| expected()),
        [a, b, year] if small_number(a) && small_number(b) && is_digits(year, 4) => {
            let (day, month) = if day_first { (a, b) } else { (b, a) };
            let iso = format!("{year}-{month:0>2}-{day:0>2}");
            parse_iso_date(&iso)
                .map(ParsedDate::Day)
                .map_err(|_| format!("{s} is not a day of the calendar"))
        }
        [_, _, year] if is_digits(year, 2) => Err(format!(
            "{} has a two-digit year; write the year with four digits ({})",
            quoted(s),
            format.as_str()
        )),
        _ => Err(expected()),
    }
}

/// One or two ASCII digits.
fn small_number(s: &str) -> bool {
    (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// A day and month without a year: `MM-DD` or `MMDD` after `--` (`separator` None), else
/// two numbers around `separator`, the day first or not. Checked to be a day of some year.
fn no_year(
    whole: &str,
    s: &str,
    separator: Option<u8>,
    day_first: bool,
) -> Result<ParsedDate, String> {
    let bad = || format!("{} is not a day and month", quoted(whole));
    let (first, second) = match separator {
        None if is_digits(s, 4) => (&s[..2], &s[2..]),
        None => s.split_once('-').ok_or_else(bad)?,
        Some(sep) => s.split_once(sep as char).ok_or_else(bad)?,
    };
    if !small_number(first) || !small_number(second) {
        return Err(bad());
    }
    let (day, month) = match separator {
        Some(_) if day_first => (first, second),
        _ => (second, first),
    };
    let number = |s: &str| s.parse::<u8>().ok();
    let month = number(month)
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(bad)?;
    // 2000 is a leap year: 29 February is a birthday.
    number(day)
        .and_then(|d| Date::from_calendar_date(2000, month, d).ok())
        .map(|_| ParsedDate::NoYear)
        .ok_or_else(bad)
}

/// Reads a `YYYY-MM-DD` date (years 0001 to 9999); `Err` is a human message.
pub(super) fn parse_iso_date(s: &str) -> Result<Date, String> {
    let b = s.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits_at(0..4)
        && digits_at(5..7)
        && digits_at(8..10);
    if !shaped {
        return Err(format!("expected a date as YYYY-MM-DD, got {}", quoted(s)));
    }
    let number = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
    };
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let not_a_day = || format!("{s} is not a day of the calendar");
    if year == 0 {
        return Err(not_a_day());
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(not_a_day)?;
    let day = u8::try_from(day).map_err(|_| not_a_day())?;
    Date::from_calendar_date(i32::from(year), month, day).map_err(|_| not_a_day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_are_read_in_the_import_format_and_iso_is_always_taken() {
        use DateFormat::*;
        let day = |d| Ok(ParsedDate::Day(d));
        let cases = [
            ("1990-05-17", Iso, day(date!(1990 - 05 - 17))),
            ("1990-05-17", DayMonthYear, day(date!(1990 - 05 - 17))),
            ("1990-05-17", MonthDayYear, day(date!(1990 - 05 - 17))),
            ("17/05/1990", DayMonthYear, day(date!(1990 - 05 - 17))),
            ("5/7/1990", DayMonthYear, day(date!(1990 - 07 - 05))),
            ("05/17/1990", MonthDayYear, day(date!(1990 - 05 - 17))),
            ("17.05.1990", DotDayMonthYear, day(date!(1990 - 05 - 17))),
            ("29/02/2024", DayMonthYear, day(date!(2024 - 02 - 29))),
            ("29/02/2023", DayMonthYear, Err("not a day")),
            ("05/17/1990", DayMonthYear, Err("not a day")),
            ("17/05/90", DayMonthYear, Err("four digits")),
            ("17.05.1990", DayMonthYear, Err("DD/MM/YYYY")),
            ("1990-02-30", DayMonthYear, Err("not a day")),
            ("17/05/1990", Iso, Err("YYYY-MM-DD")),
            ("yesterday", MonthDayYear, Err("MM/DD/YYYY")),
            // No year: left out with a warning, whatever the format.
            ("--05-17", Iso, Ok(ParsedDate::NoYear)),
            ("--0517", DayMonthYear, Ok(ParsedDate::NoYear)),
            ("--02-29", Iso, Ok(ParsedDate::NoYear)),
            ("07/21", Iso, Ok(ParsedDate::NoYear)),
            ("21/07", Iso, Ok(ParsedDate::NoYear)),
            ("07/21", MonthDayYear, Ok(ParsedDate::NoYear)),
            ("21/07", DayMonthYear, Ok(ParsedDate::NoYear)),
            ("21.07", DotDayMonthYear, Ok(ParsedDate::NoYear)),
            ("21/07", MonthDayYear, Err("MM/DD/YYYY")),
            ("--13-01", Iso, Err("not a day and month")),
            ("--02-30", Iso, Err("not a day and month")),
            ("--", Iso, Err("not a day and month")),
            ("31/31", Iso, Err("YYYY-MM-DD")),
            ("0/0/00", DayMonthYear, Ok(ParsedDate::Zero)),
            ("0000-00-00", Iso, Ok(ParsedDate::Zero)),
        ];
        for (input, format, expected) in cases {
            match (parse_date(input, format), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input} as {format:?}"),
                (Err(message), Err(needle)) => {
                    assert!(message.contains(needle), "{input} as {format:?}: {message}")
                }
                (got, want) => panic!("{input} as {format:?}: got {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn date_formats_read_and_write_their_api_names() {
        for format in DateFormat::ALL {
            assert_eq!(DateFormat::parse(format.as_str()), Some(format));
            assert_eq!(serde_json::to_value(format).unwrap(), format.as_str());
        }
        assert_eq!(DateFormat::parse("dd/mm/yyyy"), None);
    }

    #[test]
    fn dates_must_be_real_and_written_yyyy_mm_dd() {
        let cases = [
            ("2024-02-29", Ok(date!(2024 - 02 - 29))),
            ("1990-01-05", Ok(date!(1990 - 01 - 05))),
            ("1900-12-31", Ok(date!(1900 - 12 - 31))),
            ("0001-01-01", Ok(date!(0001 - 01 - 01))),
            ("2023-02-29", Err("not a day")),
            ("1990-13-01", Err("not a day")),
            ("1990-04-31", Err("not a day")),
            ("1990-00-10", Err("not a day")),
            ("1990-01-00", Err("not a day")),
            ("0000-01-01", Err("not a day")),
            ("1990-1-5", Err("YYYY-MM-DD")),
            ("31/12/1990", Err("YYYY-MM-DD")),
            ("yesterday", Err("YYYY-MM-DD")),
            ("1990-01-05T00:00:00Z", Err("YYYY-MM-DD")),
            ("+1990-01-5", Err("YYYY-MM-DD")),
            ("١٩٩٠-٠١-٠٥", Err("YYYY-MM-DD")),
            ("", Err("YYYY-MM-DD")),
        ];
        for (input, expected) in cases {
            match (parse_iso_date(input), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
                (Err(message), Err(needle)) => {
                    assert!(message.contains(needle), "{input}: {message}")
                }
                (got, want) => panic!("{input}: got {got:?}, expected {want:?}"),
            }
        }
    }
}
