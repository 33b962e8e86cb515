//! Serdes for strings, bytes, fixed-width numbers and unit, byte-compatible with Kafka's Java serdes.
//!
//! Each serde writes exactly the bytes Kafka's Java serializer of the same type writes, so
//! topics can be shared with Java applications: numbers are fixed-width big-endian, strings
//! are UTF-8 without length prefix or terminator. Where Java maps a `null` object to a null
//! record, these serdes (whose types cannot be null) refuse a null record with
//! [`SerdeError::Null`]; wrap them in [`Nullable`](super::Nullable) to read and write `Option<T>`.

use super::{Serde, SerdeError};

fn require<'a>(topic: &str, data: Option<&'a [u8]>) -> Result<&'a [u8], SerdeError> {
    data.ok_or_else(|| SerdeError::Null {
        topic: topic.to_owned(),
    })
}

fn fixed<const N: usize>(topic: &str, data: Option<&[u8]>) -> Result<[u8; N], SerdeError> {
    let data = require(topic, data)?;
    data.try_into().map_err(|_| SerdeError::Length {
        expected: N,
        actual: data.len(),
    })
}

/// UTF-8 strings, as Java's `Serdes.String()` with its default `UTF8` encoding.
///
/// Zero bytes decode to `""`, which is not the same as a null record (refused with
/// [`SerdeError::Null`]).
///
/// Pitfall: Java's `StringDeserializer` silently replaces invalid UTF-8 with U+FFFD; this
/// serde refuses it with [`SerdeError::Invalid`] instead, so a record Java reads may fail here.
///
/// ```
/// use streams_core::serde::{Serde, StringSerde};
///
/// let bytes = StringSerde.serialize("t", &"héllo".to_owned()).unwrap();
/// assert_eq!(bytes.as_deref(), Some("héllo".as_bytes()));
/// assert_eq!(StringSerde.deserialize("t", bytes.as_deref()).unwrap(), "héllo");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(value.as_bytes().to_vec()))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<String, SerdeError> {
        let data = require(topic, data)?;
        String::from_utf8(data.to_vec()).map_err(|e| SerdeError::Invalid {
            format: "utf-8",
            reason: e.utf8_error().to_string(),
        })
    }
}

/// Raw bytes passed through unchanged, as Java's `Serdes.ByteArray()`.
///
/// An empty `Vec` is written as zero bytes, not as a null record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(value.clone()))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Vec<u8>, SerdeError> {
        require(topic, data).map(<[u8]>::to_vec)
    }
}

/// 32-bit signed integers as 4 big-endian bytes, as Java's `Serdes.Integer()`.
///
/// Any length other than 4 is refused with [`SerdeError::Length`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct I32Serde;

impl Serde<i32> for I32Serde {
    fn serialize(&self, _topic: &str, value: &i32) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(value.to_be_bytes().to_vec()))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i32, SerdeError> {
        fixed::<4>(topic, data).map(i32::from_be_bytes)
    }
}

/// 64-bit signed integers as 8 big-endian bytes, as Java's `Serdes.Long()`.
///
/// Any length other than 8 is refused with [`SerdeError::Length`].
///
/// ```
/// use streams_core::serde::{I64Serde, Serde};
///
/// let bytes = I64Serde.serialize("t", &-1).unwrap().unwrap();
/// assert_eq!(bytes, [0xff; 8]);
/// assert!(I64Serde.deserialize("t", Some(&[0, 1])).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct I64Serde;

impl Serde<i64> for I64Serde {
    fn serialize(&self, _topic: &str, value: &i64) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(value.to_be_bytes().to_vec()))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i64, SerdeError> {
        fixed::<8>(topic, data).map(i64::from_be_bytes)
    }
}

/// 64-bit floats as the 8 big-endian bytes of Java's `Double.doubleToLongBits`, as
/// Java's `Serdes.Double()`.
///
/// Like `doubleToLongBits`, every NaN is written as the canonical NaN
/// `0x7ff8_0000_0000_0000`, so NaN payloads do not survive a round trip (NaN stays NaN).
/// Any NaN bit pattern is accepted when reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct F64Serde;

/// The bits Java's `Double.doubleToLongBits` gives every NaN.
const JAVA_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

