//! Every bad input to the `logbus` binary: one clear line on stderr, a
//! non-zero exit code, no panic and no backtrace. Usage mistakes are clap's
//! (exit 2); everything else is `error: ...` (exit 1). `--help` of every
//! command shows an example.

use std::path::Path;

use assert_cmd::Command;

const BIN: &str = env!("CARGO_BIN_EXE_logbus");

fn bare() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("LOGBUS_DIR").env("RUST_BACKTRACE", "1");
    c
}

fn logbus(dir: &Path) -> Command {
    let mut c = bare();
    c.arg("--dir").arg(dir);
    c
}

/// Runs `cmd`, expects exit code 1 and one `error:` line containing `needle`.
fn fails(cmd: &mut Command, needle: &str) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{cmd:?}: one line expected, got: {err}");
    assert!(err.starts_with("error: "), "{cmd:?}: {err}");
    assert!(err.contains(needle), "{cmd:?}: {err:?} should mention {needle:?}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}

/// Runs `cmd`, expects clap's usage error (exit 2) mentioning `needle`.
fn usage(cmd: &mut Command, needle: &str) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
    assert!(err.contains(needle), "{cmd:?}: {err:?} should mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    logbus(&dir)
        .args(["topics", "create", "t", "--partitions", "2"])
        .assert()
        .success();
    logbus(&dir)
        .args(["produce", "t", "--partition", "0"])
        .write_stdin("a\nb\nc\n")
        .assert()
        .success();
    (tmp, dir)
}

#[test]
fn missing_or_wrong_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // A missing --dir is a usage mistake (exit 2).
    usage(bare().args(["topics", "list"]), "pass --dir DATA or set LOGBUS_DIR");
    let missing = tmp.path().join("nope");
    for args in [
        vec!["topics", "list"],
        vec!["topics", "describe", "t"],
        vec!["consume", "t"],
        vec!["produce", "t"],
        vec!["groups", "list"],
        vec!["verify"],
    ] {
        fails(logbus(&missing).args(&args).write_stdin(""), "does not exist");
    }
    assert!(!missing.exists(), "a failed command must not create the directory");
    // LOGBUS_DIR works like --dir.
    bare()
        .env("LOGBUS_DIR", tmp.path())
        .args(["topics", "list"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn bad_topic_input() {
    let (_tmp, dir) = setup();
    fails(logbus(&dir).args(["topics", "create", "t"]), "already exists");
    fails(
        logbus(&dir).args(["topics", "create", "bad/name"]),
        "invalid topic name",
    );
    fails(
        logbus(&dir).args(["topics", "create", "z", "--partitions", "0"]),
        "partitions",
    );
    fails(
        logbus(&dir).args(["topics", "create", "z", "--segment-bytes", "10"]),
        "--segment-bytes",
    );
    fails(
        logbus(&dir).args([
            "topics",
            "create",
            "z",
            "--segment-bytes",
            "4096",
            "--max-record-bytes",
            "100000",
        ]),
        "--max-record-bytes",
    );
    usage(
        logbus(&dir).args(["topics", "create", "z", "--partitions", "-1"]),
        "unexpected argument '-1'",
    );
    usage(
        logbus(&dir).args(["topics", "create", "z", "--retention-ms", "soon"]),
        "--retention-ms",
    );
    usage(logbus(&dir).args(["topics", "create"]), "NAME");
    for args in [
        vec!["topics", "describe", "x"],
        vec!["topics", "delete", "x"],
        vec!["verify", "x"],
    ] {
        fails(logbus(&dir).args(&args), "unknown topic 'x'");
    }
    fails(logbus(&dir).args(["topics", "describe", ".."]), "invalid topic name");
    usage(logbus(&dir).args(["topics", "frobnicate"]), "frobnicate");
    usage(bare().arg("nonsense"), "nonsense");
}

#[test]
fn bad_produce_input() {
    let (_tmp, dir) = setup();
    fails(logbus(&dir).args(["produce", "x"]).write_stdin(""), "unknown topic 'x'");
    fails(
        logbus(&dir).args(["produce", "t", "--partition", "5"]).write_stdin(""),
        "has no partition 5",
    );
    fails(
        logbus(&dir)
            .args(["produce", "t", "--header", "novalue"])
            .write_stdin(""),
        "NAME=VALUE",
    );
    fails(
        logbus(&dir).args(["produce", "t", "--header", "=v"]).write_stdin(""),
        "NAME=VALUE",
    );
    fails(
        logbus(&dir)
            .args(["produce", "t", "--key-separator", ""])
            .write_stdin(""),
        "must not be empty",
    );
    let out = logbus(&dir)
        .args(["produce", "t", "--key-separator", ":"])
        .write_stdin("k:v\nno separator here\n")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("line 2: no key separator \":\""), "{err}");
    assert!(err.contains("Stored 1 record(s) from line 1;"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    logbus(&dir)
        .args([
            "topics",
            "create",
            "small",
            "--segment-bytes",
            "4096",
            "--max-record-bytes",
            "100",
        ])
        .assert()
        .success();
    let big = format!("ok\n{}\n", "x".repeat(500));
    fails(logbus(&dir).args(["produce", "small"]).write_stdin(big), "too large");
}

#[test]
fn bad_consume_input() {
    let (_tmp, dir) = setup();
    fails(logbus(&dir).args(["consume", "x"]), "unknown topic 'x'");
    fails(
        logbus(&dir).args(["consume", "t", "--partition", "9"]),
        "has no partition 9",
    );
    fails(
        logbus(&dir).args(["consume", "t", "--partition", "0", "--offset", "99"]),
        "out of range",
    );
    fails(
        logbus(&dir).args(["consume", "t", "--partition", "0", "--offset", "abc"]),
        "not a number",
    );
    fails(logbus(&dir).args(["consume", "x", "--group", "g"]), "unknown topic 'x'");
    usage(logbus(&dir).args(["consume", "t", "--offset", "1"]), "--partition");
    usage(
        logbus(&dir).args(["consume", "t", "--group", "g", "--partition", "0"]),
        "--partition",
    );
    usage(logbus(&dir).args(["consume", "t", "--format", "xml"]), "xml");
    usage(
        logbus(&dir).args(["consume", "t", "--max-messages", "many"]),
        "--max-messages",
    );
    usage(
        logbus(&dir).args(["consume", "t", "--from-beginning", "--partition", "0", "--offset", "1"]),
        "--offset",
    );
    // --max-messages 0 prints nothing and succeeds.
    logbus(&dir)
        .args(["consume", "t", "--from-beginning", "--max-messages", "0"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn bad_group_input() {
    let (_tmp, dir) = setup();
    fails(
        logbus(&dir).args(["groups", "describe", "nobody"]),
        "has no committed offsets",
    );
    usage(
        logbus(&dir).args(["groups", "reset-offsets", "g", "--topic", "t"]),
        "--to-earliest",
    );
    usage(
        logbus(&dir).args([
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ]),
        "cannot be used with",
    );
    fails(
        logbus(&dir).args(["groups", "reset-offsets", "g", "--topic", "x", "--to-latest"]),
        "unknown topic 'x'",
    );
    fails(
        logbus(&dir).args(["groups", "reset-offsets", "g", "--topic", "t", "--by-duration", "1h"]),
        "ISO-8601 duration",
    );
    fails(
        logbus(&dir).args([
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-datetime",
            "yesterday",
        ]),
        "YYYY-MM-DDTHH:mm:SS.sss",
    );
    fails(
        logbus(&dir).args([
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--partition",
            "7",
            "--to-latest",
        ]),
        "has no partition 7",
    );
}

#[test]
fn bad_dump_input() {
    let (tmp, dir) = setup();
    fails(bare().args(["dump", "/definitely/not/here.log"]), "is not a file");
    fails(bare().arg("dump").arg(&dir), "is not a file");
    // A file that is not a segment: reported as damage at byte 0, exit 1, no panic.
    let junk = tmp.path().join("junk.log");
    std::fs::write(&junk, b"this is not a logbus segment at all, just some text\n").unwrap();
    let out = bare().arg("dump").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DAMAGE at byte 0"), "{text}");
    assert!(text.contains("not a segment file name"), "{text}");
    assert!(!String::from_utf8(out.stderr).unwrap().contains("panicked"));
    usage(bare().arg("dump"), "PATH");
}

#[test]
fn corrupt_metadata_is_reported_not_panicked() {
    let (_tmp, dir) = setup();
    std::fs::write(dir.join("t/topic.meta"), b"garbage").unwrap();
    fails(logbus(&dir).args(["topics", "describe", "t"]), "topic.meta");
    fails(logbus(&dir).args(["consume", "t", "--from-beginning"]), "corruption");
    std::fs::write(dir.join("@groups/offsets.log"), b"NOPE\x01\0\0\0").unwrap();
    fails(logbus(&dir).args(["groups", "list"]), "offsets log header");
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: Vec<Vec<&str>> = vec![
        vec![],
        vec!["topics", "create"],
        vec!["topics", "list"],
        vec!["topics", "describe"],
        vec!["topics", "alter"],
        vec!["topics", "delete"],
        vec!["produce"],
        vec!["consume"],
        vec!["groups", "list"],
        vec!["groups", "describe"],
        vec!["groups", "reset-offsets"],
        vec!["groups", "delete"],
        vec!["dump"],
        vec!["verify"],
    ];
    for args in commands {
        let out = bare().args(&args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Example"), "{args:?} --help has no example:\n{text}");
        assert!(text.contains("logbus "), "{args:?}");
    }
    bare()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains("logbus"));
}
