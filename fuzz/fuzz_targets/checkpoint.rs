//! Arbitrary bytes as a recovery checkpoint (fsynced or live); a decoded one
//! re-encodes identically.
#![no_main]
use libfuzzer_sys::fuzz_target;

use logbus::format::checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = checkpoint::decode(data) {
        assert_eq!(&checkpoint::encode(&c)[..], data);
    }
    if let Ok(c) = checkpoint::decode_live(data) {
        assert_eq!(&checkpoint::encode_live(&c)[..], data);
    }
});
