//! The fuzz targets' properties (see fuzz/), as proptests that run in CI:
//! arbitrary bytes never panic any decoder, and decoders never report more
//! than the input can hold.

use logbus::format::batch::{self, BatchHeader, Peek, Records, HEADER_LEN_V2};
use logbus::format::compress::{self, Codec};
use logbus::format::walk::{Expect, Walker};
use logbus::format::{checkpoint, compact_state, index, mirror_progress, offsets, topic_meta, txn};
use logbus::Record;
use proptest::prelude::*;

/// One batch of `values`: version 1, or version 2 with a gap before every
/// record, a transaction id and a null value for each empty value.
fn encoded_batch(values: &[Vec<u8>], v2: bool) -> Vec<u8> {
    let rs: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Record::new(v.clone())
                .with_key(vec![i as u8])
                .with_header("h", v.clone())
                .with_timestamp(i as i64)
        })
        .collect();
    let ts = |r: &Record| r.timestamp().unwrap_or(0);
    if !v2 {
        let (_, len) = batch::plan(&rs, ts, usize::MAX);
        let mut buf = vec![0u8; len];
        batch::encode(&mut buf, 7, 0, &rs, ts);
        return buf;
    }
    let deltas: Vec<u32> = (0..rs.len() as u32).map(|i| 2 * i + 1).collect();
    let shape = batch::Shape::v2(batch::ATTR_TRANSACTIONAL, 9).with_deltas(&deltas, 2 * rs.len() as u32 + 1);
    let mut lens = Vec::new();
    let (_, len) = batch::plan_lens(&rs, ts, usize::MAX, &shape, &mut lens);
    let mut buf = vec![0u8; len];
    batch::encode_planned(&mut buf, 7, &shape, &rs, ts, &lens);
    buf
}

fn inflate_arbitrary_stored(stored: &[u8], h: BatchHeader) {
    let mut out = Vec::new();
    if let Ok(plain) = compress::inflate(stored, &h, &mut out) {
        assert_eq!(plain.len as usize, out.len());
        let _ = Records::validate(&out, plain);
    }
    walk_all(stored);
}

fn decode_all(data: &[u8]) -> usize {
    let mut n = 0;
    if let Peek::Batch(h) = batch::peek(data) {
        let _ = batch::crc_ok(data, &h);
        for r in Records::new(data, h).flatten() {
            assert!(r.value.1 as usize <= data.len());
            n += 1;
        }
        let _ = Records::validate(data, h);
    }
    let _ = index::decode_offset(data);
    let _ = index::decode_time(data);
    let _ = checkpoint::decode(data);
    let _ = topic_meta::decode(data);
    let _ = offsets::decode(data);
    let _ = mirror_progress::decode(data);
    if let Ok(state) = compact_state::decode(data) {
        assert!(state.passes.len() <= compact_state::MAX_PASSES);
        assert_eq!(
            compact_state::encode(&state),
            data,
            "compact.state re-encodes to its bytes"
        );
    }
    if let Ok(Some((_, len))) = txn::decode(data) {
        assert!(len > 0 && len <= data.len());
    }
    let _ = txn::decode_control_key(data);
    if let Peek::Batch(h) = batch::peek(data) {
        let _ = txn::control_of(data, h);
    }
    walk_all(data);
    n
}

/// Walks arbitrary bytes as a segment both ways (zeros allowed at the end
/// or not, records validated or not): no panic, and every record of every
/// yielded batch decodes within the bytes.
fn walk_all(data: &[u8]) -> usize {
    let mut n = 0;
    for (zero_tail, validate) in [(false, false), (true, true)] {
        let mut w = Walker::new(data, 0, Expect::Any);
        if zero_tail {
            w = w.zero_tail();
        }
        if validate {
            w = w.validate_records();
        }
        let mut skipping = w.clone();
        skipping.skip_before(u64::MAX / 2);
        assert!(skipping.pos() <= data.len());
        let stop = loop {
            match w.next_batch() {
                Ok(b) if b.is_compressed() => {
                    let mut buf = Vec::new();
                    match b.inflate(&mut buf) {
                        Ok(plain) => {
                            for r in Records::new(&buf, plain) {
                                match r {
                                    Ok(r) => {
                                        assert!(r.value.1 as usize <= buf.len());
                                        n += 1;
                                    }
                                    Err(e) => {
                                        let _ = b.bad_record(e).to_string();
                                        break;
                                    }
                                }
                            }
                        }
                        Err(stop) => {
                            let _ = stop.to_string();
                        }
                    }
                }
                Ok(b) => {
                    assert!(b.pos + b.bytes.len() <= data.len());
                    for r in b.records() {
                        match r {
                            Ok(r) => {
                                assert!(r.value.1 as usize <= b.bytes.len());
                                n += 1;
                            }
                            Err(e) => {
                                let _ = b.bad_record(e).to_string();
                                break;
                            }
                        }
                    }
                }
                Err(stop) => break stop,
            }
        };
        assert!(stop.pos <= data.len());
        let _ = stop.to_string();
    }
    n
}

