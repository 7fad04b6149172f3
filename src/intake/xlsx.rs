//! Spreadsheets: the first sheet of an `.xlsx` file becomes CSV text, which then goes through
//! exactly the CSV path (mapping, options, batches, results files). The format is a zip
//! archive that cannot be read as a stream, so the file is held in memory, bounded by
//! `MAX_XLSX_BYTES` (413 beyond).

use calamine::{Data, Reader, Xlsx};
use std::io::Cursor;

/// The media type of an `.xlsx` file.
pub const MEDIA_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// True when a content type or file name says `.xlsx`.
pub fn is_xlsx(content_type: Option<&str>, file_name: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(MEDIA_TYPE))
    }) || file_name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".xlsx"))
}

/// The first sheet as CSV (comma-separated, RFC 4180 quoting), one record per row, the first
/// row being the header. `Err` says why the file cannot be read.
pub fn first_sheet_as_csv(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut workbook = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| format!("the file is not a readable .xlsx workbook: {e}"))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or("the workbook has no sheet")?
        .map_err(|e| format!("the first sheet cannot be read: {e}"))?;
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::with_capacity(bytes.len() * 2));
    let mut record: Vec<String> = Vec::with_capacity(range.width());
    // The header's columns: a row is padded to them (a sheet does not store trailing empty
    // cells), and keeps what it has beyond them (then it is a bad row, as in CSV).
    let mut header: Option<usize> = None;
    for row in range.rows() {
        record.clear();
        record.extend(row.iter().map(cell_text));
        while record.last().is_some_and(String::is_empty) {
            record.pop();
        }
        if record.is_empty() {
            // A blank line, as the CSV reader skips them.
            continue;
        }
        let columns = *header.get_or_insert(record.len());
        if record.len() < columns {
            record.resize(columns, String::new());
        }
        out.write_record(&record)
            .map_err(|e| format!("the sheet could not be converted: {e}"))?;
    }
    out.into_inner()
        .map_err(|e| format!("the sheet could not be converted: {e}"))
}

/// A cell as the text a CSV export would hold: whole numbers without `.0` (phone numbers are
/// often stored as numbers), dates as `YYYY-MM-DD`, booleans as `true`/`false`, errors empty.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_text(*f),
        Data::DateTime(dt) => {
            if dt.is_datetime() {
                excel_date(dt.as_f64()).unwrap_or_else(|| number_text(dt.as_f64()))
            } else {
                number_text(dt.as_f64())
            }
        }
    }
}

fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// An Excel serial date (days since 1899-12-30, the 1900 system) as `YYYY-MM-DD`, with the
/// time when it has one.
fn excel_date(serial: f64) -> Option<String> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let days = serial.floor();
    let epoch = time::macros::date!(1899 - 12 - 30);
    let date = epoch.checked_add(time::Duration::days(days as i64))?;
    let seconds = ((serial - days) * 86_400.0).round() as i64;
    let day = format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    if seconds == 0 {
        Some(day)
    } else {
        Some(format!(
            "{day}T{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sheet_becomes_csv_with_cells_as_an_export_writes_them() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/contacts.xlsx"
        ))
        .expect("tests/data/contacts.xlsx (tests/data/make_xlsx.py writes it)");
        let csv = String::from_utf8(first_sheet_as_csv(&bytes).unwrap()).unwrap();
        assert_eq!(
            csv,
            "Phone,First Name,Email,Birthday,VIP\n\
             212612345678,Amina,amina@example.com,1987-03-21,true\n\
             +212 6 12 34 56 79,Youssef,,1990-12-01,false\n\
             12345,Broken,,,\n"
        );
    }

    #[test]
    fn what_is_not_a_workbook_is_refused_with_a_reason() {
        let err = first_sheet_as_csv(b"phone\n+212612345678\n").unwrap_err();
        assert!(err.contains(".xlsx"), "{err}");
    }

    #[test]
    fn serial_dates_and_numbers_read_as_people_wrote_them() {
        assert_eq!(excel_date(31857.0).as_deref(), Some("1987-03-21"));
        assert_eq!(excel_date(45658.5).as_deref(), Some("2025-01-01T12:00:00"));
        assert_eq!(number_text(212612345678.0), "212612345678");
        assert_eq!(number_text(1234.5), "1234.5");
        assert!(is_xlsx(
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            None
        ));
        assert!(is_xlsx(None, Some("Contacts.XLSX")));
        assert!(!is_xlsx(Some("text/csv"), Some("contacts.csv")));
    }
}
