//! Windowed keys: a key with the window it belongs to, and serdes writing them in the
//! byte layouts of Kafka Streams' windowed serdes, so that Java applications can read
//! what we write and the other way round.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use streams_state::key_layout;

use crate::serde::{Serde, SerdeError};

/// A time span `[start, end]` in epoch milliseconds: a time window (`end = start +
/// window size`, exclusive as in Kafka) or a session (`end` = its last record, inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Start of the window, epoch milliseconds.
    pub start: i64,
    /// End of the window, epoch milliseconds.
    pub end: i64,
}

impl Window {
    /// The window `[start, end]`.
    pub fn new(start: i64, end: i64) -> Self {
        Window { start, end }
    }
}

/// A key and the window it belongs to: the key type of windowed aggregations and of
/// window and session store results, as Kafka Streams' `Windowed<K>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window of the key.
    pub window: Window,
}

impl<K> Windowed<K> {
    /// `key` in the window `[start, end]`.
    pub fn new(key: K, start: i64, end: i64) -> Self {
        Windowed {
            key,
            window: Window::new(start, end),
        }
    }
}

/// The inner key bytes of a windowed key; windowed keys cannot wrap null keys.
fn inner_key_bytes<K: 'static>(
    inner: &dyn Serde<K>,
    format: &'static str,
    topic: &str,
    key: &K,
) -> Result<Vec<u8>, SerdeError> {
    inner
        .serialize(topic, key)?
        .ok_or_else(|| SerdeError::Invalid {
            format,
            reason: "the key serialized to null; windowed keys need key bytes".into(),
        })
}

/// Serde of time-windowed keys in Kafka's `TimeWindowedSerde` layout: the key bytes,
/// then the window start as 8 big-endian bytes. The end is not written; deserializing
/// computes it from the window size (`start + size`, saturating), so the serde must know
/// the size.
///
/// ```
/// use std::time::Duration;
/// use streams_core::serde::{Serde, StringSerde};
/// use streams_core::state::{TimeWindowedSerde, Windowed};
///
/// let serde = TimeWindowedSerde::new(StringSerde, Duration::from_secs(60));
/// let bytes = serde.serialize("t", &Windowed::new("a".to_string(), 0, 60_000)).unwrap().unwrap();
/// assert_eq!(bytes, b"a\0\0\0\0\0\0\0\0");
/// assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap().window.end, 60_000);
/// ```
pub struct TimeWindowedSerde<K> {
    inner: Arc<dyn Serde<K>>,
    window_size_ms: i64,
    _key: PhantomData<fn() -> K>,
}

impl<K> TimeWindowedSerde<K> {
    /// Wraps the key serde `inner`, for windows `window_size` wide.
    pub fn new(inner: impl Serde<K>, window_size: Duration) -> Self {
        TimeWindowedSerde {
            inner: Arc::new(inner),
            window_size_ms: i64::try_from(window_size.as_millis()).unwrap_or(i64::MAX),
            _key: PhantomData,
        }
    }

    /// The window size in milliseconds.
    pub fn window_size_ms(&self) -> i64 {
        self.window_size_ms
    }
}

impl<K> Clone for TimeWindowedSerde<K> {
    fn clone(&self) -> Self {
        TimeWindowedSerde {
            inner: self.inner.clone(),
            window_size_ms: self.window_size_ms,
            _key: PhantomData,
        }
    }
}

impl<K: 'static> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        let key = inner_key_bytes(&*self.inner, "time-windowed key", topic, &value.key)?;
        Ok(Some(key_layout::windowed_key(&key, value.window.start)))
    }

    /// The base key's bytes: windows of one key land on one partition, where Kafka
    /// Streams' `WindowedStreamPartitioner` puts them.
    fn partition_bytes(
        &self,
        topic: &str,
        value: &Windowed<K>,
    ) -> Option<Result<Option<Vec<u8>>, SerdeError>> {
        Some(inner_key_bytes(&*self.inner, "time-windowed key", topic, &value.key).map(Some))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::Null {
            topic: topic.to_string(),
        })?;
        let (key, start) =
            key_layout::split_windowed_key(data).ok_or_else(|| SerdeError::Invalid {
                format: "time-windowed key",
                reason: format!(
                    "{} bytes, fewer than the {} of a window start",
                    data.len(),
                    key_layout::TIMESTAMP_SIZE
                ),
            })?;
        let key = self.inner.deserialize(topic, Some(key))?;
        Ok(Windowed::new(
            key,
            start,
            start.saturating_add(self.window_size_ms),
        ))
    }
}

