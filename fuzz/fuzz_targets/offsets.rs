//! Arbitrary bytes as the committed-offsets log: decode entries until the end or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        match logbus::format::offsets::decode(rest) {
            Ok(Some((_, len))) => {
                assert!(len > 0 && len <= rest.len());
                pos += len;
            }
            _ => break,
        }
    }
});
