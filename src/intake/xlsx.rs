//! Spreadsheets: the first sheet of an `.xlsx` file becomes CSV text, which then goes through
//! exactly the CSV path (mapping, options, batches, results files). The file itself is a zip
//! archive that cannot be read as a stream, so it is held in memory, bounded by
//! `MAX_XLSX_BYTES` (413 beyond); but the sheet inside it is read as a stream of cells and
//! handed on as CSV a chunk at a time, never built whole. What the archive unpacks to is
//! bounded before anything is read: its parts' declared sizes at most `MAX_XLSX_UNPACKED_BYTES`
//! (the shared strings, which are read whole, at most `MAX_SHARED_STRINGS_BYTES`), and the
//! sheet at most `MAX_SHEET_ROWS` rows, Excel's own limit.

use super::{FieldError, IntakeError};
use calamine::{DataRef, Reader, Xlsx};
use std::io::{Cursor, Read, Seek};

/// The media type of an `.xlsx` file.
pub const MEDIA_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The most rows a sheet may have (Excel's own limit).
pub const MAX_SHEET_ROWS: u32 = 1_048_576;

/// The most the shared strings part may unpack to: it is read whole before the first cell.
pub const MAX_SHARED_STRINGS_BYTES: u64 = 64 * 1024 * 1024;

/// CSV is handed on in chunks of about this size.
const CHUNK_BYTES: usize = 256 * 1024;
/// True when a content type or file name says `.xlsx`.
pub fn is_xlsx(content_type: Option<&str>, file_name: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(MEDIA_TYPE))
    }) || file_name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".xlsx"))
}

fn unreadable(message: String) -> IntakeError {
    IntakeError::invalid(
        "the spreadsheet cannot be read; nothing was stored",
        vec![FieldError::new("/file", "invalid_file", message)],
    )
}

/// Refuses an archive whose parts declare more than `max_unpacked` bytes in all, or shared
/// strings over `MAX_SHARED_STRINGS_BYTES`, before a byte of it is unpacked.
fn check_archive<R: Read + Seek>(reader: R, max_unpacked: u64) -> Result<(), IntakeError> {
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| unreadable(format!("the file is not a readable .xlsx workbook: {e}")))?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let part = archive
            .by_index_raw(i)
            .map_err(|e| unreadable(format!("the workbook's archive is damaged: {e}")))?;
        total = total.saturating_add(part.size());
        let shared_strings = part
            .name()
            .is_ok_and(|name| name.eq_ignore_ascii_case("xl/sharedStrings.xml"));
        if shared_strings && part.size() > MAX_SHARED_STRINGS_BYTES {
            return Err(IntakeError::TooLarge(format!(
                "the workbook's shared strings unpack to {} bytes; at most {MAX_SHARED_STRINGS_BYTES} are read. Save the sheet as CSV, which is streamed",
                part.size()
            )));
        }
    }
    if total > max_unpacked {
        return Err(IntakeError::TooLarge(format!(
            "the workbook unpacks to {total} bytes; at most {max_unpacked} are read (MAX_XLSX_UNPACKED_BYTES). Save the sheet as CSV, which is streamed"
        )));
    }
    Ok(())
}

