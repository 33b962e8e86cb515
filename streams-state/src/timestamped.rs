//! Kafka's `ValueAndTimestamp` byte layout: an 8-byte big-endian timestamp, then the value.

use crate::key_layout::TIMESTAMP_SIZE;

/// Encodes a value with its timestamp as Kafka's timestamped stores do (8-byte
/// big-endian timestamp followed by the value bytes).
pub fn timestamped_value(timestamp: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TIMESTAMP_SIZE + value.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Splits a [`timestamped_value`] into timestamp and value bytes; `None` if shorter than
/// 8 bytes.
pub fn split_timestamped_value(bytes: &[u8]) -> Option<(i64, &[u8])> {
    if bytes.len() < TIMESTAMP_SIZE {
        return None;
    }
    let (ts, value) = bytes.split_at(TIMESTAMP_SIZE);
    let mut buf = [0u8; TIMESTAMP_SIZE];
    buf.copy_from_slice(ts);
    Some((i64::from_be_bytes(buf), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_comes_first_big_endian() {
        let bytes = timestamped_value(258, b"v");
        assert_eq!(bytes, b"\x00\x00\x00\x00\x00\x00\x01\x02v");
        assert_eq!(split_timestamped_value(&bytes), Some((258, &b"v"[..])));
        assert_eq!(
            split_timestamped_value(&timestamped_value(-5, b"")),
            Some((-5, &b""[..]))
        );
        assert_eq!(split_timestamped_value(b"1234567"), None);
    }
}
