//! vCard files (2.1, 3.0 and 4.0): each card becomes one record of `COLUMNS`, so an address
//! book export goes through the CSV path (mapping, batches, results files) as a CSV file does.
//! The file is read as a stream of content lines. Only the values of the properties that fill
//! a column are held, at most `max_card_bytes` of them per card (a longer card becomes
//! `OVERLONG_RECORD`); every other property, a 50 MB PHOTO included, streams past in chunks.
//! So a reader holds a few times `max_card_bytes` at most (quoted-printable text while it is
//! decoded), whatever the file.

use super::records::OVERLONG_RECORD;
use encoding_rs::{Encoding, UTF_8};
use std::io::{self, BufRead};

/// The columns of the records a vCard file becomes, in order (the "header").
pub const COLUMNS: [&str; 13] = [
    "fullName",
    "lastName",
    "firstName",
    "phone",
    "email",
    "occupation",
    "address",
    "city",
    "state",
    "zip",
    "birthday",
    "tags",
    "uid",
];

/// The media types of vCard (`text/directory` is RFC 2425's, which 3.0 builds on).
const MEDIA_TYPES: [&str; 3] = ["text/vcard", "text/x-vcard", "text/directory"];

/// Property names are held up to this length: a longer one names no property that is kept.
const MAX_NAME_BYTES: usize = 64;

/// The most parameter bytes held per property; the rest are read past.
const MAX_PARAMS_BYTES: usize = 4096;

/// The longest value of BEGIN, END and VERSION that is looked at.
const MAX_MARKER_BYTES: usize = 16;

/// True when a content type (`text/vcard`, `text/x-vcard`, `text/directory`, parameters
/// ignored, any case) or a file name (`.vcf`, `.vcard`, any case) says vCard.
pub fn is_vcard(content_type: Option<&str>, file_name: Option<&str>) -> bool {
    let media_type = |t: &str| {
        t.split(';')
            .next()
            .map(str::trim)
            .is_some_and(|t| MEDIA_TYPES.iter().any(|m| t.eq_ignore_ascii_case(m)))
    };
    content_type.is_some_and(media_type)
        || file_name.is_some_and(|n| {
            let n = n.to_ascii_lowercase();
            n.ends_with(".vcf") || n.ends_with(".vcard")
        })
}

/// Why a file cannot be read as vCard.
#[derive(Debug, thiserror::Error)]
pub enum CardsError {
    /// The file could not be read.
    #[error("{0}")]
    Read(#[from] io::Error),
    /// The file does not start as a vCard file does; the message names the line.
    #[error("{0}")]
    NotVcard(String),
}

/// The records of a vCard file, one per card, read as the file streams.
pub struct Cards<R> {
    source: Unfolded<R>,
    max_card_bytes: usize,
    /// A BEGIN:VCARD was read (it ended the card before it): its card is the next one.
    begun: bool,
    /// A card has been read: from then on, lines outside cards are ignored.
    seen_card: bool,
    card: Card,
    name: Vec<u8>,
    params: Vec<u8>,
    value: Vec<u8>,
}

impl<R: BufRead> Cards<R> {
    /// Cards of at most `max_card_bytes` of kept property values each.
    pub fn new(inner: R, max_card_bytes: usize) -> Self {
        Self {
            source: Unfolded {
                inner,
                after_cr: false,
                line: 1,
            },
            max_card_bytes,
            begun: false,
            seen_card: false,
            card: Card::default(),
            name: Vec::new(),
            params: Vec::new(),
            value: Vec::new(),
        }
    }

    /// The next card as a record of COLUMNS.len() fields; Ok(false) at the end of the file.
    pub fn read_record(&mut self, record: &mut csv::ByteRecord) -> Result<bool, CardsError> {
        record.clear();
        while !self.begun {
            let line = self.source.line;
            match self.content_line(false)? {
                Line::Eof => return Ok(false),
                Line::Begin => self.begun = true,
                Line::Blank => {}
                _ if self.seen_card => {}
                _ => {
                    return Err(CardsError::NotVcard(format!(
                        "line {line} is not BEGIN:VCARD: a vCard file starts with BEGIN:VCARD"
                    )));
                }
            }
        }
        self.begun = false;
        self.seen_card = true;
        self.card = Card::default();
        loop {
            match self.content_line(true)? {
                Line::Begin => {
                    self.begun = true;
                    break;
                }
                Line::End | Line::Eof => break,
                Line::Blank | Line::Other => {}
            }
        }
        self.card.write(record);
        Ok(true)
    }

    /// Reads one content line; in a card, the values of the properties it keeps go into it.
    /// Outside a card before the first one, it stops at a name other than BEGIN.
    fn content_line(&mut self, in_card: bool) -> io::Result<Line> {
        let refuse = !in_card && !self.seen_card;
        let delimiter = match self.read_name()? {
            Head::Eof => return Ok(Line::Eof),
            Head::Blank => return Ok(Line::Blank),
            Head::Unnamed { ended } => {
                if !ended && !refuse {
                    self.read_value(None, false)?;
                }
                return Ok(Line::Other);
            }
            Head::Named(delimiter) => delimiter,
        };
        let property = property(&self.name);
        if refuse && property != Property::Begin {
            return Ok(Line::Other);
        }
        let params = if delimiter == b';' {
            match self.read_params()? {
                Some(params) => params,
                None => return Ok(Line::Other),
            }
        } else {
            Params::default()
        };
        let qp = params.quoted_printable;
        match property {
            Property::Begin | Property::End => {
                let whole = self.read_value(Some(MAX_MARKER_BYTES), qp)?;
                let vcard = whole && self.value.trim_ascii().eq_ignore_ascii_case(b"VCARD");
                Ok(match (property, vcard) {
                    (Property::Begin, true) => Line::Begin,
                    (Property::End, true) => Line::End,
                    _ => Line::Other,
                })
            }
            Property::Version => {
                if self.read_value(Some(MAX_MARKER_BYTES), qp)? && in_card {
                    self.card.v21 = self.value.trim_ascii() == b"2.1";
                }
                Ok(Line::Other)
            }
            Property::Kept(field) if in_card && !self.card.overlong && !params.base64 => {
                let room = self.max_card_bytes.saturating_sub(self.card.kept);
                // Quoted-printable text is at most three times what it decodes to.
                let cap = if qp { room.saturating_mul(3) } else { room };
                if self.read_value(Some(cap), qp)? {
                    self.keep(field, &params);
                } else {
                    self.card.make_overlong();
                }
                Ok(Line::Other)
            }
            _ => {
                self.read_value(None, qp)?;
                Ok(Line::Other)
            }
        }
    }

