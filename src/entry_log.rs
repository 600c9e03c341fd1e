//! Replaying an append-only entry log of the broker (`@groups/offsets.log`,
//! `@txn/txn.log`): an 8-byte file header, then CRC'd entries. The entries'
//! bytes are in `format/`; what they mean is the caller's.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::DecodeError;

/// One log file's header and the words its messages use.
pub(crate) struct EntryLog {
    /// The file header (magic, version, reserved bytes).
    pub header: [u8; 8],
    /// Reason when the magic is wrong, e.g. `offsets log header "LBof" expected`.
    pub bad_header: &'static str,
    /// What a torn last entry is called, e.g. `torn commit`.
    pub torn: &'static str,
    /// How an entry gets torn, e.g. `a crash during a commit`.
    pub torn_cause: &'static str,
    /// What damaged entries are called, e.g. `damaged commits`.
    pub damaged: &'static str,
}

/// Replays the bytes of the log (`path` is for messages), handing each entry
/// `decode` yields to `apply`. A bad header is an error; a file shorter than
/// its header is a torn first write and holds nothing; a torn or damaged
/// entry ends the replay. Returns why the replay stopped before the end, if
/// it did.
pub(crate) fn replay<E>(
    log: &EntryLog,
    path: &Path,
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> std::result::Result<Option<(E, usize)>, DecodeError>,
    mut apply: impl FnMut(E),
) -> Result<Option<String>> {
    if bytes.len() < log.header.len() {
        return Ok(None);
    }
    if bytes.get(..4) != log.header.get(..4) {
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            position: 0,
            reason: log.bad_header.into(),
        });
    }
    if bytes.get(4) != log.header.get(4) {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: bytes.get(4).copied().unwrap_or(0),
            supported: 1,
        });
    }
    let mut pos = log.header.len();
    while let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) {
        match decode(rest) {
            Ok(Some((entry, len))) => {
                apply(entry);
                pos += len;
            }
            Ok(None) => {
                let (torn, cause) = (log.torn, log.torn_cause);
                return Ok(Some(format!("{}: {torn} at byte {pos} ({cause})", path.display())));
            }
            Err(e) => {
                let damaged = log.damaged;
                return Ok(Some(format!("{}: {damaged} from byte {pos}: {e}", path.display())));
            }
        }
    }
    Ok(None)
}
