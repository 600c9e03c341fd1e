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

/// Starts `child` (a [`rerun_self`] command with its environment), lets it
/// run for `run_for`, kills it (SIGKILL) and returns the lines it printed
/// whole: a line cut by the kill was not acknowledged and is left out. The
/// output is read on a thread, so the child never blocks on a full pipe.
/// Panics if the child exited on its own before the kill (`round` names the
/// attempt in the message).
pub fn kill_after(
    mut child: std::process::Command,
    run_for: std::time::Duration,
    round: impl std::fmt::Display,
) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let mut child = child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = r.read_until(b'\n', &mut buf).unwrap();
            if n == 0 || buf.last() != Some(&b'\n') {
                break;
            }
            lines.push(String::from_utf8(buf[..buf.len() - 1].to_vec()).unwrap());
        }
        lines
    });
    std::thread::sleep(run_for);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "round {round}: the child exited on its own: {status}"
    );
    reader.join().unwrap()
}