/// Serde of session-windowed keys in Kafka's `SessionWindowedSerde` layout: the key
/// bytes, then the session end and the session start, each as 8 big-endian bytes.
///
/// ```
/// use streams_core::serde::{Serde, StringSerde};
/// use streams_core::state::{SessionWindowedSerde, Windowed};
///
/// let serde = SessionWindowedSerde::new(StringSerde);
/// let session = Windowed::new("a".to_string(), 5, 9);
/// let bytes = serde.serialize("t", &session).unwrap().unwrap();
/// assert_eq!(&bytes[1..9], &9i64.to_be_bytes());
/// assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), session);
/// ```
pub struct SessionWindowedSerde<K> {
    inner: Arc<dyn Serde<K>>,
}

impl<K> SessionWindowedSerde<K> {
    /// Wraps the key serde `inner`.
    pub fn new(inner: impl Serde<K>) -> Self {
        SessionWindowedSerde {
            inner: Arc::new(inner),
        }
    }
}

impl<K> Clone for SessionWindowedSerde<K> {
    fn clone(&self) -> Self {
        SessionWindowedSerde {
            inner: self.inner.clone(),
        }
    }
}

impl<K: 'static> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        let key = inner_key_bytes(&*self.inner, "session-windowed key", topic, &value.key)?;
        Ok(Some(key_layout::session_key(
            &key,
            value.window.start,
            value.window.end,
        )))
    }

    /// The base key's bytes: windows of one key land on one partition, where Kafka
    /// Streams' `WindowedStreamPartitioner` puts them.
    fn partition_bytes(
        &self,
        topic: &str,
        value: &Windowed<K>,
    ) -> Option<Result<Option<Vec<u8>>, SerdeError>> {
        Some(inner_key_bytes(&*self.inner, "session-windowed key", topic, &value.key).map(Some))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::Null {
            topic: topic.to_string(),
        })?;
        let (key, start, end) =
            key_layout::split_session_key(data).ok_or_else(|| SerdeError::Invalid {
                format: "session-windowed key",
                reason: format!(
                    "{} bytes, fewer than the {} of a session end and start",
                    data.len(),
                    key_layout::SESSION_SUFFIX_SIZE
                ),
            })?;
        let key = self.inner.deserialize(topic, Some(key))?;
        Ok(Windowed::new(key, start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::{I64Serde, StringSerde};

    #[test]
    fn time_windowed_keys_use_kafkas_layout_and_the_size_for_the_end() {
        let serde = TimeWindowedSerde::new(I64Serde, Duration::from_millis(500));
        let key = Windowed::new(7i64, 1_000, 1_500);
        let bytes = serde.serialize("t", &key).unwrap().unwrap();
        let mut expected = 7i64.to_be_bytes().to_vec();
        expected.extend_from_slice(&1_000i64.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), key);

        // The end saturates instead of overflowing, as Kafka's does.
        let serde = TimeWindowedSerde::new(StringSerde, Duration::from_millis(500));
        let late = serde
            .deserialize("t", Some(&key_layout::windowed_key(b"k", i64::MAX - 1)))
            .unwrap();
        assert_eq!(late.window.end, i64::MAX);
    }

    #[test]
    fn session_windowed_keys_put_the_end_before_the_start() {
        let serde = SessionWindowedSerde::new(StringSerde);
        let key = Windowed::new("user".to_string(), 10, 20);
        let bytes = serde.serialize("t", &key).unwrap().unwrap();
        assert_eq!(bytes, key_layout::session_key(b"user", 10, 20));
        assert_eq!(&bytes[4..12], &20i64.to_be_bytes());
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), key);
    }

    #[test]
    fn short_or_null_data_is_refused() {
        let time = TimeWindowedSerde::new(StringSerde, Duration::from_secs(1));
        assert!(matches!(
            time.deserialize("t", Some(b"short")),
            Err(SerdeError::Invalid { .. })
        ));
        assert!(matches!(
            time.deserialize("t", None),
            Err(SerdeError::Null { .. })
        ));
        let session = SessionWindowedSerde::new(StringSerde);
        assert!(matches!(
            session.deserialize("t", Some(&[0u8; 15])),
            Err(SerdeError::Invalid { .. })
        ));
    }
}
