//! The schema-registry wire format: magic byte `0`, 4-byte big-endian schema id, payload.
//!
//! Every record written by a schema-registry serializer (Avro, and in the same way
//! Protobuf and JSON Schema) starts with this 5-byte header, so a reader can fetch the
//! writer's schema by id before decoding the payload.

use super::SerdeError;

/// The first byte of every schema-registry framed record.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the header: the magic byte and the schema id.
pub const HEADER_LEN: usize = 5;

/// Frames `payload` as written with schema `schema_id`: `[0, id (4 bytes BE), payload...]`.
///
/// ```
/// use streams_core::serde::wire_format::{frame, unframe};
///
/// let bytes = frame(258, &[0xaa]);
/// assert_eq!(bytes, [0, 0, 0, 1, 2, 0xaa]);
/// assert_eq!(unframe("t", &bytes).unwrap(), (258, &[0xaa][..]));
/// ```
pub fn frame(schema_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a framed record read from `topic` into its schema id and payload.
///
/// Fails with [`SerdeError::Invalid`] (format `"schema-registry frame"`) for fewer than
/// [`HEADER_LEN`] bytes, and with [`SerdeError::MagicByte`] when the first byte is not `0`
/// (typically a record written without the registry, e.g. plain Avro or JSON).
pub fn unframe<'a>(topic: &str, data: &'a [u8]) -> Result<(u32, &'a [u8]), SerdeError> {
    let Some((&magic, rest)) = data.split_first() else {
        return Err(too_short(data.len()));
    };
    if magic != MAGIC_BYTE {
        return Err(SerdeError::MagicByte {
            topic: topic.to_owned(),
            found: magic,
        });
    }
    let Some((id, payload)) = rest.split_first_chunk::<4>() else {
        return Err(too_short(data.len()));
    };
    Ok((u32::from_be_bytes(*id), payload))
}

fn too_short(len: usize) -> SerdeError {
    SerdeError::Invalid {
        format: "schema-registry frame",
        reason: format!("{len} bytes is shorter than the {HEADER_LEN}-byte header"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_with_magic_byte_and_big_endian_id() {
        assert_eq!(frame(1, &[]), [0, 0, 0, 0, 1]);
        assert_eq!(frame(0x0102_0304, &[9, 8]), [0, 1, 2, 3, 4, 9, 8]);
        assert_eq!(frame(u32::MAX, &[]), [0, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn unframes_id_and_payload() {
        assert_eq!(unframe("t", &[0, 0, 0, 0, 7]).unwrap(), (7, &[][..]));
        assert_eq!(
            unframe("t", &[0, 0, 0, 1, 0, 0x2a]).unwrap(),
            (256, &[0x2a][..])
        );
    }

    #[test]
    fn refuses_short_data_and_wrong_magic_byte() {
        for short in [&[][..], &[0], &[0, 0, 0, 1]] {
            let err = unframe("t", short).unwrap_err();
            assert!(matches!(err, SerdeError::Invalid { .. }), "{err}");
        }
        let err = unframe("orders", b"{\"a\":1}").unwrap_err();
        assert!(
            matches!(err, SerdeError::MagicByte { found: b'{', ref topic } if topic == "orders"),
            "{err}"
        );
        // A wrong magic byte is reported even when the record is also too short.
        assert!(matches!(
            unframe("t", &[1]),
            Err(SerdeError::MagicByte { found: 1, .. })
        ));
    }
}
