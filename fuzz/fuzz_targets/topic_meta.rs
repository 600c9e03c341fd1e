//! Arbitrary bytes as topic metadata. Never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = logbus::format::topic_meta::decode(data) {
        assert!(m.partitions > 0);
    }
});
