//! Arbitrary bytes as offset and time index files. Never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = logbus::format::index::decode_offset(data) {
        assert!(f.entries.len() * 8 <= data.len());
    }
    if let Ok(f) = logbus::format::index::decode_time(data) {
        assert!(f.entries.len() * 12 <= data.len());
    }
});
