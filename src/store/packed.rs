//! A batch's rows as `import_batches` keeps them: `payload` (the contacts, a JSON array) and
//! `raw` (a file's cells, a JSON array of arrays) are compressed by the service, as one lz4
//! frame each (migration 0029), so that the database receives, copies, logs and sends a quarter
//! of the bytes, and compresses nothing itself. A 3000-contact request's three payloads cost
//! its backend 4–8 ms of CPU as JSON and 2 ms as lz4 (bench/RESULTS.md, session 19).
//!
//! A value stored before that migration is the JSON itself: `unpack` tells the two apart by the
//! frame's magic number, which no JSON text starts with.

use std::borrow::Cow;
use std::io::{Read, Write};

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

/// The four bytes every lz4 frame starts with (0x184D2204, little-endian).
const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// `json` compressed as it is stored. Should the encoder fail (it writes to memory, so it does
/// not), the JSON itself is stored: `unpack` reads both.
pub fn pack(json: &[u8]) -> Vec<u8> {
    // Linked 256 kB blocks: a batch is one to three of them, and later blocks find their
    // repeats (keys, domains, cities) in the ones before.
    let info = FrameInfo::new()
        .block_size(BlockSize::Max256KB)
        .block_mode(BlockMode::Linked);
    let mut encoder = FrameEncoder::with_frame_info(info, Vec::with_capacity(json.len() / 3));
    let packed = encoder
        .write_all(json)
        .map_err(lz4_flex::frame::Error::from)
        .and_then(|()| encoder.finish());
    packed.unwrap_or_else(|_| json.to_vec())
}

/// The JSON a stored value holds: uncompressed, or borrowed as it is when it was stored before
/// values were compressed. An error when the frame is damaged.
pub fn unpack(stored: &[u8]) -> std::io::Result<Cow<'_, [u8]>> {
    if !stored.starts_with(&MAGIC) {
        return Ok(Cow::Borrowed(stored));
    }
    let mut json = Vec::with_capacity(stored.len().saturating_mul(4));
    FrameDecoder::new(stored).read_to_end(&mut json)?;
    Ok(Cow::Owned(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts(n: usize) -> Vec<u8> {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"externalId":"crm-{i:09}","phone":"+4474{i:08}","email":"user{i}@example.com","firstName":"Ana","lastName":"Müller"}}"#
                )
            })
            .collect();
        format!("[{}]", rows.join(",")).into_bytes()
    }

    #[test]
    fn what_is_packed_unpacks_to_the_same_bytes() {
        for json in [b"[]".to_vec(), contacts(1), contacts(3000)] {
            let packed = pack(&json);
            assert!(packed.starts_with(&MAGIC));
            assert_eq!(unpack(&packed).expect("a frame of ours").as_ref(), json);
        }
    }

    #[test]
    fn contacts_pack_to_a_fraction_of_their_size() {
        let json = contacts(1000);
        let packed = pack(&json);
        assert!(
            packed.len() * 3 < json.len(),
            "{} bytes packed to {}",
            json.len(),
            packed.len()
        );
    }

    #[test]
    fn json_stored_before_compression_reads_as_it_is() {
        let json = br#"[{"phone":"+447400000001"}]"#;
        assert!(matches!(unpack(json), Ok(Cow::Borrowed(b)) if b == json));
        assert!(matches!(
            unpack(b"not json"),
            Ok(Cow::Borrowed(b"not json"))
        ));
    }

    #[test]
    fn a_damaged_frame_is_an_error() {
        let mut packed = pack(&contacts(100));
        packed.truncate(packed.len() / 2);
        assert!(unpack(&packed).is_err());
        let mut header_only = MAGIC.to_vec();
        header_only.push(0xff);
        assert!(unpack(&header_only).is_err());
    }
}
