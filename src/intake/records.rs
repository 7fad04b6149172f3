//! A bound on one CSV record, before the CSV parser sees it. The `csv` crate holds a whole
//! record in memory, however long: a 300 MB field took 1.8 GB. `RecordLimit` reads the file
//! ahead of the parser, finds where each record ends (with the parser's own quoting rules)
//! and passes on a record only once it is whole and at most `MAX_RECORD_BYTES` long. A longer
//! record is dropped as it streams and replaced by `OVERLONG_RECORD`, a one-field record that
//! the intake turns into a row failing `invalid_row`; the file goes on at the next record.
//! So at most one record's worth of bytes is held here, whatever the file.

use std::io::{self, BufRead, Read};

/// The longest CSV record (a line, or several when a quoted field holds line breaks).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The one field of the record that stands for a record over `MAX_RECORD_BYTES`.
pub const OVERLONG_RECORD: &[u8] = b"\0contact-import: record over the size limit\0";

/// Where the scanner is within a record, as RFC 4180 (and the `csv` crate) read quotes: a
/// quote opens quoting only at the start of a field; inside, `""` is a quote and a lone `"`
/// ends the quoting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the end of the quoting, or the first of `""`.
    QuoteInQuoted,
}

/// Reads `inner` record by record, replacing every record over `max` bytes by
/// `OVERLONG_RECORD`.
pub struct RecordLimit<R> {
    inner: R,
    delimiter: u8,
    max: usize,
    state: State,
    /// The record being read, not yet passed on.
    record: Vec<u8>,
    /// The current record is over the limit: its bytes are being dropped.
    skipping: bool,
    /// Whole records ready to be read, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    done: bool,
}

impl<R: BufRead> RecordLimit<R> {
    /// Records of at most `max` bytes, with fields separated by `delimiter`.
    pub fn new(inner: R, delimiter: u8, max: usize) -> Self {
        Self {
            inner,
            delimiter,
            max,
            state: State::FieldStart,
            record: Vec::new(),
            skipping: false,
            ready: Vec::new(),
            ready_at: 0,
            done: false,
        }
    }

    /// True when `byte` ends the record: a line feed or a carriage return outside quotes (the
    /// csv crate ends a record at either, so a file with old Mac line ends is many records).
    fn step(&mut self, byte: u8) -> bool {
        self.state = match (self.state, byte) {
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::FieldStart, b'"') => State::Quoted,
            (_, b'\n' | b'\r') => {
                self.state = State::FieldStart;
                return true;
            }
            (_, b) if b == self.delimiter => State::FieldStart,
            _ => State::Unquoted,
        };
        false
    }

    /// A record is whole (`end`: with its line feed): passed on, or its stand-in.
    fn finish_record(&mut self, end: bool) {
        if self.skipping {
            self.ready.extend_from_slice(OVERLONG_RECORD);
            if end {
                self.ready.push(b'\n');
            }
            self.skipping = false;
        } else {
            self.ready.append(&mut self.record);
        }
        self.record.clear();
    }

    /// Scans the next chunk of `inner` into `ready`; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        let chunk = self.inner.fill_buf()?;
        if chunk.is_empty() {
            if !self.record.is_empty() || self.skipping {
                self.finish_record(false);
            }
            return Ok(false);
        }
        let chunk = chunk.to_vec();
        let n = chunk.len();
        for byte in chunk {
            let end = self.step(byte);
            if !self.skipping {
                self.record.push(byte);
                if self.record.len() > self.max {
                    self.skipping = true;
                    self.record = Vec::new();
                }
            }
            if end {
                self.finish_record(true);
            }
        }
        self.inner.consume(n);
        Ok(true)
    }
}

impl<R: BufRead> Read for RecordLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.ready_at == self.ready.len() {
            self.ready.clear();
            self.ready_at = 0;
            if self.done {
                return Ok(0);
            }
            if !self.fill()? {
                self.done = true;
            }
        }
        let n = buf.len().min(self.ready.len() - self.ready_at);
        buf[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
        self.ready_at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(input: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        // A small buffer, so records cross chunk boundaries.
        let reader = io::BufReader::with_capacity(3, input);
        RecordLimit::new(reader, b',', max)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn records_within_the_limit_pass_unchanged() {
        let input = b"a,b\r\n\"x\ny\",\"he said \"\"hi\"\"\"\n1,2";
        assert_eq!(through(input, 100), input);
        assert_eq!(through(b"", 100), b"");
    }

    #[test]
    fn a_record_over_the_limit_is_replaced_and_the_next_one_is_read() {
        let long = format!("1,{}\n", "x".repeat(50));
        let input = format!("a,b\n{long}2,\"quoted\nline\"\n{long}");
        let out = through(input.as_bytes(), 20);
        let mut expected = b"a,b\n".to_vec();
        expected.extend_from_slice(OVERLONG_RECORD);
        expected.extend_from_slice(b"\n2,\"quoted\nline\"\n");
        expected.extend_from_slice(OVERLONG_RECORD);
        expected.push(b'\n');
        assert_eq!(out, expected);
    }

    #[test]
    fn line_breaks_inside_quotes_do_not_end_a_record_and_stray_quotes_do_not_open_one() {
        // A quoted field whose line breaks make the record long: all of it is one record.
        let quoted = format!("\"{}\"\n3\n", "line\n".repeat(10));
        let out = through(quoted.as_bytes(), 20);
        let mut expected = OVERLONG_RECORD.to_vec();
        expected.extend_from_slice(b"\n3\n");
        assert_eq!(out, expected);
        // A quote in the middle of an unquoted field is a character, as the csv crate reads it.
        let stray = b"5 \"inch\n6\n";
        assert_eq!(through(stray, 8), stray);
    }

    #[test]
    fn carriage_returns_end_records_as_line_feeds_do() {
        // Old Mac line ends: each line is a record of its own, not one long record.
        let input = format!("a\r{}\rb\r\nc", "y".repeat(30));
        let mut expected = b"a\r".to_vec();
        expected.extend_from_slice(OVERLONG_RECORD);
        expected.extend_from_slice(b"\nb\r\nc");
        assert_eq!(through(input.as_bytes(), 10), expected);
    }

    #[test]
    fn a_file_ending_inside_an_overlong_record_ends_with_its_stand_in() {
        let input = format!("a\n{}", "y".repeat(100));
        let mut expected = b"a\n".to_vec();
        expected.extend_from_slice(OVERLONG_RECORD);
        assert_eq!(through(input.as_bytes(), 10), expected);
    }
}
