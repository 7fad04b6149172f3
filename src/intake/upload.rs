//! Streaming CSV uploads. The body arrives as chunks; a blocking task reads them as CSV (the
//! `csv` crate), turns each record into a flat contact and sends batches through a bounded
//! channel, so no process holds the whole file. Each batch is committed as it comes, in state
//! `held`. Only when the whole file is stored are the duplicate rows found (in SQL, over the
//! stored dedupe keys) and the batches released to the outbox — in one transaction. An upload
//! cut off half-way leaves a `failed` import and applies nothing.

use super::csv::{ColumnMap, CsvOptions, resolve_columns, sniff_delimiter};
use super::encoding;
use super::gzip::Limited;
use super::records::{MAX_RECORD_BYTES, OVERLONG_RECORD, RecordLimit};
use super::vcard;
use super::{Accepted, FieldError, IntakeError};
use crate::store::Source;
use crate::store::batches::{self, HeldBatch};
use crate::store::imports::{self, NewImport};
use crate::validate::{self, FieldKind, invalid_row};
use axum::body::Bytes;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use uuid::Uuid;

/// The most columns a file may have.
pub const MAX_COLUMNS: usize = 1000;

/// A batch is stored once it holds this many bytes of records, even with fewer rows than the
/// batch size: with records of up to 1 MiB, 500 of them would be half a gigabyte.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What the reader task tells the storing side.
enum Event {
    /// The header was read and mapped (or could not be).
    Header(Result<Vec<String>, IntakeError>),
    /// A batch of records, serialised.
    Batch(HeldBatch),
    /// The file ended after this many data rows.
    Done(i32),
    /// The body could not be read to its end.
    Broken(String),
    /// The file, decompressed, is larger than the upload limit.
    TooLarge,
}

/// Everything the reader needs, moved into its blocking task.
pub struct FileSpec {
    pub options: CsvOptions,
    pub fields: HashMap<String, FieldKind>,
    pub batch_size: usize,
    /// The body is gzip-compressed (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// The file is a vCard address book, not CSV.
    pub vcard: bool,
    /// The most bytes the file may have as read (decompressed).
    pub max_bytes: u64,
}

