//! Calendar dates as the API writes them, `YYYY-MM-DD` and nothing looser: used by `birthday`
//! and by custom attributes of type date. A parsed date is always a real day of the calendar.

use time::{Date, Month};

use super::text::quoted;

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