    /// Reads a property's name into `name`, upper-cased and without its group (`item1.`).
    fn read_name(&mut self) -> io::Result<Head> {
        self.name.clear();
        let mut started = false;
        loop {
            let byte = match self.source.next()? {
                Step::Byte(byte) => byte,
                Step::Eof if !started => return Ok(Head::Eof),
                Step::LineEnd if !started => return Ok(Head::Blank),
                Step::LineEnd | Step::Eof => return Ok(Head::Unnamed { ended: true }),
            };
            match byte {
                // White space, or a BOM: the file's, or one of files concatenated into it.
                b' ' | b'\t' | 0xEF | 0xBB | 0xBF if !started => {}
                b'.' if started => self.name.clear(),
                b';' | b':' if started => return Ok(Head::Named(byte)),
                b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => {
                    started = true;
                    if self.name.len() <= MAX_NAME_BYTES {
                        self.name.push(b.to_ascii_uppercase());
                    }
                }
                _ => return Ok(Head::Unnamed { ended: false }),
            }
        }
    }

    /// Reads the parameters up to the `:` that starts the value; None when the line ends first.
    fn read_params(&mut self) -> io::Result<Option<Params>> {
        self.params.clear();
        let mut quoted = false;
        loop {
            match self.source.next()? {
                Step::Byte(b':') if !quoted => return Ok(Some(Params::parse(&self.params))),
                Step::Byte(byte) => {
                    quoted ^= byte == b'"';
                    if self.params.len() < MAX_PARAMS_BYTES {
                        self.params.push(byte);
                    }
                }
                Step::LineEnd | Step::Eof => return Ok(None),
            }
        }
    }

    /// Reads a value to the end of its content line (quoted-printable: a line ending in `=`
    /// goes on at the next). With `cap`, holds it in `value` and tells whether it is at most
    /// `cap` bytes; past that, and without `cap`, the value streams past, held nowhere.
    fn read_value(&mut self, cap: Option<usize>, quoted_printable: bool) -> io::Result<bool> {
        self.value.clear();
        let mut holding = cap.is_some();
        let cap = cap.unwrap_or(0);
        let mut last = None;
        loop {
            if !holding && let Some(byte) = self.source.skip_run()? {
                last = Some(byte);
            }
            match self.source.next()? {
                Step::Byte(byte) => {
                    last = Some(byte);
                    if holding && self.value.len() < cap {
                        self.value.push(byte);
                    } else if holding {
                        holding = false;
                        self.value = Vec::new();
                    }
                }
                Step::LineEnd if quoted_printable && last == Some(b'=') => {
                    last = None;
                    if holding {
                        self.value.pop();
                    }
                }
                Step::LineEnd | Step::Eof => return Ok(holding),
            }
        }
    }

