//! Running the `logbus` binary from the admin tests: one command builder,
//! its outputs split, and a table's column read by its header.

use std::path::Path;

use assert_cmd::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_logbus");

/// `logbus --dir DIR`, with no `LOGBUS_DIR` from the environment.
pub fn logbus(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("LOGBUS_DIR")
        .env_remove("RUST_BACKTRACE")
        .arg("--dir")
        .arg(dir);
    c
}

/// What a command printed.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with `args` and collects its outputs.
pub fn run(dir: &Path, args: &[&str]) -> Ran {
    let out = logbus(dir).args(args).output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `args`, expects exit 0, returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let r = run(dir, args);
    assert_eq!(r.code, Some(0), "{args:?} failed: {}", r.stderr);
    r.stdout
}

/// Runs `args`, expects exit 1 and one `error:` line containing `needle`.
pub fn fails(dir: &Path, args: &[&str], needle: &str) {
    let r = run(dir, args);
    assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "{args:?}: {:?} should mention {needle:?}",
        r.stderr
    );
}

/// The values of column `name` of a table whose first line is its header.
pub fn column(table: &str, name: &str) -> Vec<String> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|l| l.split_whitespace().nth(col).unwrap().to_string())
        .collect()
}

/// `column` as numbers.
pub fn numbers(table: &str, name: &str) -> Vec<u64> {
    column(table, name).iter().map(|v| v.parse().unwrap()).collect()
}
