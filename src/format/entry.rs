//! The entry framing shared by the broker's append-only logs
//! (`@groups/offsets.log`, `@txn/txn.log`): `u32 LE len`, `u32 LE` CRC-32 of
//! the `len` bytes that follow, then the body. Also the length-prefixed
//! strings their bodies hold.

use super::{le, varint, DecodeError, Found};

/// The messages a log's framing errors carry.
pub(crate) struct Framing {
    /// Largest body accepted.
    pub max: usize,
    /// Reason when `len` is over `max`.
    pub too_long: &'static str,
    /// Reason when the CRC does not match.
    pub crc_mismatch: &'static str,
}

/// Appends `body` framed: length, CRC, body.
pub(crate) fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// The body of the entry at the start of `b`, its CRC checked. `Ok(None)`
/// when `b` ends before the entry does (a torn tail). The entry's encoded
/// length is `8 + body.len()`.
pub(crate) fn unframe<'b>(b: &'b [u8], f: &Framing) -> Result<Option<&'b [u8]>, DecodeError> {
    let (Some(len), Some(crc)) = (le::u32_at(b, 0), le::u32_at(b, 4)) else {
        return Ok(None);
    };
    let len = len as usize;
    if len > f.max {
        return Err(DecodeError::found(0, f.too_long, Found::Bytes(len as u64)));
    }
    let Some(body) = b.get(8..8 + len) else {
        return Ok(None);
    };
    let computed = crc32fast::hash(body);
    if computed != crc {
        let found = Found::Crc { stored: crc, computed };
        return Err(DecodeError::found(4, f.crc_mismatch, found));
    }
    Ok(Some(body))
}

/// Appends a varint length and the UTF-8 bytes of `s`.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    varint::push(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a string written by [`push_str`] at `*p`, advancing `*p` past it.
pub(crate) fn get_str(b: &[u8], p: &mut usize) -> Result<String, DecodeError> {
    let start = *p;
    let n = varint::get(b, p)?;
    let end = p
        .checked_add(usize::try_from(n).unwrap_or(usize::MAX))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| {
            let left = b.len().saturating_sub(*p) as u64;
            DecodeError::found(start, "string runs past the entry", Found::Short { need: n, left })
        })?;
    let s = std::str::from_utf8(b.get(*p..end).unwrap_or_default()).map_err(|e| {
        let found = Found::Utf8 {
            valid: e.valid_up_to() as u64,
        };
        DecodeError::found(*p, "string is not UTF-8", found)
    })?;
    *p = end;
    Ok(s.to_string())
}
