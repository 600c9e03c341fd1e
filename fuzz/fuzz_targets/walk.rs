//! Arbitrary bytes walked as a segment by `format::walk::Walker`, both ways
//! (zeros allowed at the end and records validated, or neither): no panic,
//! every batch and record yielded lies within the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logbus::format::walk::{Expect, Walker};

fuzz_target!(|data: &[u8]| {
    for strict in [false, true] {
        let mut w = Walker::new(data, 0, Expect::Any);
        if strict {
            w = w.zero_tail().validate_records();
        }
        let stop = loop {
            match w.next_batch() {
                Ok(b) => {
                    assert!(b.pos + b.bytes.len() <= data.len());
                    for r in b.records() {
                        match r {
                            Ok(r) => assert!(r.value.1 as usize <= b.bytes.len()),
                            Err(e) => {
                                let _ = b.bad_record(e).to_string();
                                break;
                            }
                        }
                    }
                }
                Err(stop) => break stop,
            }
        };
        assert!(stop.pos <= data.len());
        let _ = stop.to_string();
    }
});