/// A version 2 batch of `count` records with `attributes` whose records
/// section is `section`, CRC included (what fuzz/fuzz_targets/compressed.rs builds).
fn batch_around(attributes: u8, count: u32, section: &[u8]) -> Vec<u8> {
    let len = (HEADER_LEN_V2 + section.len()) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"LBat");
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[2, attributes, 0, 0]);
    b.extend_from_slice(&[0; 24]);
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&count.saturating_sub(1).to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(section);
    let crc = crc32fast::hash(&b[12..]);
    b[8..12].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The compressed fuzz target's property: arbitrary compressed bytes behind
/// a valid header never panic the decompressor, the record decoder or the
/// walker, and never yield more than the limit.
fn inflate_arbitrary(codec: Codec, count: u32, section: &[u8]) {
    let stored = batch_around(codec.attribute_bits(), count, section);
    if let Peek::Batch(h) = batch::peek(&stored) {
        let mut out = Vec::new();
        if let Ok(plain) = compress::inflate(&stored, &h, &mut out) {
            assert!(out.len() <= HEADER_LEN_V2 + compress::MAX_INFLATED_LEN);
            assert_eq!(plain.len as usize, out.len());
            for r in Records::new(&out, plain).flatten() {
                assert!(r.value.1 as usize <= out.len());
            }
        }
    }
    walk_all(&stored);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_compressed_records_never_panic(
        zstd in any::<bool>(),
        count in 0u32..300,
        section in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let codec = if zstd { Codec::Zstd } else { Codec::Lz4 };
        inflate_arbitrary(codec, count, &section);
    }

    /// Real compressed batches, mutated after compression (CRC fixed up):
    /// an error or records within the bytes, never a panic; unmutated, they
    /// decompress to exactly what was compressed.
    #[test]
    fn mutated_compressed_batches_never_panic(
        values in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..60), 1..20),
        zstd in any::<bool>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let codec = if zstd { Codec::Zstd } else { Codec::Lz4 };
        let plain = encoded_batch(&values, true);
        let Peek::Batch(h) = batch::peek(&plain) else { panic!("encoded batch does not parse") };
        let mut packed = Vec::new();
        let Some(zh) = compress::deflate(codec, &plain, &h, &mut packed) else {
            // Not built in, or no smaller: stored plain.
            return Ok(());
        };
        let mut out = Vec::new();
        let back = compress::inflate(&packed, &zh, &mut out).unwrap();
        prop_assert_eq!(&out[HEADER_LEN_V2..], &plain[HEADER_LEN_V2..]);
        prop_assert_eq!(Records::new(&out, back).count(), values.len());
        prop_assert_eq!(decode_all(&packed), 0, "records of a compressed batch only come inflated");

        let i = HEADER_LEN_V2 + flip.index(packed.len() - HEADER_LEN_V2);
        packed[i] ^= 1 << bit;
        let crc = crc32fast::hash(&packed[12..]);
        packed[8..12].copy_from_slice(&crc.to_le_bytes());
        inflate_arbitrary_stored(&packed, zh);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&data);
    }

    /// A checkpoint that decodes re-encodes to the same bytes (cargo-fuzz found
    /// nonzero reserved bytes being accepted).
    #[test]
    fn checkpoints_round_trip(mut data in proptest::collection::vec(any::<u8>(), 44..=44), reserved in any::<u16>()) {
        data[..5].copy_from_slice(b"LBck\x01");
        data[5] &= 1;
        data[6..8].copy_from_slice(&reserved.to_le_bytes());
        let crc = crc32fast::hash(&data[..40]);
        data[40..44].copy_from_slice(&crc.to_le_bytes());
        match checkpoint::decode(&data) {
            Ok(c) => prop_assert_eq!(&checkpoint::encode(&c)[..], &data[..]),
            Err(_) => prop_assert!(reserved != 0),
        }
    }

    #[test]
    fn mutated_batches_never_panic_and_crc_catches_flips(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
        v2 in any::<bool>(),
    ) {
        let good = encoded_batch(&values, v2);
        let Peek::Batch(h) = batch::peek(&good) else { panic!("encoded batch does not parse") };
        prop_assert!(batch::crc_ok(&good, &h));
        prop_assert_eq!(decode_all(&good), values.len());

        let mut bad = good.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 1 << bit;
        decode_all(&bad);
        if i >= 12 {
            // Every bit from the version byte on is covered by the CRC.
            let still_ok = matches!(batch::peek(&bad), Peek::Batch(h2) if batch::crc_ok(&bad, &h2));
            prop_assert!(!still_ok, "flip at byte {} went undetected", i);
        }
        let short = &good[..cut.index(good.len())];
        prop_assert!(!matches!(batch::peek(short), Peek::Batch(_)), "a cut batch must not parse");
    }
}
