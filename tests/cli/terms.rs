//! Errors in the tool's terms: commands and flags rather than API names, a
//! `--dir` that is not a logbus directory said to be exactly that, and the
//! process holding the lock named by its command line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;

use crate::common::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_logbus");

fn logbus(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("LOGBUS_DIR").arg("--dir").arg(dir);
    c
}

/// Runs `cmd`; expects exit code 1 and one `error:` line containing every needle.
fn fails(cmd: &mut Command, needles: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    err
}

#[test]
fn errors_name_commands_and_flags_not_api() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    logbus(&dir).args(["topics", "create", "t"]).assert().success();
    let err = fails(
        logbus(&dir).args(["produce", "nope"]).write_stdin(""),
        &["unknown topic 'nope'", "`logbus topics create nope`"],
    );
    assert!(!err.contains("Broker::"), "{err}");
    fails(logbus(&dir).args(["consume", "nope"]), &["`logbus topics create nope`"]);
    let err = fails(
        logbus(&dir).args(["consume", "t", "--partition", "0", "--offset", "99"]),
        &["out of range", "give an offset in that range"],
    );
    assert!(!err.contains("seek"), "{err}");
    logbus(&dir)
        .args([
            "topics",
            "create",
            "small",
            "--segment-bytes",
            "4096",
            "--max-record-bytes",
            "10",
        ])
        .assert()
        .success();
    let err = fails(
        logbus(&dir)
            .args(["produce", "small"])
            .write_stdin(format!("{}\n", "x".repeat(50))),
        &["too large", "--max-record-bytes", "Stored 0 record(s)", "line 1"],
    );
    assert!(!err.contains("raise max_record_bytes"), "{err}");
}

#[test]
fn a_dir_that_is_not_a_logbus_directory_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    fails(
        logbus(&file).args(["topics", "list"]),
        &["is a file, not a logbus data directory"],
    );
    fails(logbus(&file).args(["consume", "t"]), &["is a file"]);

    let other = tmp.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), "meow").unwrap();
    for args in [vec!["topics", "list"], vec!["verify"], vec!["topics", "create", "t"]] {
        fails(
            logbus(&other).args(&args),
            &["is not a logbus data directory", "no @lock file and no topics"],
        );
    }
    assert!(!other.join("@lock").exists(), "nothing was written there");

    // A new or empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    logbus(&empty).args(["topics", "list"]).assert().success().stdout("");
}

#[test]
fn the_lock_holder_is_named_by_its_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    logbus(&dir).args(["topics", "create", "orders"]).assert().success();
    let mut holder = std::process::Command::new(BIN)
        .arg("--dir")
        .arg(&dir)
        .args(["consume", "orders", "--group", "billing", "--follow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = holder.id();
    let lock = dir.join("@lock");
    wait_until("the consumer holds the lock", Duration::from_secs(20), || {
        std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid.to_string())
    });
    let err = fails(
        logbus(&dir).args(["produce", "orders"]).write_stdin("x\n"),
        &[
            "is locked by `logbus",
            "consume orders --group billing --follow`",
            &format!("(pid {pid})"),
        ],
    );
    assert!(!err.contains("another broker"), "{err}");
    holder.kill().unwrap();
    holder.wait().unwrap();
}
