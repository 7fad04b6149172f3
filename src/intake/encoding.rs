//! The character encoding of a CSV file: the `encoding` option (any WHATWG label), or, when it
//! is absent, detected — a byte-order mark, else, at the first byte that is not ASCII, from the
//! 64 KiB that follow: valid UTF-8, else the legacy encoding the bytes point to (`chardetng`,
//! Firefox's detector; a French Excel "CSV" is Windows-1252). Until that byte every encoding
//! the detector can name reads the same, so the file streams on meanwhile: nothing waits for
//! 64 KiB that a slow sender has not sent. A UTF-8 file is read as it is, so a row whose bytes
//! are not UTF-8 still fails alone; any other encoding is transcoded to UTF-8 as the file
//! streams (`encoding_rs`, Firefox's decoders).

use encoding_rs::{Encoding, UTF_8};
use std::io::{self, BufRead, Read};

/// How much of a file detection looks at.
const SAMPLE_BYTES: usize = 64 * 1024;

/// Reads an `encoding` option: a WHATWG label (`windows-1252`, `latin1`, `utf-16le`, …).
pub fn parse_label(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes())
}

/// The encoding of a file whose first bytes are `sample`.
pub fn detect(sample: &[u8]) -> &'static Encoding {
    if let Some((encoding, _)) = Encoding::for_bom(sample) {
        return encoding;
    }
    // Valid UTF-8, allowing the sample to end inside a character; or UTF-8 with a few stray
    // bytes (more valid characters beyond ASCII than bytes that are not UTF-8): its bad rows
    // fail alone rather than every accent of the file turning to mojibake.
    match std::str::from_utf8(sample) {
        Ok(_) => return UTF_8,
        Err(e) if e.error_len().is_none() => return UTF_8,
        Err(_) => {
            let text = String::from_utf8_lossy(sample);
            let stray = text
                .chars()
                .filter(|&c| c == char::REPLACEMENT_CHARACTER)
                .count();
            let wide = text.chars().filter(|&c| !c.is_ascii()).count() - stray;
            if wide > stray {
                return UTF_8;
            }
        }
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(sample, false);
    detector.guess(None, chardetng::Utf8Detection::Deny)
}

/// `reader` as UTF-8: as it is when it is UTF-8 (the declared `encoding`, or the detected
/// one), else transcoded as it is read.
pub fn as_utf8<R: BufRead + 'static>(
    reader: R,
    declared: Option<&'static Encoding>,
) -> Box<dyn Read> {
    match declared {
        Some(encoding) => wrap(reader, encoding),
        None => Box::new(Detecting {
            inner: Some(reader),
            decided: None,
            at_start: true,
        }),
    }
}

/// Passes ASCII on until the first other byte, then decides the encoding and reads on in it.
struct Detecting<R> {
    inner: Option<R>,
    decided: Option<Box<dyn Read>>,
    at_start: bool,
}

impl<R: BufRead + 'static> Read for Detecting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(decided) = self.decided.as_mut() {
            return decided.read(buf);
        }
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let available = inner.fill_buf()?;
        if available.is_empty() {
            return Ok(0);
        }
        let ascii = available
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(available.len());
        if ascii > 0 {
            let n = ascii.min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            inner.consume(n);
            self.at_start = false;
            return Ok(n);
        }
        // The next byte is not ASCII: decide from what follows it.
        let mut inner = self
            .inner
            .take()
            .expect("the reader is there until decided");
        let mut sample = Vec::with_capacity(SAMPLE_BYTES);
        (&mut inner)
            .take(SAMPLE_BYTES as u64)
            .read_to_end(&mut sample)?;
        let encoding = match Encoding::for_bom(&sample).filter(|_| self.at_start) {
            Some((encoding, _)) => encoding,
            None => detect(&sample),
        };
        let mut decided = wrap(io::Cursor::new(sample).chain(inner), encoding);
        let n = decided.read(buf)?;
        self.decided = Some(decided);
        Ok(n)
    }
}

fn wrap<R: Read + 'static>(reader: R, encoding: &'static Encoding) -> Box<dyn Read> {
    if encoding == UTF_8 {
        Box::new(reader)
    } else {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_override(true)
                .build(reader),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], declared: Option<&str>) -> String {
        let declared = declared.map(|l| parse_label(l).expect("a label"));
        let mut reader = as_utf8(io::Cursor::new(bytes.to_vec()), declared);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn files_are_read_in_the_encoding_they_say_or_show() {
        // A French Excel "CSV": Windows-1252.
        let french = b"phone;firstName;city\r\n+33612345678;Ren\xE9;Orl\xE9ans\r\n";
        assert_eq!(
            read(french, None),
            "phone;firstName;city\r\n+33612345678;René;Orléans\r\n"
        );
        assert_eq!(detect(b"Ren\xE9;Orl\xE9ans").name(), "windows-1252");
        assert_eq!(read(french, Some("latin1")), read(french, None));
        // UTF-16 with its BOM.
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "phone\n+2126\u{e9}"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(read(&utf16, None), "phone\n+2126é");
        // UTF-8 is read as it is, a stray byte included (its row then fails alone).
        let utf8 = "phone\nRené\n".as_bytes();
        assert_eq!(read(utf8, None), "phone\nRené\n");
        let mut stray = b"\xEF\xBB\xBFphone\n".to_vec();
        stray.extend_from_slice(b"Ren\xE9\n");
        let mut bytes = Vec::new();
        as_utf8(io::Cursor::new(stray.clone()), None)
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, stray);
        // Mostly UTF-8 with a stray byte, no BOM: still UTF-8.
        assert_eq!(
            detect(
                "Zoë;Renée;Łódź;\u{e9}\n"
                    .as_bytes()
                    .iter()
                    .copied()
                    .chain([0xE9])
                    .collect::<Vec<_>>()
                    .as_slice()
            )
            .name(),
            "UTF-8"
        );
        assert!(parse_label("klingon").is_none());
    }
}