/// Reads the whole upload and stores it; returns the 202 body.
pub async fn store_csv(
    pool: &PgPool,
    tenant_id: Uuid,
    spec: FileSpec,
    chunks: mpsc::Receiver<std::io::Result<Bytes>>,
) -> Result<Accepted, IntakeError> {
    let stream = Box::pin(futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let (events, mut received) = mpsc::channel::<Event>(2);
    let options = spec.options.clone();
    let options_limit = spec.max_bytes;
    let reader_task = tokio::task::spawn_blocking(move || read_file(reader, &spec, &events));

    let columns = match received.recv().await {
        Some(Event::Header(Ok(columns))) => columns,
        Some(Event::Header(Err(problem))) => return Err(problem),
        Some(Event::Broken(reason)) => {
            return Err(IntakeError::Malformed(format!(
                "the upload could not be read: {reason}"
            )));
        }
        Some(Event::TooLarge) => return Err(too_large(&options_limit)),
        _ => {
            return Err(IntakeError::invalid(
                "the file is empty",
                vec![FieldError::new(
                    "/file",
                    "empty_file",
                    "the file has no header row",
                )],
            ));
        }
    };
    // The header is acceptable: from here on the import exists, so that an upload that
    // breaks off leaves a failed import behind rather than nothing.
    let import_id = create_import(pool, tenant_id, &options).await?;
    let outcome = loop {
        match received.recv().await {
            Some(Event::Batch(batch)) => {
                if let Err(e) = batches::insert_held(pool, tenant_id, import_id, &batch).await {
                    break Err(IntakeError::from(e));
                }
            }
            Some(Event::Done(0)) => {
                break Err(IntakeError::invalid(
                    "the file has a header but no data rows; nothing was stored",
                    vec![FieldError::new(
                        "/file",
                        "no_rows",
                        "add at least one data row under the header",
                    )],
                ));
            }
            Some(Event::Done(rows)) => break Ok(rows),
            Some(Event::Broken(reason)) => {
                break Err(IntakeError::Malformed(format!(
                    "the upload could not be read to its end: {reason}"
                )));
            }
            Some(Event::TooLarge) => break Err(too_large(&options_limit)),
            Some(Event::Header(_)) | None => {
                break Err(IntakeError::Malformed(
                    "the upload ended unexpectedly".into(),
                ));
            }
        }
    };
    drop(received);
    let _ = reader_task.await;
    match outcome {
        Ok(rows) => {
            imports::complete_upload(pool, tenant_id, import_id, rows, &columns).await?;
            Ok(Accepted::new(import_id, rows))
        }
        Err(problem @ IntakeError::Invalid { .. }) => {
            // Nothing to keep: an empty file is refused as if it had never come.
            imports::delete(pool, tenant_id, import_id).await?;
            Err(problem)
        }
        Err(problem) => {
            let reason = problem.to_string();
            if let Err(e) = imports::abandon_upload(pool, tenant_id, import_id, &reason).await {
                tracing::error!(%import_id, error = %e, "could not mark an interrupted upload failed");
            }
            tracing::warn!(%import_id, %reason, "CSV upload failed; nothing applied");
            Err(problem)
        }
    }
}

fn too_large(limit: &u64) -> IntakeError {
    IntakeError::TooLarge(format!(
        "the file is larger than the upload limit of {limit} bytes once decompressed (MAX_UPLOAD_BYTES)"
    ))
}

/// Reads the header line (at most 64 KiB) so the delimiter can be sniffed, minus a BOM.
fn first_line(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.take(64 * 1024).read_until(b'\n', &mut line)?;
    if line.starts_with(&[0xEF, 0xBB, 0xBF]) {
        line.drain(..3);
    }
    Ok(line)
}

/// Where a file's records come from: CSV, or the cards of a vCard file.
enum Records<R: BufRead> {
    Csv(csv::Reader<RecordLimit<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>>),
    Vcard(vcard::Cards<R>),
}

impl<R: BufRead> Records<R> {
    /// The next record; `Err` is why the file cannot be read on.
    fn read(&mut self, record: &mut csv::ByteRecord) -> Result<bool, String> {
        match self {
            Records::Csv(csv) => csv.read_byte_record(record).map_err(|e| e.to_string()),
            Records::Vcard(cards) => cards.read_record(record).map_err(|e| e.to_string()),
        }
    }
}

fn read_file(reader: impl Read + 'static, spec: &FileSpec, events: &mpsc::Sender<Event>) {
    let exceeded = Arc::new(AtomicBool::new(false));
    let broken = |e: &dyn std::fmt::Display| {
        if exceeded.load(Ordering::Relaxed) {
            Event::TooLarge
        } else {
            Event::Broken(e.to_string())
        }
    };
    let send = |event| events.blocking_send(event).is_ok();
    // Every limit counts the file as read: decompressed, when it comes gzip-compressed.
    let reader: Box<dyn Read> = if spec.gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let reader = Limited::new(reader, spec.max_bytes, exceeded.clone());
    let reader = BufReader::with_capacity(256 * 1024, reader);
    // As UTF-8: the declared or detected encoding, transcoded unless it is UTF-8 already.
    let reader = encoding::as_utf8(reader, spec.options.encoding);
    let reader = BufReader::with_capacity(256 * 1024, reader);
    let mut record = csv::ByteRecord::new();
    let opened = if spec.vcard {
        open_vcard(reader, &mut record)
    } else {
        open_csv(reader, &mut record)
    };
    let (header, mut records, mut pending) = match opened {
        Ok(Some(opened)) => opened,
        Ok(None) => {
            send(Event::Done(0));
            return;
        }
        Err(Opened::Refused(problem)) => {
            send(Event::Header(Err(problem)));
            return;
        }
        Err(Opened::Broken(e)) => {
            send(broken(&e));
            return;
        }
    };
    let map = match resolve_columns(
        &header,
        spec.options.mapping.as_ref(),
        &spec.fields,
        spec.options.import.dedupe_on,
    ) {
        Ok(map) => map,
        Err(errors) => {
            let what = if spec.vcard { "cards" } else { "columns" };
            send(Event::Header(Err(IntakeError::invalid(
                format!("the file's {what} cannot be mapped to contact fields; nothing was stored"),
                errors,
            ))));
            return;
        }
    };
    if !send(Event::Header(Ok(header.clone()))) {
        return;
    }
    let mut batch = BatchBuilder::new(spec.batch_size);
    let mut rows = 0i32;
    loop {
        if !pending {
            match records.read(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    send(broken(&e));
                    return;
                }
            }
        }
        pending = false;
        if is_blank(&record) {
            continue;
        }
        batch.push(&map, &header, &record, rows, spec);
        rows += 1;
        let full = batch.len() >= spec.batch_size || batch.bytes >= MAX_BATCH_BYTES;
        if full && !send(Event::Batch(batch.take())) {
            return;
        }
    }
    if batch.len() > 0 && !send(Event::Batch(batch.take())) {
        return;
    }
    send(Event::Done(rows));
}