/// Reads the first sheet of the workbook in `bytes` as CSV (comma-separated, RFC 4180
/// quoting), one record per row, the first row being the header. `opened` is told once the
/// workbook is checked and open (or why it cannot be read: nothing has been handed on then);
/// then `emit` gets the CSV a chunk at a time, and false from it stops the reading. `Err`:
/// the sheet broke off half-way (past `MAX_SHEET_ROWS`, or damaged).
pub fn stream_first_sheet(
    bytes: &[u8],
    max_unpacked: u64,
    opened: impl FnOnce(Result<(), IntakeError>) -> bool,
    mut emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), String> {
    let open = || -> Result<_, IntakeError> {
        check_archive(Cursor::new(bytes), max_unpacked)?;
        let workbook = Xlsx::new(Cursor::new(bytes))
            .map_err(|e| unreadable(format!("the file is not a readable .xlsx workbook: {e}")))?;
        let name = workbook
            .sheet_names()
            .first()
            .cloned()
            .ok_or_else(|| unreadable("the workbook has no sheet".into()))?;
        Ok((workbook, name))
    };
    let (mut workbook, name) = match open() {
        Ok(open) => open,
        Err(e) => {
            opened(Err(e));
            return Ok(());
        }
    };
    let mut cells = match workbook.worksheet_cells_reader(&name) {
        Ok(cells) => cells,
        Err(e) => {
            opened(Err(unreadable(format!(
                "the first sheet cannot be read: {e}"
            ))));
            return Ok(());
        }
    };
    let dimensions = cells.dimensions();
    if dimensions.end.0.saturating_sub(dimensions.start.0) >= MAX_SHEET_ROWS {
        opened(Err(IntakeError::invalid(
            "the sheet has too many rows; nothing was stored",
            vec![FieldError::new(
                "/file",
                "too_many_rows",
                format!(
                    "the sheet declares {} rows; a sheet has at most {MAX_SHEET_ROWS}",
                    u64::from(dimensions.end.0 - dimensions.start.0) + 1
                ),
            )],
        )));
        return Ok(());
    }
    if !opened(Ok(())) {
        return Ok(());
    }
    let first_column = dimensions.start.1;
    let mut sheet = SheetCsv::default();
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| format!("the sheet could not be read to its end: {e}"))?
    {
        let (row, column) = cell.get_position();
        if row.saturating_sub(dimensions.start.0) >= MAX_SHEET_ROWS {
            return Err(format!(
                "the sheet has more than {MAX_SHEET_ROWS} rows (Excel's own limit)"
            ));
        }
        sheet.cell(
            row,
            column.saturating_sub(first_column),
            cell_text(cell.get_value()),
        )?;
        if sheet.out.len() >= CHUNK_BYTES && !emit(std::mem::take(&mut sheet.out)) {
            return Ok(());
        }
    }
    sheet.end_row()?;
    if !sheet.out.is_empty() {
        emit(sheet.out);
    }
    Ok(())
}

/// Rows of cells turned into CSV records as they come.
#[derive(Default)]
struct SheetCsv {
    row: Option<u32>,
    record: Vec<String>,
    /// The header's columns: a row is padded to them (a sheet does not store trailing empty
    /// cells), and keeps what it has beyond them (then it is a bad row, as in CSV).
    header: Option<usize>,
    out: Vec<u8>,
}

impl SheetCsv {
    fn cell(&mut self, row: u32, column: u32, text: String) -> Result<(), String> {
        if self.row != Some(row) {
            self.end_row()?;
            self.row = Some(row);
        }
        let column = column as usize;
        if column >= self.record.len() {
            self.record.resize(column + 1, String::new());
        }
        self.record[column] = text;
        Ok(())
    }

    fn end_row(&mut self) -> Result<(), String> {
        while self.record.last().is_some_and(String::is_empty) {
            self.record.pop();
        }
        if self.record.is_empty() {
            // A blank line, as the CSV reader skips them.
            return Ok(());
        }
        let columns = *self.header.get_or_insert(self.record.len());
        if self.record.len() < columns {
            self.record.resize(columns, String::new());
        }
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut self.out);
        writer
            .write_record(&self.record)
            .and_then(|()| writer.flush().map_err(csv::Error::from))
            .map_err(|e| format!("the sheet could not be converted: {e}"))?;
        drop(writer);
        self.record.clear();
        Ok(())
    }
}

