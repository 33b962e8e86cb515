//! `Change`: what flows between table operators, the new value of a key and the one it
//! replaced, and its serde for repartition topics.

use std::sync::Arc;

use crate::serde::{Serde, SerdeError};

/// An update of a table row: the value after it and the value before it (`None` for an
/// insert; `new` is `None` for a delete). Table operators need the old value to undo
/// its contribution (subtractors, joins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<V> {
    /// The value after the update; `None` for a delete.
    pub new: Option<V>,
    /// The value before the update; `None` for an insert.
    pub old: Option<V>,
}

impl<V> Change<V> {
    /// An update from `old` to `new`.
    pub fn new(new: Option<V>, old: Option<V>) -> Self {
        Change { new, old }
    }

    /// Applies `f` to both values.
    pub fn map<U>(self, mut f: impl FnMut(V) -> U) -> Change<U> {
        Change {
            new: self.new.map(&mut f),
            old: self.old.map(f),
        }
    }
}

/// Writes a `Change` as `[flags][4-byte length of new][new][old]`, where `flags` bit 0
/// says `new` is present and bit 1 says `old` is. Used on internal repartition topics of
/// table groupings.
pub(crate) struct ChangeSerde<V> {
    inner: Arc<dyn Serde<V>>,
}

impl<V> ChangeSerde<V> {
    pub fn new(inner: Arc<dyn Serde<V>>) -> Self {
        ChangeSerde { inner }
    }
}

impl<V: 'static> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, topic: &str, change: &Change<V>) -> Result<Option<Vec<u8>>, SerdeError> {
        let new = change
            .new
            .as_ref()
            .map(|v| self.inner.serialize(topic, v))
            .transpose()?
            .flatten();
        let old = change
            .old
            .as_ref()
            .map(|v| self.inner.serialize(topic, v))
            .transpose()?
            .flatten();
        let flags = u8::from(new.is_some()) | (u8::from(old.is_some()) << 1);
        let new = new.unwrap_or_default();
        let old = old.unwrap_or_default();
        let mut out = Vec::with_capacity(5 + new.len() + old.len());
        out.push(flags);
        out.extend_from_slice(&(new.len() as u32).to_be_bytes());
        out.extend_from_slice(&new);
        out.extend_from_slice(&old);
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Change<V>, SerdeError> {
        let bytes = bytes.ok_or_else(|| SerdeError::Null {
            topic: topic.to_string(),
        })?;
        if bytes.len() < 5 {
            return Err(SerdeError::Length {
                expected: 5,
                actual: bytes.len(),
            });
        }
        let flags = bytes[0];
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let rest = &bytes[5..];
        if rest.len() < len {
            return Err(SerdeError::Length {
                expected: 5 + len,
                actual: bytes.len(),
            });
        }
        let (new, old) = rest.split_at(len);
        let new = if flags & 1 != 0 {
            Some(self.inner.deserialize(topic, Some(new))?)
        } else {
            None
        };
        let old = if flags & 2 != 0 {
            Some(self.inner.deserialize(topic, Some(old))?)
        } else {
            None
        };
        Ok(Change { new, old })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::StringSerde;

    #[test]
    fn changes_round_trip_with_any_side_missing() {
        let serde = ChangeSerde::new(Arc::new(StringSerde));
        for change in [
            Change::new(Some("new".to_string()), Some("old".to_string())),
            Change::new(Some("new".to_string()), None),
            Change::new(None, Some("old".to_string())),
            Change::new(Some(String::new()), None),
        ] {
            let bytes = serde.serialize("t", &change).unwrap();
            assert_eq!(serde.deserialize("t", bytes.as_deref()).unwrap(), change);
        }
        assert!(serde
            .deserialize("t", Some(&[1, 0, 0, 0, 9, b'x']))
            .is_err());
    }
}