/// Why a file could not be opened.
enum Opened {
    /// Its start is not acceptable (422).
    Refused(IntakeError),
    /// The body could not be read.
    Broken(String),
}

/// A file's header, its records, and whether `record` already holds the first one.
type Open<R> = Option<(Vec<String>, Records<R>, bool)>;

/// A CSV file: its delimiter sniffed from the header line, and the header read and checked.
fn open_csv<R: BufRead>(mut reader: R, record: &mut csv::ByteRecord) -> Result<Open<R>, Opened> {
    let line = first_line(&mut reader).map_err(|e| Opened::Broken(e.to_string()))?;
    let delimiter = sniff_delimiter(&line);
    let records = RecordLimit::new(
        std::io::Cursor::new(line).chain(reader),
        delimiter,
        MAX_RECORD_BYTES,
    );
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(records);
    let header = match csv.read_byte_record(record) {
        Ok(true) => record
            .iter()
            .map(|c| String::from_utf8(c.to_vec()).map(|s| s.trim().to_owned()))
            .collect::<Result<Vec<_>, _>>(),
        Ok(false) => return Ok(None),
        Err(e) => return Err(Opened::Broken(e.to_string())),
    };
    let refused = |detail: &str, code: &str, message: String| {
        Opened::Refused(IntakeError::invalid(
            detail,
            vec![FieldError::new("/file", code, message)],
        ))
    };
    if is_overlong(record) {
        return Err(refused(
            "the header row is too long; nothing was stored",
            "header_too_long",
            format!("the header row is longer than {MAX_RECORD_BYTES} bytes"),
        ));
    }
    if record.len() > MAX_COLUMNS {
        return Err(refused(
            "the file has too many columns; nothing was stored",
            "too_many_columns",
            format!(
                "the header has {} columns; a file may have at most {MAX_COLUMNS}",
                record.len()
            ),
        ));
    }
    let Ok(header) = header else {
        return Err(refused(
            "the header row is not valid UTF-8",
            "invalid_encoding",
            "the file reads as UTF-8 but its header is not: name its encoding with the encoding option (windows-1252, iso-8859-1, utf-16le, …), or save it as UTF-8".into(),
        ));
    };
    Ok(Some((header, Records::Csv(csv), false)))
}

/// A vCard file: its columns are `vcard::COLUMNS`; the first card is read, so that a file
/// that is not vCard at all, or holds no card, is refused before anything is stored.
fn open_vcard<R: BufRead>(reader: R, record: &mut csv::ByteRecord) -> Result<Open<R>, Opened> {
    let mut cards = vcard::Cards::new(reader, MAX_RECORD_BYTES);
    let refused = |message: String| {
        Opened::Refused(IntakeError::invalid(
            "the file cannot be read as vCard; nothing was stored",
            vec![FieldError::new("/file", "invalid_file", message)],
        ))
    };
    match cards.read_record(record) {
        Ok(true) => {}
        Ok(false) => {
            return Err(refused(
                "the file holds no card (BEGIN:VCARD … END:VCARD)".into(),
            ));
        }
        Err(vcard::CardsError::NotVcard(message)) => return Err(refused(message)),
        Err(vcard::CardsError::Read(e)) => return Err(Opened::Broken(e.to_string())),
    }
    let header = vcard::COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    Ok(Some((header, Records::Vcard(cards), true)))
}

