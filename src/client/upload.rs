//! The upload's body: the CSV file read in chunks on a blocking thread, gzip-compressed as it
//! is read (`Content-Encoding: gzip`; the service counts its limits on the decompressed bytes)
//! and streamed into the request, so a 1 GB file never sits in memory; each chunk the body
//! yields advances the meter by the bytes of the file it holds.

use super::progress::UploadMeter;
use anyhow::{Context, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks read ahead of the network.
const READ_AHEAD: usize = 4;

/// The CSV file, open and measured.
pub struct CsvFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl CsvFile {
    /// Opens `path`; the error names it.
    pub fn open(path: &Path) -> anyhow::Result<CsvFile> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            bail!("cannot read {}: not a regular file", path.display());
        }
        Ok(CsvFile {
            path: path.to_owned(),
            file,
            len: meta.len(),
        })
    }

    /// Its size in bytes, as the meter counts them.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The file as a streamed request body that reports to `meter`.
    pub fn into_body(self, meter: Arc<UploadMeter>) -> reqwest::Body {
        let (chunks, received) = mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || self.read_into(chunks));
        let stream =
            futures_util::stream::unfold((received, meter), |(mut received, meter)| async move {
                match received.recv().await {
                    Some(chunk) => {
                        let chunk = chunk.map(|(compressed, read): (Vec<u8>, u64)| {
                            meter.sent(read);
                            compressed
                        });
                        Some((chunk, (received, meter)))
                    }
                    None => {
                        meter.sent_all();
                        None
                    }
                }
            });
        reqwest::Body::wrap_stream(stream)
    }

    /// Reads exactly `len` bytes, compressed, into `chunks` (each with the bytes of the file it
    /// holds); stops when the request is gone.
    fn read_into(self, chunks: mpsc::Sender<io::Result<(Vec<u8>, u64)>>) {
        let CsvFile { path, file, len } = self;
        let mut reader = file.take(len);
        let mut read = 0u64;
        let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
        loop {
            let mut chunk = vec![0; CHUNK_BYTES];
            let item = match reader.read(&mut chunk) {
                Ok(0) if read < len => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} shrank during the upload ({read} of {len} bytes)",
                        path.display()
                    ),
                )),
                Ok(0) => {
                    let tail = std::mem::replace(
                        &mut gzip,
                        GzEncoder::new(Vec::new(), Compression::fast()),
                    )
                    .finish()
                    .map(|tail| (tail, 0));
                    let _ = chunks.blocking_send(tail);
                    return;
                }
                Ok(n) => {
                    read += n as u64;
                    gzip.write_all(&chunk[..n])
                        .map(|()| (std::mem::take(gzip.get_mut()), n as u64))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("cannot read {}: {e}", path.display()),
                )),
            };
            let failed = item.is_err();
            if chunks.blocking_send(item).is_err() || failed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let path = Path::new("/no/such/contacts.csv");
        let err = format!("{:#}", CsvFile::open(path).err().unwrap());
        assert!(
            err.starts_with("cannot read /no/such/contacts.csv: "),
            "{err}"
        );
    }

    #[test]
    fn a_folder_is_not_a_csv_file() {
        let err = format!("{:#}", CsvFile::open(&std::env::temp_dir()).err().unwrap());
        assert!(err.ends_with("not a regular file"), "{err}");
    }
}
