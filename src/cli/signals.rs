//! What the long-running commands (`mirror`, `ingest`) share: stopping on
//! SIGINT or SIGTERM, and librdkafka settings given as `--set KEY=VALUE`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{CliError, CliResult};

/// A flag that SIGINT and SIGTERM set. Register it before anything is
/// written: a signal at any later point then ends the command's loop, which
/// stops its work cleanly.
pub(super) fn stop_flag() -> CliResult<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| CliError::new(format!("installing the handler of signal {sig}: {e}")))?;
    }
    Ok(stop)
}

/// Splits each `--set KEY=VALUE`.
pub(super) fn settings(args: &[String]) -> CliResult<Vec<(&str, &str)>> {
    args.iter()
        .map(|kv| {
            kv.split_once('=')
                .ok_or_else(|| CliError::new(format!("--set {kv:?} is not KEY=VALUE")))
        })
        .collect()
}
