//! Arbitrary bytes as a batch: peek, CRC, every record, headers. Never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logbus::format::batch::{crc_ok, headers, peek, Peek, Records};

fuzz_target!(|data: &[u8]| {
    if let Peek::Batch(h) = peek(data) {
        let _ = crc_ok(data, &h);
        for r in Records::new(data, h).flatten() {
            let (a, b) = r.headers;
            if let Some(enc) = data.get(a as usize..b as usize) {
                for (name, value) in headers(enc, r.header_count) {
                    assert!(name.len() + value.len() <= data.len());
                }
            }
        }
        let _ = Records::validate(data, h);
    }
});
