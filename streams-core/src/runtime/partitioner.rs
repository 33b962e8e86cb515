//! Kafka's default key partitioner: murmur2 of the serialized key, as in the Java client.
//!
//! The runtime configures librdkafka with `partitioner=murmur2_random`, which computes the
//! same function; this module is used where no producer is involved (the test driver, and
//! checks of which task owns a key).

/// Kafka's murmur2 hash of `data` (seed `0x9747b28c`), exactly as `Utils.murmur2` in Java.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java producer picks for a non-null serialized key:
/// `toPositive(murmur2(key)) % partitions`.
///
/// # Panics
/// If `partitions` is not positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed with Kafka's Java client (`dev/java-murmur2-vectors`).
    #[test]
    fn matches_the_java_client_on_its_own_vectors() {
        let vectors = streams_test_support::murmur2_vectors();
        assert!(vectors.len() >= 20, "too few vectors: {}", vectors.len());
        for v in &vectors {
            assert_eq!(murmur2(&v.key), v.murmur2, "murmur2 of {:?}", v.key);
            for (&count, &expected) in streams_test_support::MURMUR2_PARTITION_COUNTS
                .iter()
                .zip(&v.partitions)
            {
                assert_eq!(
                    partition_for_key(&v.key, count),
                    expected,
                    "key {:?} over {count} partitions",
                    v.key
                );
            }
        }
    }

    #[test]
    fn empty_and_short_keys_are_hashed() {
        // Tail handling for 0..=3 trailing bytes must not panic and must differ.
        let hashes: Vec<i32> = (0..5).map(|n| murmur2(&b"abcd"[..n])).collect();
        let distinct: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(distinct.len(), 5);
    }
}
