//! Key hashing. Both hashes are part of the format contract (docs/FORMAT.md):
//! the same key must reach the same partition across restarts and versions.

use twox_hash::XxHash64;

use crate::config::Partitioner;

/// Apache Kafka's murmur2, exactly as its Java client computes it
/// (`org.apache.kafka.common.utils.Utils.murmur2`, seed `0x9747b28c`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes(c.try_into().unwrap_or([0; 4]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Kafka's switch on the 1 to 3 trailing bytes folds them in little-endian
    // order and multiplies once.
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// XXH64 of the key with seed 0.
pub fn xxh64(data: &[u8]) -> u64 {
    XxHash64::oneshot(0, data)
}

/// The partition of a keyed record.
pub fn partition_for_key(p: Partitioner, key: &[u8], partitions: u32) -> u32 {
    let n = u64::from(partitions.max(1));
    match p {
        Partitioner::Xxh64 => (xxh64(key) % n) as u32,
        Partitioner::Murmur2 => ((murmur2(key) & 0x7fff_ffff) as u64 % n) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka_vectors() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn xxh64_is_pinned() {
        // Pinned values: changing them moves keys between partitions.
        assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"abc"), 0x44bc_2cf5_ad77_0999);
        assert_eq!(
            partition_for_key(Partitioner::Xxh64, b"abc", 3),
            (0x44bc_2cf5_ad77_0999u64 % 3) as u32
        );
    }
}
