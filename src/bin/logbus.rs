//! The `logbus` command-line tool; everything lives in `logbus::cli`.

fn main() -> std::process::ExitCode {
    logbus::cli::main()
}
