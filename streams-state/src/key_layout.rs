//! Byte layouts of windowed and session keys shared with Kafka Streams (Java).
//!
//! All integers are big-endian, as Java's `ByteBuffer` writes them, so that records in
//! changelog and output topics are readable by Kafka Streams and its serdes:
//!
//! | layout | bytes | used for |
//! |---|---|---|
//! | [`windowed_key`] | key, window start (8) | time-windowed keys in topics (`TimeWindowedSerializer`) |
//! | [`window_store_key`] | key, window start (8), seqnum (4) | window store keys and **window store changelogs** |
//! | [`session_key`] | key, session end (8), session start (8) | session stores, their changelogs and session-windowed topics |
//!
//! Kafka's `ChangeLoggingWindowBytesStore` logs the store key *with* the 4-byte sequence
//! number (`WindowKeySchema.toStoreKeyBinary`), so window changelogs use
//! [`window_store_key`], not [`windowed_key`].

/// Size of an encoded timestamp.
pub const TIMESTAMP_SIZE: usize = 8;
/// Size of an encoded window sequence number.
pub const SEQNUM_SIZE: usize = 4;
/// Size of the suffix [`window_store_key`] appends to the key.
pub const WINDOW_STORE_SUFFIX_SIZE: usize = TIMESTAMP_SIZE + SEQNUM_SIZE;
/// Size of the suffix [`session_key`] appends to the key.
pub const SESSION_SUFFIX_SIZE: usize = 2 * TIMESTAMP_SIZE;

fn read_i64(bytes: &[u8]) -> i64 {
    let mut buf = [0u8; TIMESTAMP_SIZE];
    buf.copy_from_slice(&bytes[..TIMESTAMP_SIZE]);
    i64::from_be_bytes(buf)
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; SEQNUM_SIZE];
    buf.copy_from_slice(&bytes[..SEQNUM_SIZE]);
    u32::from_be_bytes(buf)
}

/// Encodes a time-windowed key as Kafka's `TimeWindowedSerializer` does: key bytes followed
/// by the 8-byte window start.
pub fn windowed_key(key: &[u8], window_start: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + TIMESTAMP_SIZE);
    out.extend_from_slice(key);
    out.extend_from_slice(&window_start.to_be_bytes());
    out
}

/// Splits a [`windowed_key`] into key bytes and window start; `None` if shorter than 8 bytes.
pub fn split_windowed_key(bytes: &[u8]) -> Option<(&[u8], i64)> {
    let key_len = bytes.len().checked_sub(TIMESTAMP_SIZE)?;
    Some((&bytes[..key_len], read_i64(&bytes[key_len..])))
}

/// Encodes a window store key as Kafka's `WindowKeySchema.toStoreKeyBinary` does: key
/// bytes, 8-byte window start, 4-byte sequence number (0 unless duplicates are retained).
pub fn window_store_key(key: &[u8], window_start: i64, seqnum: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + WINDOW_STORE_SUFFIX_SIZE);
    out.extend_from_slice(key);
    out.extend_from_slice(&window_start.to_be_bytes());
    out.extend_from_slice(&seqnum.to_be_bytes());
    out
}

/// Splits a [`window_store_key`] into key bytes, window start and sequence number; `None`
/// if shorter than 12 bytes.
pub fn split_window_store_key(bytes: &[u8]) -> Option<(&[u8], i64, u32)> {
    let key_len = bytes.len().checked_sub(WINDOW_STORE_SUFFIX_SIZE)?;
    let suffix = &bytes[key_len..];
    Some((
        &bytes[..key_len],
        read_i64(suffix),
        read_u32(&suffix[TIMESTAMP_SIZE..]),
    ))
}

/// Encodes a session key as Kafka's `SessionKeySchema.toBinary` does: key bytes, 8-byte
/// session end, 8-byte session start (end first, so sessions of a key sort by end time).
pub fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + SESSION_SUFFIX_SIZE);
    out.extend_from_slice(key);
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&start.to_be_bytes());
    out
}

/// Splits a [`session_key`] into key bytes, session start and session end (note the
/// argument order matches [`session_key`], not the byte order); `None` if shorter than
/// 16 bytes.
pub fn split_session_key(bytes: &[u8]) -> Option<(&[u8], i64, i64)> {
    let key_len = bytes.len().checked_sub(SESSION_SUFFIX_SIZE)?;
    let suffix = &bytes[key_len..];
    let end = read_i64(suffix);
    let start = read_i64(&suffix[TIMESTAMP_SIZE..]);
    Some((&bytes[..key_len], start, end))
}