    /// Keeps the value just read for `field`, counting it against the card's bytes.
    fn keep(&mut self, field: Field, params: &Params) {
        let raw = std::mem::take(&mut self.value);
        let mut value = if params.quoted_printable {
            quoted_printable(&raw, params.charset)
        } else {
            raw
        };
        let card = &mut self.card;
        if card.kept + value.len() > self.max_card_bytes {
            card.make_overlong();
            return;
        }
        card.kept += value.len();
        if field == Field::Phone {
            value = tel_number(value);
        }
        if value.trim_ascii().is_empty() {
            return;
        }
        let first = |slot: &mut Option<Vec<u8>>, value| {
            slot.get_or_insert(value);
        };
        match field {
            Field::FullName => first(&mut card.full_name, value),
            Field::Name => first(&mut card.name, value),
            Field::Phone => card.phone.offer(value, params.cell),
            Field::Email => card.email.offer(value, params.pref),
            Field::Title => first(&mut card.title, value),
            Field::Address => card.address.offer(value, params.pref),
            Field::Birthday => first(
                &mut card.birthday,
                birthday(&value, params.omit_year.as_deref()),
            ),
            Field::Categories => card.categories.push(value),
            Field::Uid => first(&mut card.uid, value),
        }
    }
}

/// What a content line was, as far as cards go.
enum Line {
    Eof,
    Blank,
    Begin,
    End,
    /// A property, or a line that is none.
    Other,
}

/// The start of a content line.
enum Head {
    Eof,
    Blank,
    /// A name, then the `;` of parameters or the `:` of the value.
    Named(u8),
    /// Not a property line; `ended`: the line is read to its end already.
    Unnamed {
        ended: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Property {
    Begin,
    End,
    Version,
    Kept(Field),
    Other,
}

/// The properties that fill columns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    FullName,
    Name,
    Phone,
    Email,
    Title,
    Address,
    Birthday,
    Categories,
    Uid,
}

fn property(name: &[u8]) -> Property {
    match name {
        b"BEGIN" => Property::Begin,
        b"END" => Property::End,
        b"VERSION" => Property::Version,
        b"FN" => Property::Kept(Field::FullName),
        b"N" => Property::Kept(Field::Name),
        b"TEL" => Property::Kept(Field::Phone),
        b"EMAIL" => Property::Kept(Field::Email),
        b"TITLE" => Property::Kept(Field::Title),
        b"ADR" => Property::Kept(Field::Address),
        b"BDAY" => Property::Kept(Field::Birthday),
        b"CATEGORIES" => Property::Kept(Field::Categories),
        b"UID" => Property::Kept(Field::Uid),
        _ => Property::Other,
    }
}

/// What the parameters of a property say, as far as its value goes.
#[derive(Default)]
struct Params {
    quoted_printable: bool,
    base64: bool,
    charset: Option<&'static Encoding>,
    /// TYPE includes CELL.
    cell: bool,
    /// TYPE includes PREF, or PREF=1.
    pref: bool,
    /// Apple's `X-APPLE-OMIT-YEAR`: the year written in a BDAY that has none.
    omit_year: Option<Vec<u8>>,
}

impl Params {
    fn parse(raw: &[u8]) -> Self {
        let mut params = Params::default();
        for param in split_outside_quotes(raw, b';') {
            let (name, values) = match param.iter().position(|&b| b == b'=') {
                Some(at) => (param[..at].trim_ascii(), &param[at + 1..]),
                // 2.1 names a type or an encoding alone: `TEL;CELL`, `N;QUOTED-PRINTABLE`.
                None => (&b"TYPE"[..], param),
            };
            let named = |n: &[u8]| name.eq_ignore_ascii_case(n);
            for value in values.split(|&b| b == b',') {
                let value = unquote(value.trim_ascii());
                let is = |v: &[u8]| value.eq_ignore_ascii_case(v);
                if named(b"TYPE") || named(b"ENCODING") {
                    params.cell |= is(b"CELL");
                    params.pref |= is(b"PREF");
                    params.quoted_printable |= is(b"QUOTED-PRINTABLE");
                    params.base64 |= is(b"BASE64") || is(b"B");
                } else if named(b"PREF") {
                    params.pref |= value == b"1";
                } else if named(b"CHARSET") {
                    params.charset = Encoding::for_label(value);
                } else if named(b"X-APPLE-OMIT-YEAR") {
                    params.omit_year = Some(value.to_vec());
                }
            }
        }
        params
    }
}

fn split_outside_quotes(raw: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    raw.split(move |&b| {
        quoted ^= b == b'"';
        b == separator && !quoted
    })
}

fn unquote(value: &[u8]) -> &[u8] {
    let value = value.strip_prefix(b"\"").unwrap_or(value);
    value.strip_suffix(b"\"").unwrap_or(value)
}

/// The first value of a property, and the first one marked preferred (CELL, for TEL).
#[derive(Default)]
struct Preferred {
    first: Option<Vec<u8>>,
    preferred: Option<Vec<u8>>,
}

impl Preferred {
    fn offer(&mut self, value: Vec<u8>, preferred: bool) {
        if preferred && self.preferred.is_none() {
            self.preferred = Some(value);
        } else if self.first.is_none() {
            self.first = Some(value);
        }
    }

    fn get(&self) -> Option<&[u8]> {
        self.preferred.as_deref().or(self.first.as_deref())
    }
}

/// The kept values of the card being read, as written (escapes are read at the end, once
/// the card's VERSION is known).
#[derive(Default)]
struct Card {
    /// The card says `VERSION:2.1`, where `\;` is the only escape.
    v21: bool,
    full_name: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    phone: Preferred,
    email: Preferred,
    title: Option<Vec<u8>>,
    address: Preferred,
    birthday: Option<Vec<u8>>,
    categories: Vec<Vec<u8>>,
    uid: Option<Vec<u8>>,
    /// The bytes of the kept properties so far, each one counted, used or not.
    kept: usize,
    /// Over the limit: nothing more is kept, and the record is `OVERLONG_RECORD`.
    overlong: bool,
}

impl Card {
    fn make_overlong(&mut self) {
        *self = Card {
            overlong: true,
            ..Card::default()
        };
    }

