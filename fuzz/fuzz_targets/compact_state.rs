//! Arbitrary bytes as a compaction state file. Never panics; what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logbus::format::compact_state;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = compact_state::decode(data) {
        assert!(s.passes.len() <= compact_state::MAX_PASSES);
        assert_eq!(compact_state::encode(&s), data);
    }
});
