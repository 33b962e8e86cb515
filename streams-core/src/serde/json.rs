//! [`JsonSerde`]: any `serde` type as UTF-8 JSON text, via `serde_json`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Serde, SerdeError};

/// Serializes `T` as compact UTF-8 JSON with `serde_json`, without schema or framing.
///
/// The bytes are plain JSON text, readable by any JSON consumer (for instance Kafka
/// Connect's `JsonConverter` with `schemas.enable=false`). It is *not* the
/// schema-registry "JSON Schema" wire format, which adds a magic byte and schema id.
///
/// Pitfalls:
/// - A null record is refused with [`SerdeError::Null`]; use
///   [`Nullable<JsonSerde<T>>`](super::Nullable) for tombstones. `JsonSerde<Option<T>>`
///   writes `None` as the four bytes `null`, which is not a null record.
/// - Trailing whitespace after the JSON value is accepted; any other trailing bytes are not.
/// - Maps with non-string keys fail to serialize (JSON object keys are strings).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use streams_core::serde::{JsonSerde, Serde};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Order { id: u64, item: String }
///
/// let serde = JsonSerde::<Order>::new();
/// let order = Order { id: 7, item: "tea".into() };
/// let bytes = serde.serialize("orders", &order).unwrap();
/// assert_eq!(bytes.as_deref(), Some(&br#"{"id":7,"item":"tea"}"#[..]));
/// assert_eq!(serde.deserialize("orders", bytes.as_deref()).unwrap(), order);
/// ```
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        serde_json::to_vec(value)
            .map(Some)
            .map_err(|e| SerdeError::Invalid {
                format: "json",
                reason: e.to_string(),
            })
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::Null {
            topic: topic.to_owned(),
        })?;
        serde_json::from_slice(data).map_err(|e| SerdeError::Invalid {
            format: "json",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
            id: 42,
            item: "héllo".into(),
            tags: vec!["a".into()],
            note: None,
        }
    }

    #[test]
    fn round_trips_and_writes_plain_json() {
        let serde = JsonSerde::<Order>::new();
        let bytes = serde.serialize("t", &order()).unwrap().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"id":42,"item":"héllo","tags":["a"],"note":null}"#
        );
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), order());
    }

    #[test]
    fn refuses_garbage_truncated_and_null() {
        let serde = JsonSerde::<Order>::default();
        let bytes = serde.serialize("t", &order()).unwrap().unwrap();
        for bad in [
            &bytes[..bytes.len() - 1],
            &[0xff, 0x00, 0x12][..],
            b"",
            b"{\"id\":\"x\"}",
            b"{} trailing",
        ] {
            let err = serde.deserialize("t", Some(bad)).unwrap_err();
            assert!(
                matches!(err, SerdeError::Invalid { format: "json", .. }),
                "{err}"
            );
        }
        assert!(matches!(
            serde.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
    }

    #[test]
    fn non_string_map_keys_fail_to_serialize_without_panic() {
        let serde = JsonSerde::<BTreeMap<(u8, u8), u8>>::new();
        let map = BTreeMap::from([((1, 2), 3)]);
        assert!(matches!(
            serde.serialize("t", &map),
            Err(SerdeError::Invalid { format: "json", .. })
        ));
    }

    #[test]
    fn debug_names_the_type() {
        assert!(format!("{:?}", JsonSerde::<u8>::new()).contains("u8"));
    }
}