    fn write(&self, record: &mut csv::ByteRecord) {
        if self.overlong {
            record.push_field(OVERLONG_RECORD);
            return;
        }
        let modern = !self.v21;
        let text = |value: &[u8]| unescape(value, modern).trim_ascii().to_vec();
        let whole = |value: Option<&[u8]>| value.map(text).unwrap_or_default();
        let part = |value: Option<&[u8]>, at: usize| {
            value
                .and_then(|v| split_unescaped(v, b';').nth(at))
                .map(text)
                .unwrap_or_default()
        };
        let name = self.name.as_deref();
        let address = self.address.get();
        let (street, extended) = (part(address, 2), part(address, 1));
        let street = match (street.is_empty(), extended.is_empty()) {
            (_, true) => street,
            (true, false) => extended,
            (false, false) => [&street[..], b", ", &extended[..]].concat(),
        };
        let cells: [Vec<u8>; COLUMNS.len()] = [
            whole(self.full_name.as_deref()),
            part(name, 0),
            part(name, 1),
            whole(self.phone.get()),
            whole(self.email.get()),
            whole(self.title.as_deref()),
            street,
            part(address, 3),
            part(address, 4),
            part(address, 5),
            self.birthday.clone().unwrap_or_default(),
            tags(&self.categories, modern),
            whole(self.uid.as_deref()),
        ];
        for cell in &cells {
            record.push_field(cell);
        }
    }
}

/// Splits at each `separator` not escaped by a backslash.
fn split_unescaped(value: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut escaped = false;
    value.split(move |&b| {
        let split = b == separator && !escaped;
        escaped = b == b'\\' && !escaped;
        split
    })
}

/// Reads the escapes of a value: in 3.0 and 4.0 (`modern`) `\,` `\;` `\\` and `\n` or `\N`
/// (a line break); in 2.1 only `\;`. Any other backslash stays as written.
fn unescape(value: &[u8], modern: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while let Some(&byte) = value.get(at) {
        let escaped = match (byte, value.get(at + 1)) {
            (b'\\', Some(b';')) => Some(b';'),
            (b'\\', Some(b',')) if modern => Some(b','),
            (b'\\', Some(b'\\')) if modern => Some(b'\\'),
            (b'\\', Some(b'n' | b'N')) if modern => Some(b'\n'),
            _ => None,
        };
        match escaped {
            Some(unescaped) => {
                out.push(unescaped);
                at += 2;
            }
            None => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// The values of CATEGORIES properties as one cell of tags separated by `,`: each trimmed,
/// the empty ones dropped, and a comma or line break inside one made a space (the CSV path
/// splits the cell at commas).
fn tags(categories: &[Vec<u8>], modern: bool) -> Vec<u8> {
    let mut cell = Vec::new();
    for value in categories {
        for tag in split_unescaped(value, b',') {
            let mut tag = unescape(tag, modern);
            for byte in &mut tag {
                if matches!(*byte, b',' | b'\n' | b'\r' | b'\t') {
                    *byte = b' ';
                }
            }
            let tag = tag.trim_ascii();
            if !tag.is_empty() {
                if !cell.is_empty() {
                    cell.push(b',');
                }
                cell.extend_from_slice(tag);
            }
        }
    }
    cell
}

/// A TEL's number: a `tel:` URI (4.0's `VALUE=uri`) without its scheme and parameters.
fn tel_number(value: Vec<u8>) -> Vec<u8> {
    let trimmed = value.trim_ascii();
    match trimmed.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"tel:") => trimmed[4..]
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .to_vec(),
        _ => value,
    }
}

/// A BDAY as `YYYY-MM-DD`, or `--MM-DD` without a year, when it is a date or a date-time in
/// one of vCard's forms (Apple writes a year it omits as the `X-APPLE-OMIT-YEAR` one); any
/// other value as written, for the validator to report.
fn birthday(value: &[u8], omit_year: Option<&[u8]>) -> Vec<u8> {
    let value = value.trim_ascii();
    let date = match value.iter().position(|&b| b == b'T') {
        Some(at) => &value[..at],
        None => value,
    };
    let no_year = &b""[..];
    let parts = match date.len() {
        10 if date[4] == b'-' && date[7] == b'-' => Some((&date[..4], &date[5..7], &date[8..])),
        8 if date[0] != b'-' => Some((&date[..4], &date[4..6], &date[6..])),
        6 if date.starts_with(b"--") => Some((no_year, &date[2..4], &date[4..])),
        7 if date.starts_with(b"--") && date[4] == b'-' => Some((no_year, &date[2..4], &date[5..])),
        _ => None,
    };
    let Some((year, month, day)) = parts else {
        return value.to_vec();
    };
    if ![year, month, day]
        .iter()
        .all(|p| p.iter().all(u8::is_ascii_digit))
    {
        return value.to_vec();
    }
    let year = if omit_year == Some(year) {
        no_year
    } else {
        year
    };
    let mut out = Vec::with_capacity(10);
    if year.is_empty() {
        out.extend_from_slice(b"-");
    } else {
        out.extend_from_slice(year);
    }
    for part in [month, day] {
        out.push(b'-');
        out.extend_from_slice(part);
    }
    out
}

/// Quoted-printable text decoded (`=XX`; any other `=` as written), its bytes read in
/// `charset` (UTF-8 when it names none), lossily.
fn quoted_printable(raw: &[u8], charset: Option<&'static Encoding>) -> Vec<u8> {
    let hex = |at: usize| raw.get(at).and_then(|&b| char::from(b).to_digit(16));
    let mut bytes = Vec::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&byte) = raw.get(at) {
        match (byte, hex(at + 1), hex(at + 2)) {
            (b'=', Some(high), Some(low)) => {
                bytes.push((high * 16 + low) as u8);
                at += 3;
            }
            _ => {
                bytes.push(byte);
                at += 1;
            }
        }
    }
    let (text, _) = charset.unwrap_or(UTF_8).decode_without_bom_handling(&bytes);
    text.into_owned().into_bytes()
}

/// One step through the content lines of a file.
enum Step {
    Byte(u8),
    LineEnd,
    Eof,
}

/// A file as content lines: a line ends at CRLF, LF or a lone CR, and a line end followed by
/// a space or a tab is a fold (RFC 6350 §3.2), removed with that one character.
struct Unfolded<R> {
    inner: R,
    /// The last byte taken was a CR: an LF right after it belongs to the same line end.
    after_cr: bool,
    /// The physical line being read, from 1.
    line: usize,
}

impl<R: BufRead> Unfolded<R> {
    fn next(&mut self) -> io::Result<Step> {
        loop {
            match self.take()? {
                None => return Ok(Step::Eof),
                Some(b'\n') => {
                    self.line += 1;
                    if !matches!(self.peek()?, Some(b' ' | b'\t')) {
                        return Ok(Step::LineEnd);
                    }
                    self.take()?;
                }
                Some(byte) => return Ok(Step::Byte(byte)),
            }
        }
    }

