//! [`Nullable`]: reads and writes `Option<T>` with `None` as a null record, given a serde for `T`.

use super::{Serde, SerdeError};

/// Wraps a `Serde<T>` into a `Serde<Option<T>>`: `None` is a null key or value, `Some(v)` is
/// whatever the inner serde writes for `v`.
///
/// This is how Java serdes behave for a `null` object, and what tombstones (null values
/// that delete a key from a compacted topic or a table) need.
///
/// Pitfalls:
/// - If the inner serde itself writes null for some value (as [`UnitSerde`](super::UnitSerde)
///   does for `()`), `Some(v)` is written as null and reads back as `None`.
/// - Zero bytes are not null: `Nullable<StringSerde>` reads zero bytes as `Some("")`.
/// - Don't use `JsonSerde<Option<T>>` for this: it writes `None` as the 4 bytes `null`,
///   not as a null record.
///
/// ```
/// use streams_core::serde::{Nullable, Serde, StringSerde};
///
/// let serde = Nullable(StringSerde);
/// assert_eq!(serde.serialize("t", &None).unwrap(), None);
/// assert_eq!(serde.deserialize("t", None).unwrap(), None);
/// assert_eq!(serde.deserialize("t", Some(b"a")).unwrap(), Some("a".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nullable<S>(pub S);

impl<S> Nullable<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Nullable(inner)
    }

    /// The wrapped serde.
    pub fn inner(&self) -> &S {
        &self.0
    }
}

impl<T, S: Serde<T>> Serde<Option<T>> for Nullable<S> {
    fn serialize(&self, topic: &str, value: &Option<T>) -> Result<Option<Vec<u8>>, SerdeError> {
        match value {
            None => Ok(None),
            Some(v) => self.0.serialize(topic, v),
        }
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Option<T>, SerdeError> {
        match data {
            None => Ok(None),
            Some(bytes) => self.0.deserialize(topic, Some(bytes)).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::{I32Serde, StringSerde, UnitSerde};

    #[test]
    fn none_is_null_and_some_uses_inner_layout() {
        let serde = Nullable(I32Serde);
        assert_eq!(serde.serialize("t", &None).unwrap(), None);
        assert_eq!(
            serde.serialize("t", &Some(1)).unwrap(),
            Some(vec![0, 0, 0, 1])
        );
        assert_eq!(serde.deserialize("t", None).unwrap(), None);
        assert_eq!(
            serde.deserialize("t", Some(&[0, 0, 0, 2])).unwrap(),
            Some(2)
        );
    }

    #[test]
    fn zero_bytes_are_not_null() {
        let serde = Nullable::new(StringSerde);
        assert_eq!(
            serde.deserialize("t", Some(&[])).unwrap(),
            Some(String::new())
        );
        assert_eq!(
            serde.serialize("t", &Some(String::new())).unwrap(),
            Some(vec![])
        );
    }

    #[test]
    fn inner_errors_pass_through() {
        let serde = Nullable(I32Serde);
        assert!(matches!(
            serde.deserialize("t", Some(&[1, 2])),
            Err(SerdeError::Length {
                expected: 4,
                actual: 2
            })
        ));
        let serde = Nullable(StringSerde);
        assert!(matches!(
            serde.deserialize("t", Some(&[0xff])),
            Err(SerdeError::Invalid { .. })
        ));
    }

    #[test]
    fn inner_null_reads_back_as_none() {
        let serde = Nullable(UnitSerde);
        assert_eq!(serde.serialize("t", &Some(())).unwrap(), None);
        assert_eq!(serde.deserialize("t", None).unwrap(), None);
        assert_eq!(*serde.inner(), UnitSerde);
    }
}
