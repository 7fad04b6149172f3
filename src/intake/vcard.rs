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
#[path = "vcard_tests.rs"]
mod tests;