impl Serde<f64> for F64Serde {
    fn serialize(&self, _topic: &str, value: &f64) -> Result<Option<Vec<u8>>, SerdeError> {
        let bits = if value.is_nan() {
            JAVA_CANONICAL_NAN
        } else {
            value.to_bits()
        };
        Ok(Some(bits.to_be_bytes().to_vec()))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<f64, SerdeError> {
        fixed::<8>(topic, data).map(|b| f64::from_bits(u64::from_be_bytes(b)))
    }
}

/// The unit type as an always-null record, as Java's `Serdes.Void()`.
///
/// Serializing `()` writes a null key or value. Reading accepts only a null record: any
/// bytes, even zero bytes, are refused with [`SerdeError::Invalid`], as Java's
/// `VoidDeserializer` refuses non-null data. Useful for keyless topics.
///
/// ```
/// use streams_core::serde::{Serde, UnitSerde};
///
/// assert_eq!(UnitSerde.serialize("t", &()).unwrap(), None);
/// assert!(UnitSerde.deserialize("t", None).is_ok());
/// assert!(UnitSerde.deserialize("t", Some(&[])).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _topic: &str, _value: &()) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(None)
    }

    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<(), SerdeError> {
        match data {
            None => Ok(()),
            Some(bytes) => Err(SerdeError::Invalid {
                format: "unit",
                reason: format!("expected a null record, got {} bytes", bytes.len()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser<T, S: Serde<T>>(serde: &S, value: T) -> Option<Vec<u8>> {
        serde.serialize("topic", &value).expect("serialize")
    }

    #[test]
    fn string_is_plain_utf8() {
        let bytes = ser(&StringSerde, "héllo".to_owned()).unwrap();
        assert_eq!(bytes, [0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f]);
        assert_eq!(StringSerde.deserialize("t", Some(&bytes)).unwrap(), "héllo");
        assert_eq!(ser(&StringSerde, String::new()), Some(vec![]));
        assert_eq!(StringSerde.deserialize("t", Some(&[])).unwrap(), "");
    }

    #[test]
    fn string_refuses_invalid_utf8_and_null() {
        let err = StringSerde
            .deserialize("t", Some(&[0x68, 0xc3]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                SerdeError::Invalid {
                    format: "utf-8",
                    ..
                }
            ),
            "{err}"
        );
        let err = StringSerde.deserialize("orders", None).unwrap_err();
        assert!(matches!(err, SerdeError::Null { ref topic } if topic == "orders"));
    }

    #[test]
    fn bytes_pass_through() {
        let bytes = ser(&BytesSerde, vec![0, 1, 0xff]).unwrap();
        assert_eq!(bytes, [0, 1, 0xff]);
        assert_eq!(BytesSerde.deserialize("t", Some(&bytes)).unwrap(), bytes);
        assert_eq!(ser(&BytesSerde, vec![]), Some(vec![]));
        assert!(matches!(
            BytesSerde.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
    }

    #[test]
    fn i32_matches_java_integer_serializer() {
        assert_eq!(ser(&I32Serde, 1).unwrap(), [0, 0, 0, 1]);
        assert_eq!(ser(&I32Serde, -1).unwrap(), [0xff; 4]);
        assert_eq!(ser(&I32Serde, 0x0102_0304).unwrap(), [1, 2, 3, 4]);
        assert_eq!(ser(&I32Serde, i32::MIN).unwrap(), [0x80, 0, 0, 0]);
        for v in [0, 1, -1, i32::MIN, i32::MAX, 123_456] {
            let bytes = ser(&I32Serde, v).unwrap();
            assert_eq!(I32Serde.deserialize("t", Some(&bytes)).unwrap(), v);
        }
    }

    #[test]
    fn i64_matches_java_long_serializer() {
        assert_eq!(ser(&I64Serde, 1).unwrap(), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(ser(&I64Serde, -1).unwrap(), [0xff; 8]);
        assert_eq!(
            ser(&I64Serde, 0x0102_0304_0506_0708).unwrap(),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        for v in [0, 1, -1, i64::MIN, i64::MAX, 1_700_000_000_000] {
            let bytes = ser(&I64Serde, v).unwrap();
            assert_eq!(I64Serde.deserialize("t", Some(&bytes)).unwrap(), v);
        }
    }

    #[test]
    fn f64_matches_java_double_to_long_bits() {
        // Double.doubleToLongBits(1.5) == 0x3FF8000000000000
        assert_eq!(ser(&F64Serde, 1.5).unwrap(), [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        // Double.doubleToLongBits(-0.0) == 0x8000000000000000
        assert_eq!(ser(&F64Serde, -0.0).unwrap(), [0x80, 0, 0, 0, 0, 0, 0, 0]);
        // Every NaN collapses to Java's canonical NaN.
        let odd_nan = f64::from_bits(0x7ff0_0000_0000_0001);
        assert!(odd_nan.is_nan());
        assert_eq!(
            ser(&F64Serde, odd_nan).unwrap(),
            [0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        for v in [0.0, 1.5, -2.25, f64::MAX, f64::MIN_POSITIVE, f64::INFINITY] {
            let bytes = ser(&F64Serde, v).unwrap();
            assert_eq!(F64Serde.deserialize("t", Some(&bytes)).unwrap(), v);
        }
        let nan = ser(&F64Serde, f64::NAN).unwrap();
        assert!(F64Serde.deserialize("t", Some(&nan)).unwrap().is_nan());
    }

    #[test]
    fn fixed_width_refuses_wrong_length_and_null() {
        for bad in [&[][..], &[1, 2, 3], &[1, 2, 3, 4, 5]] {
            let err = I32Serde.deserialize("t", Some(bad)).unwrap_err();
            assert!(
                matches!(err, SerdeError::Length { expected: 4, actual } if actual == bad.len()),
                "{err}"
            );
        }
        for bad in [&[][..], &[0; 7], &[0; 9]] {
            assert!(matches!(
                I64Serde.deserialize("t", Some(bad)),
                Err(SerdeError::Length { expected: 8, .. })
            ));
            assert!(matches!(
                F64Serde.deserialize("t", Some(bad)),
                Err(SerdeError::Length { expected: 8, .. })
            ));
        }
        assert!(matches!(
            I32Serde.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
        assert!(matches!(
            I64Serde.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
        assert!(matches!(
            F64Serde.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
    }

    #[test]
    fn unit_is_java_void() {
        assert_eq!(ser(&UnitSerde, ()), None);
        UnitSerde.deserialize("t", None).unwrap();
        for bad in [&[][..], &[0]] {
            let err = UnitSerde.deserialize("t", Some(bad)).unwrap_err();
            assert!(
                matches!(err, SerdeError::Invalid { format: "unit", .. }),
                "{err}"
            );
        }
    }
}
