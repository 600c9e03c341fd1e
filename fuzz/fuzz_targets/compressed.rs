//! Arbitrary bytes as the compressed records of an otherwise valid batch
//! (CRC included, so the decompressor and the record decoder are reached):
//! decompressing never panics, never yields more than the 16 MiB limit, and
//! whatever it yields the record decoder and the walker take without panic.
//! The same bytes as plain records round-trip through compression.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logbus::format::batch::{peek, BatchHeader, Peek, Records, HEADER_LEN_V2};
use logbus::format::compress::{deflate, inflate, Codec, MAX_INFLATED_LEN};
use logbus::format::walk::{Expect, Walker};

/// A version 2 batch header of `count` records, `attributes`, whose records section is `section`.
fn batch(attributes: u8, count: u32, section: &[u8]) -> Vec<u8> {
    let len = (HEADER_LEN_V2 + section.len()) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(b"LBat");
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[2, attributes, 0, 0]);
    b.extend_from_slice(&[0; 24]); // base offset, timestamps
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&count.saturating_sub(1).to_le_bytes()); // last_offset_delta
    b.extend_from_slice(&[0; 8]); // producer id
    b.extend_from_slice(section);
    let crc = crc32fast::hash(&b[12..]);
    b[8..12].copy_from_slice(&crc.to_le_bytes());
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let codec = if sel & 1 == 0 { Codec::Lz4 } else { Codec::Zstd };
    let count = u32::from(sel >> 1);
    let stored = batch(codec.attribute_bits(), count, rest);
    if let Peek::Batch(h) = peek(&stored) {
        let mut out = Vec::new();
        if let Ok(plain) = inflate(&stored, &h, &mut out) {
            assert!(out.len() <= HEADER_LEN_V2 + MAX_INFLATED_LEN);
            assert_eq!(plain.len as usize, out.len());
            for r in Records::new(&out, plain).flatten() {
                assert!(r.value.1 as usize <= out.len());
            }
        }
    }
    let mut walk = Walker::new(&stored, 0, Expect::Any).validate_records();
    if let Ok(b) = walk.next_batch() {
        let mut out = Vec::new();
        let plain = b.inflate(&mut out).expect("a validated batch inflates");
        assert!(Records::new(&out, plain).all(|r| r.is_ok()));
    }

    // The bytes as plain records: compression round-trips them exactly.
    let plain = batch(0, 0, rest);
    let h = BatchHeader {
        len: plain.len() as u32,
        crc: 0,
        attributes: 0,
        base_offset: 0,
        base_timestamp: 0,
        max_timestamp: 0,
        count: 0,
        version: 2,
        last_offset_delta: 0,
        producer_id: 0,
    };
    let mut packed = Vec::new();
    if let Some(zh) = deflate(codec, &plain, &h, &mut packed) {
        let mut out = Vec::new();
        let back = inflate(&packed, &zh, &mut out).expect("compressed bytes decompress");
        assert_eq!(out[HEADER_LEN_V2..], plain[HEADER_LEN_V2..]);
        assert_eq!(back.len as usize, plain.len());
    }
});
