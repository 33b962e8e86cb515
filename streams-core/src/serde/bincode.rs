//! [`BincodeSerde`]: any `serde` type in bincode 2's compact binary encoding.

use std::fmt;
use std::marker::PhantomData;

use ::bincode::config::{self, Configuration, Limit};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Serde, SerdeError};

/// Most bytes a single decode may claim for strings and byte buffers (64 MiB).
///
/// Without a limit, a garbage length prefix would make bincode allocate whatever it says
/// before noticing the data is too short. Records larger than this cannot be read.
pub const BINCODE_DECODE_LIMIT: usize = 64 * 1024 * 1024;

fn encode_config() -> Configuration {
    config::standard()
}

fn decode_config(
) -> Configuration<config::LittleEndian, config::Varint, Limit<BINCODE_DECODE_LIMIT>> {
    config::standard().with_limit::<BINCODE_DECODE_LIMIT>()
}

/// Serializes `T` with bincode 2 (`config::standard()`: little-endian, variable-length
/// integers) through its `serde` support. Compact and fast, for topics only Rust reads.
///
/// The format has no schema and no field names: reordering, adding or removing fields
/// of `T` makes old records unreadable (or, worse, misread). Use JSON or Avro for data
/// whose type evolves or that other languages read.
///
/// Decoding refuses trailing bytes after the value and any record whose strings or byte
/// buffers claim more than [`BINCODE_DECODE_LIMIT`] bytes.
///
/// Pitfall: types whose `Deserialize` needs `deserialize_any` (`serde_json::Value`,
/// `#[serde(flatten)]`, `#[serde(untagged)]`, internally tagged enums) cannot be decoded;
/// they fail with [`SerdeError::Invalid`].
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use streams_core::serde::{BincodeSerde, Serde};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Reading { sensor: u32, celsius: f32 }
///
/// let serde = BincodeSerde::<Reading>::new();
/// let reading = Reading { sensor: 3, celsius: 21.5 };
/// let bytes = serde.serialize("readings", &reading).unwrap();
/// assert_eq!(serde.deserialize("readings", bytes.as_deref()).unwrap(), reading);
/// ```
pub struct BincodeSerde<T>(PhantomData<fn() -> T>);

impl<T> BincodeSerde<T> {
    /// A bincode serde for `T`.
    pub fn new() -> Self {
        BincodeSerde(PhantomData)
    }
}

impl<T> Default for BincodeSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for BincodeSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for BincodeSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BincodeSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serde<T> for BincodeSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        ::bincode::serde::encode_to_vec(value, encode_config())
            .map(Some)
            .map_err(|e| SerdeError::Invalid {
                format: "bincode",
                reason: e.to_string(),
            })
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::Null {
            topic: topic.to_owned(),
        })?;
        let (value, read) =
            ::bincode::serde::decode_from_slice(data, decode_config()).map_err(|e| {
                SerdeError::Invalid {
                    format: "bincode",
                    reason: e.to_string(),
                }
            })?;
        if read != data.len() {
            return Err(SerdeError::Invalid {
                format: "bincode",
                reason: format!(
                    "{} trailing bytes after the value ({read} of {} bytes read)",
                    data.len() - read,
                    data.len()
                ),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Order {
        id: u64,
        item: String,
        tags: Vec<String>,
        note: Option<String>,
    }

    fn order() -> Order {
        Order {
            id: 300,
            item: "héllo".into(),
            tags: vec!["a".into(), "b".into()],
            note: Some("n".into()),
        }
    }

    #[test]
    fn round_trips() {
        let serde = BincodeSerde::<Order>::new();
        let bytes = serde.serialize("t", &order()).unwrap().unwrap();
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), order());
    }

    #[test]
    fn uses_standard_config_layout() {
        // Varint: 300 = 0xfb + u16 little-endian; string = varint length + UTF-8.
        let bytes = BincodeSerde::<(u64, String)>::new()
            .serialize("t", &(300, "hi".into()))
            .unwrap()
            .unwrap();
        assert_eq!(bytes, [0xfb, 0x2c, 0x01, 2, b'h', b'i']);
    }

    #[test]
    fn refuses_trailing_truncated_garbage_and_null() {
        let serde = BincodeSerde::<Order>::default();
        let bytes = serde.serialize("t", &order()).unwrap().unwrap();
        let mut trailing = bytes.clone();
        trailing.push(0);
        let err = serde.deserialize("t", Some(&trailing)).unwrap_err();
        assert!(
            matches!(err, SerdeError::Invalid { format: "bincode", ref reason } if reason.contains("trailing")),
            "{err}"
        );
        for cut in 0..bytes.len() {
            assert!(matches!(
                serde.deserialize("t", Some(&bytes[..cut])),
                Err(SerdeError::Invalid {
                    format: "bincode",
                    ..
                })
            ));
        }
        assert!(matches!(
            serde.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // id = 1, then a string whose varint length claims u64::MAX bytes.
        let garbage = [1, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let err = BincodeSerde::<Order>::new()
            .deserialize("t", Some(&garbage))
            .unwrap_err();
        assert!(
            matches!(
                err,
                SerdeError::Invalid {
                    format: "bincode",
                    ..
                }
            ),
            "{err}"
        );
        // Just over the limit, still only a few bytes of input.
        let mut over = vec![1, 0xfc];
        over.extend_from_slice(&(BINCODE_DECODE_LIMIT as u32 + 1).to_le_bytes());
        assert!(BincodeSerde::<Order>::new()
            .deserialize("t", Some(&over))
            .is_err());
    }

    #[test]
    fn deserialize_any_types_fail_cleanly() {
        let serde = BincodeSerde::<serde_json::Value>::new();
        let bytes = serde
            .serialize("t", &serde_json::json!({"a": 1}))
            .unwrap()
            .unwrap();
        assert!(matches!(
            serde.deserialize("t", Some(&bytes)),
            Err(SerdeError::Invalid {
                format: "bincode",
                ..
            })
        ));
    }
}
