//! LEB128 unsigned varints and zigzag for signed values.
//!
//! A `u64` takes at most 10 bytes; a decoder refuses an 11th byte and any
//! value whose high bits would overflow, so garbage input cannot wrap.

use super::Malformed;

/// Largest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// Bytes `value` takes as a varint.
#[inline]
pub fn len(value: u64) -> usize {
    // One byte for most record fields (deltas, counts, short lengths).
    if value < 0x80 {
        return 1;
    }
    // 1 byte per 7 bits.
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `value` at the start of `dst`, returns the bytes written.
///
/// `dst` must have room for `len(value)` bytes; a short `dst` writes a
/// truncated value and returns the bytes actually written.
#[inline]
pub fn put(dst: &mut [u8], mut value: u64) -> usize {
    let mut i = 0;
    for slot in dst.iter_mut() {
        i += 1;
        if value < 0x80 {
            *slot = value as u8;
            return i;
        }
        *slot = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
    }
    i
}

/// Appends `value` to `out`.
#[inline]
pub fn push(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; MAX_LEN];
    let n = put(&mut buf, value);
    out.extend_from_slice(buf.get(..n).unwrap_or_default());
}

/// Reads a varint from `src` at `*pos`, advancing `*pos`.
#[inline]
pub fn get(src: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    // One byte (values below 128) is the common case for every record field
    // but long keys and values: no loop.
    if let Some(&byte) = src.get(*pos) {
        if byte < 0x80 {
            *pos += 1;
            return Ok(u64::from(byte));
        }
    }
    get_long(src, pos)
}

fn get_long(src: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    // Fixed texts: the batch decoder reads a multi-byte varint in most
    // records, and building a message here (a call) made every read of one
    // set up a stack frame.
    let mut value: u64 = 0;
    let start = *pos;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = src.get(*pos) else {
            return Err(Malformed::new(
                start,
                "varint runs past the end of its batch: every byte left has the continuation bit set, \
                 expected a last byte without it",
            ));
        };
        *pos += 1;
        let low = u64::from(byte & 0x7f);
        if shift == 63 && low > 1 {
            return Err(Malformed::new(
                start,
                "varint overflows 64 bits: its 10th byte carries more than bit 63, expected 0x00 or 0x01",
            ));
        }
        value |= low << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed::new(
        start,
        "varint longer than 10 bytes: its 10th byte has the continuation bit set, expected it to be the last",
    ))
}

/// Zigzag-encodes a signed value so small magnitudes stay short.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DecodeError;

    #[test]
    fn round_trips_and_lengths() {
        // Every length boundary: 2^(7k) - 1 takes k bytes, 2^(7k) takes k + 1.
        let boundaries = (1..=9).flat_map(|k| [(1u64 << (7 * k)) - 1, 1u64 << (7 * k)]);
        for v in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX - 1, u64::MAX]
            .into_iter()
            .chain(boundaries)
        {
            let mut buf = [0u8; MAX_LEN];
            let n = put(&mut buf, v);
            assert_eq!(n, len(v), "len of {v}");
            let mut pos = 0;
            assert_eq!(get(&buf[..n], &mut pos).unwrap(), v);
            assert_eq!(pos, n);
        }
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -64, 64] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        let mut pos = 0;
        assert!(get(&[0x80, 0x80], &mut pos).is_err());
        let mut pos = 0;
        assert!(get(&[0xff; 11], &mut pos).is_err());
        let mut pos = 0;
        // 10th byte may only carry one bit.
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert!(get(&over, &mut pos).is_err());
    }

    #[test]
    fn errors_say_what_was_found_and_what_was_expected() {
        let message = |b: &[u8]| DecodeError::from(get(b, &mut 0).unwrap_err()).message();
        assert!(message(&[0x80, 0x80]).contains("every byte left has the continuation bit set"));
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert!(message(&over).contains("carries more than bit 63, expected 0x00 or 0x01"));
        assert!(message(&[0x81; 11]).contains("its 10th byte has the continuation bit set"));
    }
}
