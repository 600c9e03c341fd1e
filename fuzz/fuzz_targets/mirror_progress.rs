//! Arbitrary bytes as the mirror's progress file: no panic; what decodes
//! re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logbus::format::mirror_progress;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = mirror_progress::decode(data) {
        assert_eq!(mirror_progress::encode(&entries), data);
    }
});