/// A cell as the text a CSV export would hold: whole numbers without `.0` (phone numbers are
/// often stored as numbers), dates as `YYYY-MM-DD`, booleans as `true`/`false`, errors empty.
fn cell_text(cell: &DataRef<'_>) -> String {
    match cell {
        DataRef::Empty | DataRef::Error(_) => String::new(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::DateTime(dt) => {
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
        let (refused, csv) = read(&bytes, u64::MAX);
        assert!(refused.is_none(), "{refused:?}");
        let csv = csv.unwrap();
        assert_eq!(
            csv,
            "Phone,First Name,Email,Birthday,VIP\n\
             212612345678,Amina,amina@example.com,1987-03-21,true\n\
             +212 6 12 34 56 79,Youssef,,1990-12-01,false\n\
             12345,Broken,,,\n"
        );
    }

    /// A workbook of one sheet whose `<sheetData>` is `rows`, with `dimension` if given.
    fn workbook(rows: &str, dimension: Option<&str>) -> Vec<u8> {
        use std::io::Write;
        let parts = [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned(),
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned(),
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_owned(),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_owned(),
            ),
            (
                "xl/worksheets/sheet1.xml",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{}<sheetData>{rows}</sheetData></worksheet>"#,
                    dimension.map(|d| format!(r#"<dimension ref="{d}"/>"#)).unwrap_or_default()
                ),
            ),
        ];
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in parts {
            zip.start_file(name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn inline_rows(from: usize, to: usize) -> String {
        (from..to)
            .map(|r| format!(r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>+2126{r:08}</t></is></c></row>"#))
            .collect()
    }

    /// What reading `bytes` says before the first chunk, and the CSV or the error after it.
    fn read(bytes: &[u8], max_unpacked: u64) -> (Option<IntakeError>, Result<String, String>) {
        let mut refused = None;
        let mut csv = Vec::new();
        let result = stream_first_sheet(
            bytes,
            max_unpacked,
            |open| {
                refused = open.err();
                refused.is_none()
            },
            |chunk| {
                csv.extend(chunk);
                true
            },
        );
        (
            refused,
            result.map(|()| String::from_utf8_lossy(&csv).into_owned()),
        )
    }

    #[test]
    fn a_sheet_is_handed_on_in_chunks_as_it_is_read() {
        let rows = format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>{}"#,
            inline_rows(2, 30_002)
        );
        let bytes = workbook(&rows, None);
        let mut chunks = 0;
        let mut csv = Vec::new();
        stream_first_sheet(
            &bytes,
            u64::MAX,
            |open| open.is_ok(),
            |chunk| {
                chunks += 1;
                csv.extend(chunk);
                true
            },
        )
        .unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 30_001);
        assert_eq!(csv.lines().nth(1), Some("+212600000002"));
        assert!(chunks > 1, "{chunks} chunk(s)");
    }

    #[test]
    fn a_workbook_that_unpacks_past_the_limit_is_refused_before_it_is_read() {
        let bytes = workbook(&inline_rows(1, 5000), None);
        assert!(bytes.len() < 100_000, "{} bytes", bytes.len());
        let (refused, csv) = read(&bytes, 64 * 1024);
        match refused {
            Some(IntakeError::TooLarge(message)) => {
                assert!(message.contains("MAX_XLSX_UNPACKED_BYTES"), "{message}")
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(csv, Ok(String::new()));
    }

    #[test]
    fn a_sheet_past_excels_row_limit_is_refused_or_cut_off() {
        // Declared: refused before a row is handed on.
        let (refused, _) = read(&workbook(&inline_rows(1, 3), Some("A1:A2000000")), u64::MAX);
        match refused {
            Some(IntakeError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].code, "too_many_rows")
            }
            other => panic!("expected too_many_rows, got {other:?}"),
        }
        // Not declared: the reading stops at the first row past the limit.
        let row = |r: u32| format!(r#"<row r="{r}"><c r="A{r}"><v>1</v></c></row>"#);
        let rows = format!("{}{}", row(1), row(MAX_SHEET_ROWS + 1));
        let (refused, csv) = read(&workbook(&rows, None), u64::MAX);
        assert!(refused.is_none());
        let error = csv.unwrap_err();
        assert!(error.contains("1048576 rows"), "{error}");
    }

    #[test]
    fn what_is_not_a_workbook_is_refused_with_a_reason() {
        match read(b"phone\n+212612345678\n", u64::MAX).0 {
            Some(IntakeError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].code, "invalid_file");
                assert!(errors[0].message.contains(".xlsx"), "{}", errors[0].message);
            }
            other => panic!("expected invalid_file, got {other:?}"),
        }
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