/// The smallest byte string greater than every string starting with `prefix`, or `None`
/// when there is none (empty prefix or all bytes `0xFF`). Used as an exclusive upper bound
/// for prefix scans.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|b| *b != 0xFF)?;
    let mut out = prefix[..=last].to_vec();
    out[last] += 1;
    Some(out)
}

/// The smallest byte string greater than `key`: an exclusive bound equivalent to an
/// inclusive bound of `key`.
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.extend_from_slice(key);
    out.push(0);
    out
}

/// An inclusive upper bound for every `key + suffix` where `key <= key_to` (byte order)
/// and `suffix <= max_suffix`, all suffixes having `max_suffix.len()` bytes.
///
/// A key that is a proper prefix of `key_to` followed by its suffix may sort *after*
/// `key_to + max_suffix`, so the bound is the largest of `key_to[..i] + max_suffix` over
/// every prefix length `i` (keys that differ from `key_to` at some byte sort before it
/// whatever their suffix). Kafka's `OrderedBytes.upperRange` solves the same problem.
pub(crate) fn composite_upper_bound(key_to: &[u8], max_suffix: &[u8]) -> Vec<u8> {
    let mut best: Vec<u8> = Vec::new();
    for i in 0..=key_to.len() {
        let mut candidate = Vec::with_capacity(i + max_suffix.len());
        candidate.extend_from_slice(&key_to[..i]);
        candidate.extend_from_slice(max_suffix);
        if candidate > best {
            best = candidate;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_key_is_key_then_big_endian_start() {
        let bytes = windowed_key(b"k1", 0x0102_0304_0506_0708);
        assert_eq!(bytes, b"k1\x01\x02\x03\x04\x05\x06\x07\x08");
        assert_eq!(
            split_windowed_key(&bytes),
            Some((&b"k1"[..], 0x0102_0304_0506_0708))
        );
        assert_eq!(split_windowed_key(b"short"), None);
        assert_eq!(
            split_windowed_key(&windowed_key(b"", 5)),
            Some((&b""[..], 5))
        );
    }

    #[test]
    fn window_store_key_appends_timestamp_and_seqnum() {
        let bytes = window_store_key(b"abc", 1_000, 7);
        assert_eq!(bytes.len(), 3 + 12);
        assert_eq!(&bytes[..3], b"abc");
        assert_eq!(&bytes[3..11], &1_000i64.to_be_bytes());
        assert_eq!(&bytes[11..], &[0, 0, 0, 7]);
        assert_eq!(
            split_window_store_key(&bytes),
            Some((&b"abc"[..], 1_000, 7))
        );
        assert_eq!(split_window_store_key(&[0u8; 11]), None);
    }

    #[test]
    fn session_key_puts_end_before_start() {
        let bytes = session_key(b"user", 10, 20);
        assert_eq!(&bytes[..4], b"user");
        assert_eq!(&bytes[4..12], &20i64.to_be_bytes());
        assert_eq!(&bytes[12..], &10i64.to_be_bytes());
        assert_eq!(split_session_key(&bytes), Some((&b"user"[..], 10, 20)));
        assert_eq!(split_session_key(&[0u8; 15]), None);
    }

    #[test]
    fn negative_timestamps_use_twos_complement_like_java() {
        let bytes = windowed_key(b"", -1);
        assert_eq!(bytes, vec![0xFF; 8]);
    }

    #[test]
    fn prefix_successor_increments_last_non_ff_byte() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xFF"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xFF\xFF"), None);
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(key_successor(b"a"), b"a\x00".to_vec());
    }

    #[test]
    fn composite_upper_bound_covers_keys_that_prefix_the_bound() {
        // Key "a" with a large suffix sorts after "a\x00" + a small suffix.
        let max_suffix = [0x00, 0x05, 0xFF];
        let bound = composite_upper_bound(b"a\x00", &max_suffix);
        let inside = [b"a".as_slice(), &[0x00, 0x05, 0x00]].concat();
        assert!(inside.as_slice() > [b"a\x00".as_slice(), &max_suffix].concat().as_slice());
        assert!(inside <= bound);
        // Keys after the bound key stay outside.
        let outside = [b"a\x01".as_slice(), &[0x00, 0x00, 0x00]].concat();
        assert!(outside > bound);
    }
}
