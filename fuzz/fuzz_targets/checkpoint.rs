//! Arbitrary bytes as a recovery checkpoint; a decoded one re-encodes identically.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = logbus::format::checkpoint::decode(data) {
        assert_eq!(&logbus::format::checkpoint::encode(&c)[..], data);
    }
});
