//! Running this test binary again as a child process.

/// This test binary, run again to execute only the test `test` of `module`
/// (pass `module_path!()`), on one thread and with its output: the child
/// process of the kill -9 and other multi-process tests. Callers add the
/// environment and the pipes they need.
///
/// Panics unless the binary lists exactly that test: a child started with a
/// name that matches nothing runs zero tests and exits 0, which would let its
/// parent pass without exercising anything.
pub fn rerun_self(module: &str, test: &str) -> std::process::Command {
    // libtest names a test by its path without the crate (`crash::f` in the
    // `storage` binary).
    let name = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_string(),
    };
    let exe = std::env::current_exe().unwrap();
    let listed = std::process::Command::new(&exe)
        .args(["--list", "--exact", &name])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let tests: Vec<&str> = listed.lines().filter(|l| l.ends_with(": test")).collect();
    assert_eq!(
        tests,
        [format!("{name}: test")],
        "the child test {name} is not in {}",
        exe.display()
    );
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", &name, "--nocapture", "--test-threads=1"]);
    cmd
}
