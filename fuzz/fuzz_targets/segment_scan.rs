//! Arbitrary bytes as a whole segment file, scanned as recovery does, then
//! opened as a Log: recovery must not panic and must keep only valid batches.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile_dir();
    let part = dir.join("p");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join("00000000000000000000.log"), data).unwrap();
    if let Ok(log) = logbus::log::Log::open(&part, logbus::LogConfig::default()) {
        let end = log.end_offset();
        let mut off = log.start_offset();
        while off < end {
            match log.read(off, 100) {
                Ok(rs) if !rs.is_empty() => off = rs.last().unwrap().offset() + 1,
                _ => break,
            }
        }
        let _ = log.verify();
        let _ = log.close();
    }
    let _ = std::fs::remove_dir_all(&dir);
});

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("logbus-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