/// A line with nothing but white space (a blank trailing line, say) is not a row.
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.len() <= 1 && record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace))
}

/// A record that `RecordLimit` replaced: it was over `MAX_RECORD_BYTES`.
fn is_overlong(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && record.get(0) == Some(OVERLONG_RECORD)
}

struct BatchBuilder {
    batch_no: i32,
    first_row: i32,
    /// The bytes of the records in the batch, as read.
    bytes: usize,
    contacts: Vec<Value>,
    raw: Vec<Vec<String>>,
    keys: Vec<Option<String>>,
}

impl BatchBuilder {
    fn new(capacity: usize) -> Self {
        Self {
            batch_no: 0,
            first_row: 0,
            bytes: 0,
            contacts: Vec::with_capacity(capacity),
            raw: Vec::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
        }
    }

    fn len(&self) -> usize {
        self.contacts.len()
    }

    fn push(
        &mut self,
        map: &ColumnMap,
        header: &[String],
        record: &csv::ByteRecord,
        index: i32,
        spec: &FileSpec,
    ) {
        self.bytes += record.as_slice().len();
        let cells: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        let contact = match cells {
            _ if is_overlong(record) => invalid_row(format!(
                "row {index} is longer than {MAX_RECORD_BYTES} bytes; it was not read"
            )),
            Err(e) => invalid_row(format!(
                "row {index} is not valid UTF-8 ({e}); name the file's encoding with the encoding option, or save it as UTF-8"
            )),
            Ok(cells) if cells.len() != header.len() => invalid_row(format!(
                "row {index} has {} fields; the header has {}",
                cells.len(),
                header.len()
            )),
            Ok(cells) => map.contact(&cells, spec.options.empty_cells_clear),
        };
        let options = &spec.options.import;
        self.keys.push(validate::dedupe_key(
            &contact,
            options.dedupe_on,
            options.default_region.as_deref(),
        ));
        self.contacts.push(contact);
        // At most as many cells as the header has: a row of a million empty fields holds
        // no more than any other.
        let mut raw: Vec<String> = if is_overlong(record) {
            Vec::new()
        } else {
            record
                .iter()
                .take(header.len())
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        };
        raw.resize(header.len(), String::new());
        self.raw.push(raw);
    }

    fn take(&mut self) -> HeldBatch {
        let row_count = self.contacts.len() as i32;
        let batch = HeldBatch::new(
            self.batch_no,
            self.first_row,
            row_count,
            &serde_json::to_vec(&self.contacts).unwrap_or_default(),
            &serde_json::to_vec(&self.raw).unwrap_or_default(),
            std::mem::take(&mut self.keys),
        );
        self.contacts.clear();
        self.raw.clear();
        self.batch_no += 1;
        self.bytes = 0;
        self.first_row += row_count;
        batch
    }
}

/// A CSV import's own tag: `import-YYYYMMDD-<first 8 characters of the import id>`.
pub fn import_tag(id: Uuid, day: time::Date) -> String {
    let id = id.simple().to_string();
    format!(
        "import-{:04}{:02}{:02}-{}",
        day.year(),
        u8::from(day.month()),
        day.day(),
        &id[..8]
    )
}

async fn create_import(
    pool: &PgPool,
    tenant_id: Uuid,
    options: &CsvOptions,
) -> Result<Uuid, IntakeError> {
    let id = Uuid::now_v7();
    let mut import = options.import.clone();
    if options.import_tag {
        import
            .tags
            .push(import_tag(id, time::OffsetDateTime::now_utc().date()));
    }
    imports::create_upload(
        pool,
        &NewImport {
            id,
            tenant_id,
            source: Source::Csv,
            options: &import,
            total_rows: 0,
            batch_count: 0,
        },
    )
    .await?;
    Ok(id)
}
