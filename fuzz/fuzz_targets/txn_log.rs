//! Arbitrary bytes as the transaction log: decode entries until the end or
//! an error; and as a control record key.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = logbus::format::txn::decode_control_key(data);
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        match logbus::format::txn::decode(rest) {
            Ok(Some((_, len))) => {
                assert!(len > 0 && len <= rest.len());
                pos += len;
            }
            _ => break,
        }
    }
});
