//! Source decoding: deserialize key and value, then extract the event time. A null key
//! the key serde cannot read is reported apart ([`DecodeError::NullKey`]): the task
//! drops such records as Kafka Streams' stateful operators do.

use std::sync::Arc;

use crate::dsl::options::Consumed;
use crate::graph::{boxed, Data};
use crate::record::Record;
use crate::topology::node::{DecodeError, Decoded, RawRecord, SourceDecoder};

/// The decoder a source node applies to each consumed record.
pub(crate) fn decoder<K: Data, V: Data>(consumed: &Consumed<K, V>) -> SourceDecoder {
    let key_serde = consumed.key_serde.clone();
    let value_serde = consumed.value_serde.clone();
    let extractor = consumed.timestamp_extractor.clone();
    Arc::new(move |raw: &RawRecord, partition_time: i64| {
        let key = key_serde
            .deserialize(&raw.topic, raw.key.as_deref())
            .map_err(|e| match raw.key {
                None => DecodeError::NullKey(e),
                Some(_) => DecodeError::Key(e),
            })?;
        let value = value_serde
            .deserialize(&raw.topic, raw.value.as_deref())
            .map_err(DecodeError::Value)?;
        let timestamp = match &extractor {
            Some(extract) => extract(&key, &value, raw.timestamp, partition_time),
            None => raw.timestamp,
        };
        if timestamp < 0 {
            return Err(DecodeError::InvalidTimestamp(timestamp));
        }
        Ok(Decoded {
            record: boxed(Record::new(key, value, timestamp).with_headers(raw.headers.clone())),
            timestamp,
        })
    })
}
