//! The results file: the service's `results.csv` (or `errors.csv`) streamed to a temporary
//! file beside the target, written on a blocking thread, then renamed into place, so the
//! target is either the previous file or the whole new one, never half of it.

use anyhow::{Context, anyhow};
use futures_util::StreamExt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Chunks received ahead of the disk.
const WRITE_AHEAD: usize = 8;

/// Streams `response`'s body to `target`; returns the bytes written.
pub async fn save(response: reqwest::Response, target: &Path) -> anyhow::Result<u64> {
    let temp = temp_path(target);
    let file = File::create(&temp)
        .with_context(|| format!("cannot write the results to {}", temp.display()))?;
    let (chunks, received) = mpsc::channel(WRITE_AHEAD);
    let writer = {
        let temp = temp.clone();
        tokio::task::spawn_blocking(move || write_all(file, received, &temp))
    };
    let mut body = response.bytes_stream();
    let mut streamed = Ok(());
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                if chunks.send(bytes).await.is_err() {
                    break; // the writer failed; its error says why
                }
            }
            Err(e) => {
                streamed = Err(anyhow!(e).context("the download of the results broke off"));
                break;
            }
        }
    }
    drop(chunks);
    let written = writer
        .await
        .map_err(|e| anyhow!("the results writer stopped: {e}"))
        .and_then(|written| written);
    let finished = streamed.and(written).and_then(|bytes| {
        std::fs::rename(&temp, target)
            .with_context(|| format!("cannot move the results into {}", target.display()))?;
        Ok(bytes)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    finished
}

fn write_all<B: AsRef<[u8]>>(
    file: File,
    mut chunks: mpsc::Receiver<B>,
    temp: &Path,
) -> anyhow::Result<u64> {
    let context = || format!("cannot write the results to {}", temp.display());
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut written = 0u64;
    while let Some(chunk) = chunks.blocking_recv() {
        out.write_all(chunk.as_ref()).with_context(context)?;
        written += chunk.as_ref().len() as u64;
    }
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(context)?;
    file.sync_all().with_context(context)?;
    Ok(written)
}

/// `dir/.contacts.results.csv.<random>.part`: beside the target, so the rename stays on one
/// file system.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results.csv".to_owned());
    target.with_file_name(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_sits_beside_the_target() {
        let temp = temp_path(Path::new("out/contacts.results.csv"));
        assert_eq!(temp.parent(), Some(Path::new("out")));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".contacts.results.csv."), "{name}");
        assert!(name.ends_with(".part"), "{name}");
    }
}
