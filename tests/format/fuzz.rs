//! The fuzz targets' properties (see fuzz/), as proptests that run in CI:
//! arbitrary bytes never panic any decoder, and decoders never report more
//! than the input can hold.

use logbus::format::batch::{self, Peek, Records};
use logbus::format::{checkpoint, index, offsets, topic_meta};
use logbus::Record;
use proptest::prelude::*;

fn encoded_batch(values: &[Vec<u8>]) -> Vec<u8> {
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
    let (_, len) = batch::plan(&rs, ts, usize::MAX);
    let mut buf = vec![0u8; len];
    batch::encode(&mut buf, 7, 0, &rs, ts);
    buf
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
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

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
    ) {
        let good = encoded_batch(&values);
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