    /// Takes the bytes up to the next line end, a buffer at a time and holding none; the last
    /// one taken, if any.
    fn skip_run(&mut self) -> io::Result<Option<u8>> {
        let mut last = None;
        while self.peek()?.is_some() {
            let chunk = self.inner.fill_buf()?;
            let run = chunk
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(chunk.len());
            if run == 0 {
                break;
            }
            last = Some(chunk[run - 1]);
            let line_end = run < chunk.len();
            self.inner.consume(run);
            self.after_cr = false;
            if line_end {
                break;
            }
        }
        Ok(last)
    }

    /// The next byte, a line end as `\n`.
    fn take(&mut self) -> io::Result<Option<u8>> {
        let byte = self.peek()?;
        if byte.is_some() {
            self.after_cr = self.inner.fill_buf()?.first() == Some(&b'\r');
            self.inner.consume(1);
        }
        Ok(byte)
    }

    /// The next byte without taking it, a line end as `\n` (the LF of a CRLF is passed over).
    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            let Some(&byte) = self.inner.fill_buf()?.first() else {
                return Ok(None);
            };
            if self.after_cr && byte == b'\n' {
                self.inner.consume(1);
                self.after_cr = false;
                continue;
            }
            return Ok(Some(if byte == b'\r' { b'\n' } else { byte }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::records::MAX_RECORD_BYTES;

    /// Content lines joined by CRLF, as exporters write them.
    fn crlf(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\r\n")).collect()
    }

    /// Every record of `input`, read through a tiny buffer so lines cross chunk boundaries.
    fn records(input: &str, max: usize) -> Result<Vec<Vec<String>>, CardsError> {
        let mut cards = Cards::new(io::BufReader::with_capacity(5, input.as_bytes()), max);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while cards.read_record(&mut record)? {
            out.push(
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The non-empty cells of a record, by column.
    fn cells(record: &[String]) -> Vec<(&'static str, &str)> {
        assert_eq!(record.len(), COLUMNS.len(), "{record:?}");
        COLUMNS
            .iter()
            .zip(record)
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(column, cell)| (*column, cell.as_str()))
            .collect()
    }

    /// The one card of `input`, as its non-empty cells.
    fn card(input: &str) -> Vec<(&'static str, String)> {
        let records = records(input, MAX_RECORD_BYTES).unwrap();
        assert_eq!(records.len(), 1, "{records:?}");
        cells(&records[0])
            .into_iter()
            .map(|(column, cell)| (column, cell.to_owned()))
            .collect()
    }

    /// The cell of `column` in the one card of `input`.
    fn cell(input: &str, column: &str) -> String {
        card(input)
            .into_iter()
            .find(|(c, _)| *c == column)
            .map(|(_, cell)| cell)
            .unwrap_or_default()
    }

    fn overlong() -> Vec<String> {
        vec![String::from_utf8_lossy(OVERLONG_RECORD).into_owned()]
    }

    #[test]
    fn a_2_1_card_decodes_quoted_printable_in_its_charset_and_soft_line_breaks() {
        let input = crlf(&[
            "BEGIN:VCARD",
            "VERSION:2.1",
            "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;",
            "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen =",
            "M=C3=BCller",
            "TEL;HOME;VOICE:+49 30 1234567",
            "TEL;CELL:+49 170 1234567",
            "EMAIL;INTERNET:juergen@example.de",
            "ADR;HOME;CHARSET=ISO-8859-1;QUOTED-PRINTABLE:;;Hauptstra=DFe 5;M=FCnchen;Bayern;80331;Deutschland",
            "NOTE;ENCODING=QUOTED-PRINTABLE:first line=0D=0A=",
            "TEL;CELL:+1 555 0100 is inside the note=",
            "END:VCARD is inside the note too",
            "TITLE:Ingenieur\\; Leiter",
            "BDAY:19900517",
            "END:VCARD",
        ]);
        assert_eq!(
            card(&input),
            [
                ("fullName", "Jürgen Müller".into()),
                ("lastName", "Müller".into()),
                ("firstName", "Jürgen".into()),
                ("phone", "+49 170 1234567".into()),
                ("email", "juergen@example.de".into()),
                ("occupation", "Ingenieur; Leiter".into()),
                ("address", "Hauptstraße 5".into()),
                ("city", "München".into()),
                ("state", "Bayern".into()),
                ("zip", "80331".into()),
                ("birthday", "1990-05-17".into()),
            ]
        );
    }

    #[test]
    fn a_3_0_card_as_apple_exports_it_reads_groups_and_type_lists() {
        let input = crlf(&[
            "BEGIN:VCARD",
            "VERSION:3.0",
            "PRODID:-//Apple Inc.//iPhone OS 17.4//EN",
            "N:Appleseed;John;;;",
            "FN:John Appleseed",
            "ORG:Apple Inc.;",
            "TITLE:Engineer\\, Platform",
            "EMAIL;type=INTERNET;type=WORK:john.work@example.com",
            "item1.EMAIL;type=INTERNET;type=pref:john@example.com",
            "item1.X-ABLabel:_$!<Other>!$_",
            "TEL;type=MAIN;type=VOICE;type=pref:+1 408 555 0100",
            "item2.TEL;type=IPHONE;type=CELL;type=VOICE:+1 408 555 0101",
            "item3.ADR;type=HOME;type=pref:;Building 2;1 Infinite Loop;Cupertino;CA;95014;United States",
            "item3.X-ABADR:us",
            "BDAY;X-APPLE-OMIT-YEAR=1604:1604-05-17",
            "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdC",
            " IFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAA",
            "END:VCARD",
        ]);
        assert_eq!(
            card(&input),
            [
                ("fullName", "John Appleseed".into()),
                ("lastName", "Appleseed".into()),
                ("firstName", "John".into()),
                ("phone", "+1 408 555 0101".into()),
                ("email", "john@example.com".into()),
                ("occupation", "Engineer, Platform".into()),
                ("address", "1 Infinite Loop, Building 2".into()),
                ("city", "Cupertino".into()),
                ("state", "CA".into()),
                ("zip", "95014".into()),
                ("birthday", "--05-17".into()),
            ]
        );
    }

    #[test]
    fn a_3_0_card_as_google_exports_it_keeps_its_tags() {
        let input = crlf(&[
            "BEGIN:VCARD",
            "VERSION:3.0",
            "FN:Jane Doe",
            "N:Doe;Jane;;;",
            "EMAIL;TYPE=INTERNET;TYPE=HOME:jane@example.com",
            "TEL;TYPE=CELL:+33 6 12 34 56 78",
            "ADR;TYPE=HOME:;;12 rue de la Paix;Paris;;75002;France",
            "BDAY:1985-02-03",
            "CATEGORIES:myContacts,starred",
            "item1.URL:http\\://example.com",
            "item1.X-ABLabel:",
            "NOTE:Met at the conference\\nin Lyon",
            "END:VCARD",
        ]);
        assert_eq!(
            card(&input),
            [
                ("fullName", "Jane Doe".into()),
                ("lastName", "Doe".into()),
                ("firstName", "Jane".into()),
                ("phone", "+33 6 12 34 56 78".into()),
                ("email", "jane@example.com".into()),
                ("address", "12 rue de la Paix".into()),
                ("city", "Paris".into()),
                ("zip", "75002".into()),
                ("birthday", "1985-02-03".into()),
                ("tags", "myContacts,starred".into()),
            ]
        );
    }

    #[test]
    fn a_4_0_card_reads_tel_uris_and_folded_lines() {
        let input = crlf(&[
            "BEGIN:VCARD",
            "VERSION:4.0",
            "FN:Simon Perr",
            " eault",
            "N:Perreault;Simon;;;ing. jr,M.Sc.",
            "BDAY:--0203",
            "GENDER:M",
            "LANG;PREF=1:fr",
            "TEL;VALUE=uri;TYPE=\"work,voice\";PREF=1:tel:+1-418-656-9254;ext=102",
            "TEL;VALUE=uri;TYPE=\"work,cell,voice,video,text\":tel:+1-418-262-6501",
            "EM",
            "\tAIL;TYPE=work:simon.perreault@",
            " viagenie.ca",
            "ADR;TYPE=work;LABEL=\"Suite D2-630\\n2875 Laurier\\nQuebec, QC G1V 2M2\":;Suite D2-630;2875 Laurier;",
            " Quebec;QC;G1V 2M2;Canada",
            "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1",
            "END:VCARD",
        ]);
        assert_eq!(
            card(&input),
            [
                ("fullName", "Simon Perreault".into()),
                ("lastName", "Perreault".into()),
                ("firstName", "Simon".into()),
                ("phone", "+1-418-262-6501".into()),
                ("email", "simon.perreault@viagenie.ca".into()),
                ("address", "2875 Laurier, Suite D2-630".into()),
                ("city", "Quebec".into()),
                ("state", "QC".into()),
                ("zip", "G1V 2M2".into()),
                ("birthday", "--02-03".into()),
                (
                    "uid",
                    "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1".into()
                ),
            ]
        );
        // A tel: URI's number, whatever its parameters.
        let first =
            "BEGIN:VCARD\nVERSION:4.0\nTEL;VALUE=uri:tel:+1-555-555-0100;ext=7\nEND:VCARD\n";
        assert_eq!(cell(first, "phone"), "+1-555-555-0100");
    }

    #[test]
    fn several_cards_become_records_in_order_with_empty_cells_for_what_they_lack() {
        // LF line ends, a lone CR, and CRLF in one file.
        let input = "BEGIN:VCARD\nVERSION:3.0\nFN:One\nEND:VCARD\n\
                     BEGIN:VCARD\rVERSION:3.0\rEMAIL:two@example.com\rEND:VCARD\r\
                     BEGIN:VCARD\r\nEND:VCARD\r\n";
        let records = records(input, MAX_RECORD_BYTES).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(cells(&records[0]), [("fullName", "One")]);
        assert_eq!(cells(&records[1]), [("email", "two@example.com")]);
        assert_eq!(records[2], vec![String::new(); COLUMNS.len()]);
    }

    #[test]
    fn a_card_without_end_ends_at_the_next_begin_or_the_end_of_the_file() {
        let input = "BEGIN:VCARD\nFN:Open\nBEGIN:VCARD\nFN:Next\nEND:VCARD\nBEGIN:VCARD\nFN:Last";
        let records = records(input, MAX_RECORD_BYTES).unwrap();
        let names: Vec<_> = records.iter().map(|r| cells(r)).collect();
        assert_eq!(
            names,
            [
                [("fullName", "Open")],
                [("fullName", "Next")],
                [("fullName", "Last")]
            ]
        );
    }

    #[test]
    fn the_first_cell_phone_wins_over_earlier_phones() {
        let cases = [
            (
                &["TEL;TYPE=HOME:1", "TEL;TYPE=CELL:2", "TEL;TYPE=CELL:3"][..],
                "2",
            ),
            (&["TEL;TYPE=work:1", "TEL;TYPE=cell,voice:2"], "2"),
            (&["TEL;TYPE=work:1", "TEL;TYPE=\"cell\":2"], "2"),
            (&["TEL;HOME:1", "TEL;CELL:2"], "2"),
            (&["TEL;type=VOICE;type=CELL:2", "TEL:1"], "2"),
            (&["TEL;TYPE=HOME:1", "TEL;TYPE=WORK:2"], "1"),
            (&["TEL;TYPE=CELL:", "TEL:1"], "1"),
            (&["item1.TEL:1", "item2.TEL;TYPE=CELL:2"], "2"),
        ];
        for (lines, phone) in cases {
            let input = format!("BEGIN:VCARD\n{}\nEND:VCARD\n", lines.join("\n"));
            assert_eq!(cell(&input, "phone"), phone, "{lines:?}");
        }
    }

    #[test]
    fn the_preferred_email_and_address_win_else_the_first() {
        let cases = [
            (
                &["EMAIL:a@x", "EMAIL;TYPE=INTERNET,PREF:b@x"][..],
                "email",
                "b@x",
            ),
            (&["EMAIL:a@x", "EMAIL;PREF=1:b@x"], "email", "b@x"),
            (&["EMAIL:a@x", "EMAIL;PREF;INTERNET:b@x"], "email", "b@x"),
            (&["EMAIL:a@x", "EMAIL;PREF=2:b@x"], "email", "a@x"),
            (
                &["ADR:;;1 A St;X;;;", "ADR;TYPE=pref:;;2 B St;Y;;;"],
                "address",
                "2 B St",
            ),
            (
                &["ADR;TYPE=WORK:;;1 A St;X;;;", "ADR;TYPE=HOME:;;2 B St;Y;;;"],
                "city",
                "X",
            ),
        ];
        for (lines, column, expected) in cases {
            let input = format!("BEGIN:VCARD\n{}\nEND:VCARD\n", lines.join("\n"));
            assert_eq!(cell(&input, column), expected, "{lines:?}");
        }
    }

    #[test]
    fn escapes_are_read_as_the_card_version_writes_them() {
        let cases = [
            ("3.0", "FN:Smith\\, John", "fullName", "Smith, John"),
            ("3.0", "FN:a\\\\b", "fullName", "a\\b"),
            (
                "4.0",
                "TITLE:Chief\\nExecutive",
                "occupation",
                "Chief\nExecutive",
            ),
            (
                "4.0",
                "TITLE:Chief\\NExecutive",
                "occupation",
                "Chief\nExecutive",
            ),
            ("3.0", "N:O\\;Brien;Pat", "lastName", "O;Brien"),
            ("3.0", "N:O\\;Brien;Pat", "firstName", "Pat"),
            (
                "3.0",
                "ADR:;;1 Main St\\, Apt 2;Town;;;",
                "address",
                "1 Main St, Apt 2",
            ),
            ("4.0", "FN:back\\slash", "fullName", "back\\slash"),
            ("2.1", "N:O\\;Brien;Pat", "lastName", "O;Brien"),
            ("2.1", "FN:Smith\\, John", "fullName", "Smith\\, John"),
        ];
        for (version, line, column, expected) in cases {
            // VERSION after the property: escapes are read once the card is whole.
            let input = format!("BEGIN:VCARD\n{line}\nVERSION:{version}\nEND:VCARD\n");
            assert_eq!(cell(&input, column), expected, "{version} {line}");
        }
    }

    #[test]
    fn birthdays_become_dates_or_are_passed_on_as_written() {
        let cases = [
            ("1990-05-17", None, "1990-05-17"),
            ("19900517", None, "1990-05-17"),
            ("1990-05-17T00:00:00Z", None, "1990-05-17"),
            ("19900517T000000", None, "1990-05-17"),
            ("--0517", None, "--05-17"),
            ("--05-17", None, "--05-17"),
            ("1604-05-17", Some("1604"), "--05-17"),
            ("1990-05-17", Some("1604"), "1990-05-17"),
            (" 1990-05-17 ", None, "1990-05-17"),
            ("17/05/1990", None, "17/05/1990"),
            ("1990-05", None, "1990-05"),
            ("T102200Z", None, "T102200Z"),
            ("circa 1800", None, "circa 1800"),
            ("1990-AB-17", None, "1990-AB-17"),
        ];
        for (value, omit_year, expected) in cases {
            let normal = birthday(value.as_bytes(), omit_year.map(str::as_bytes));
            assert_eq!(String::from_utf8_lossy(&normal), expected, "{value}");
        }
    }

    #[test]
    fn categories_become_one_cell_of_comma_separated_tags() {
        let cases = [
            (&["CATEGORIES:Friends,Work"][..], "Friends,Work"),
            (&["CATEGORIES: Friends , ,Work,"], "Friends,Work"),
            (&["CATEGORIES:Friends", "CATEGORIES:Work"], "Friends,Work"),
            (
                &["CATEGORIES:Smith\\, Jones,Clients"],
                "Smith  Jones,Clients",
            ),
            (&["CATEGORIES:a\\nb"], "a b"),
            (&["CATEGORIES:,"], ""),
        ];
        for (lines, tags) in cases {
            let input = format!(
                "BEGIN:VCARD\nVERSION:3.0\n{}\nEND:VCARD\n",
                lines.join("\n")
            );
            assert_eq!(cell(&input, "tags"), tags, "{lines:?}");
        }
    }

    /// What a reader holds besides its input's buffer.
    fn held<R>(cards: &Cards<R>) -> usize {
        cards.name.capacity() + cards.params.capacity() + cards.value.capacity()
    }

    #[test]
    fn a_5_mb_photo_streams_past_and_the_next_card_is_read() {
        let photo = "A".repeat(5 * 1024 * 1024);
        let input = format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:With Photo\r\nPHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\n \
             {photo}\r\nTEL:+1 555 0100\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:Next\r\nEND:VCARD\r\n"
        );
        let reader = io::BufReader::with_capacity(8 * 1024, input.as_bytes());
        let mut cards = Cards::new(reader, MAX_RECORD_BYTES);
        let mut record = csv::ByteRecord::new();
        assert!(cards.read_record(&mut record).unwrap());
        assert_eq!(&record[0], b"With Photo");
        assert_eq!(&record[3], b"+1 555 0100");
        assert!(held(&cards) < 4096, "held {} bytes", held(&cards));
        assert!(cards.read_record(&mut record).unwrap());
        assert_eq!(&record[0], b"Next");
        assert!(!cards.read_record(&mut record).unwrap());
    }

    #[test]
    fn a_2_1_base64_photo_over_several_lines_is_skipped() {
        let input = crlf(&[
            "BEGIN:VCARD",
            "VERSION:2.1",
            "FN:Old Phone",
            "PHOTO;TYPE=JPEG;ENCODING=BASE64:",
            "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYICAoJ",
            "CQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD=",
            "",
            "TEL;CELL:+44 7700 900123",
            "END:VCARD",
        ]);
        assert_eq!(
            card(&input),
            [
                ("fullName", "Old Phone".into()),
                ("phone", "+44 7700 900123".into())
            ]
        );
    }

    #[test]
    fn an_overlong_card_becomes_the_overlong_record_and_reading_goes_on() {
        let many_phones = "TEL:+1 555 0100\n".repeat(20);
        let long_qp = format!("FN;ENCODING=QUOTED-PRINTABLE:{}\n", "=41".repeat(101));
        let long_note = format!("NOTE:{}\n", "x".repeat(1000));
        let cases = [
            (format!("FN:{}\n", "x".repeat(200)), true),
            (
                format!("FN:{}\n \n {}\n", "x".repeat(60), "y".repeat(60)),
                true,
            ),
            (many_phones, true),
            (long_qp, true),
            // Short enough as written, but 101 bytes once decoded.
            (
                format!("FN;QUOTED-PRINTABLE:{}AAAAAA\n", "=41".repeat(95)),
                true,
            ),
            // 120 bytes as written, but 40 once decoded.
            (
                format!("FN;ENCODING=QUOTED-PRINTABLE:{}\n", "=41".repeat(40)),
                false,
            ),
            (long_note, false),
        ];
        for (lines, is_overlong) in cases {
            let input = format!("BEGIN:VCARD\n{lines}END:VCARD\nBEGIN:VCARD\nFN:Next\nEND:VCARD\n");
            let records = records(&input, 100).unwrap();
            assert_eq!(records.len(), 2, "{lines}");
            assert_eq!(records[0] == overlong(), is_overlong, "{lines}");
            assert_eq!(cells(&records[1]), [("fullName", "Next")]);
        }
        // Still at the end of the file, without END.
        let input = format!("BEGIN:VCARD\nFN:{}", "x".repeat(200));
        assert_eq!(records(&input, 100).unwrap(), [overlong()]);
    }

    #[test]
    fn a_file_that_is_not_vcard_is_refused_with_its_line() {
        let cases = [
            ("Name,Phone\nJohn,555\n", 1),
            ("\n\r\nBEGIN:VCALENDAR\nEND:VCALENDAR\n", 3),
            ("VERSION:3.0\nBEGIN:VCARD\nEND:VCARD\n", 1),
            ("\u{feff}<?xml version=\"1.0\"?>\n", 1),
            ("\n\n\nEND:VCARD\n", 4),
            ("BEGIN:VCARDS\n", 1),
        ];
        for (input, line) in cases {
            match records(input, MAX_RECORD_BYTES) {
                Err(CardsError::NotVcard(message)) => assert_eq!(
                    message,
                    format!("line {line} is not BEGIN:VCARD: a vCard file starts with BEGIN:VCARD"),
                    "{input:?}"
                ),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        // A file with nothing in it is no card, and no error.
        assert_eq!(records("\r\n\n", MAX_RECORD_BYTES).unwrap().len(), 0);
    }

    #[test]
    fn a_bom_is_skipped_and_what_lies_between_cards_is_ignored() {
        let input = "\u{feff}BEGIN:VCARD\nFN:One\nEND:VCARD\n\nsome trailer\nEND:VCARD\n\
                     X-NOT-IN-A-CARD:1\n\u{feff}BEGIN:VCARD\nFN:Two\nEND:VCARD\n";
        let records = records(input, MAX_RECORD_BYTES).unwrap();
        let names: Vec<_> = records.iter().map(|r| cells(r)).collect();
        assert_eq!(names, [[("fullName", "One")], [("fullName", "Two")]]);
    }

    #[test]
    fn vcard_is_recognised_by_content_type_or_file_name() {
        let cases = [
            (Some("text/vcard"), None, true),
            (Some("Text/X-VCard; charset=utf-8"), None, true),
            (Some("text/directory;profile=vCard"), None, true),
            (Some("text/csv"), Some("contacts.VCF"), true),
            (None, Some("export.vcard"), true),
            (Some("text/csv"), Some("contacts.csv"), false),
            (None, Some("vcf"), false),
            (None, None, false),
        ];
        for (content_type, file_name, expected) in cases {
            assert_eq!(
                is_vcard(content_type, file_name),
                expected,
                "{content_type:?} {file_name:?}"
            );
        }
    }
}
