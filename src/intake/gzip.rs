//! `Content-Encoding: gzip` on both intakes. A JSON body is decompressed whole (it is held
//! anyway), a CSV file as it streams; either way every size limit counts the decompressed
//! bytes, so a small compressed body cannot unpack past them. Any other encoding is a 415.

use super::IntakeError;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    Gzip,
}

impl BodyEncoding {
    /// From the `Content-Encoding` header (absent: identity).
    pub fn from_header(value: Option<&str>) -> Result<Self, IntakeError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Ok(Self::Identity),
            Some("gzip" | "x-gzip") => Ok(Self::Gzip),
            Some(other) => Err(IntakeError::UnsupportedEncoding(format!(
                "Content-Encoding {other:?} is not taken: send the body as it is, or gzip-compressed (Content-Encoding: gzip)"
            ))),
        }
    }
}

/// A gzip body decompressed whole, at most `limit` bytes of it (413 beyond).
pub fn gunzip(compressed: &[u8], limit: usize, what: &str) -> Result<Vec<u8>, IntakeError> {
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(compressed);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            IntakeError::Malformed(format!("the gzip body cannot be decompressed: {e}"))
        })?;
    if out.len() > limit {
        return Err(IntakeError::TooLarge(format!(
            "the {what} is larger than the limit of {limit} bytes once decompressed"
        )));
    }
    Ok(out)
}

/// Reads at most `limit` bytes of `inner`; past them it fails, and `exceeded` says why.
pub struct Limited<R> {
    inner: R,
    left: u64,
    exceeded: Arc<AtomicBool>,
}

impl<R: Read> Limited<R> {
    /// `inner`, bounded to `limit` bytes; `exceeded` turns true when it would give more.
    pub fn new(inner: R, limit: u64, exceeded: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            left: limit,
            exceeded,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more would pass the limit: is there one?
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.store(true, Ordering::Relaxed);
                    Err(io::Error::other("the file is larger than the upload limit"))
                }
            };
        }
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_bodies_are_decompressed_within_the_limit_on_the_decompressed_bytes() {
        let text = b"phone\n+212612345678\n".repeat(1000);
        assert_eq!(gunzip(&gzip(&text), text.len(), "body").unwrap(), text);
        let bomb = gzip(&vec![b'0'; 10_000_000]);
        assert!(bomb.len() < 100_000);
        assert!(matches!(
            gunzip(&bomb, 1_000_000, "body"),
            Err(IntakeError::TooLarge(_))
        ));
        assert!(matches!(
            gunzip(b"not gzip", 100, "body"),
            Err(IntakeError::Malformed(_))
        ));
    }

    #[test]
    fn a_stream_past_its_limit_fails_and_says_so() {
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut out = Vec::new();
        let within = Limited::new(&b"12345"[..], 5, exceeded.clone()).read_to_end(&mut out);
        assert_eq!(within.unwrap(), 5);
        assert!(!exceeded.load(Ordering::Relaxed));
        let past = Limited::new(&b"123456"[..], 5, exceeded.clone()).read_to_end(&mut out);
        assert!(past.is_err());
        assert!(exceeded.load(Ordering::Relaxed));
    }

    #[test]
    fn only_gzip_and_identity_are_taken() {
        assert_eq!(
            BodyEncoding::from_header(None).unwrap(),
            BodyEncoding::Identity
        );
        assert_eq!(
            BodyEncoding::from_header(Some(" GZIP ")).unwrap(),
            BodyEncoding::Gzip
        );
        assert!(matches!(
            BodyEncoding::from_header(Some("br")),
            Err(IntakeError::UnsupportedEncoding(_))
        ));
    }
}
