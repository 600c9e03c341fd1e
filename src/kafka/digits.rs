//! Decimal ASCII for the bridge's header values (offsets, partitions),
//! without the formatting machinery: it runs once per mirrored or ingested
//! record.

/// `n` in decimal ASCII, written into `buf` (20 bytes hold every u64), as
/// `n.to_string()` would give it.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(d) = buf.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_writes_every_u64_as_to_string_does() {
        let mut buf = [0u8; 20];
        for n in [
            0,
            1,
            9,
            10,
            41,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }
}
