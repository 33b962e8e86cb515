//! `TestOutputTopic`: typed records out of the test driver.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use super::TopologyTestDriver;
use crate::record::Record;
use crate::serde::Serde;

/// Reads, in order, what a topology wrote to one topic of a [`TopologyTestDriver`]. Each
/// record is returned once.
///
/// Deserialization failures panic with the topic and error: they mean the test reads the
/// topic with other serdes than the topology wrote it with.
pub struct TestOutputTopic<'d, K, V> {
    driver: &'d TopologyTestDriver,
    topic: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<'d, K: 'static, V: 'static> TestOutputTopic<'d, K, V> {
    pub(crate) fn new(
        driver: &'d TopologyTestDriver,
        topic: &str,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        TestOutputTopic {
            driver,
            topic: topic.to_string(),
            key_serde,
            value_serde,
        }
    }

    fn decode(&self, produced: super::ProducedRecord) -> (i32, Record<K, V>) {
        let r = produced.record;
        let key = self
            .key_serde
            .deserialize(&self.topic, r.key.as_deref())
            .unwrap_or_else(|e| panic!("cannot deserialize a key of {}: {e}", self.topic));
        let value = self
            .value_serde
            .deserialize(&self.topic, r.value.as_deref())
            .unwrap_or_else(|e| panic!("cannot deserialize a value of {}: {e}", self.topic));
        (
            produced.partition,
            Record {
                key,
                value,
                timestamp: r.timestamp,
                headers: r.headers,
            },
        )
    }

    /// Whether no unread record is left.
    pub fn is_empty(&self) -> bool {
        self.queue_size() == 0
    }

    /// Number of unread records.
    pub fn queue_size(&self) -> usize {
        self.driver.output_len(&self.topic)
    }

    /// The next record, with timestamp and headers.
    pub fn read_record(&self) -> Option<Record<K, V>> {
        self.driver
            .pop_output(&self.topic)
            .map(|p| self.decode(p).1)
    }

    /// The next record's value.
    pub fn read_value(&self) -> Option<V> {
        self.read_record().map(|r| r.value)
    }

    /// The next record's key and value.
    pub fn read_key_value(&self) -> Option<(K, V)> {
        self.read_record().map(|r| (r.key, r.value))
    }

    /// Every unread record.
    pub fn read_records(&self) -> Vec<Record<K, V>> {
        self.read_records_with_partition()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// Every unread record with the partition it was written to.
    pub fn read_records_with_partition(&self) -> Vec<(i32, Record<K, V>)> {
        self.driver
            .take_output(&self.topic)
            .into_iter()
            .map(|p| self.decode(p))
            .collect()
    }

    /// Every unread value.
    pub fn read_values(&self) -> Vec<V> {
        self.read_records().into_iter().map(|r| r.value).collect()
    }

    /// Every unread key and value.
    pub fn read_key_values(&self) -> Vec<(K, V)> {
        self.read_records()
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect()
    }

    /// The latest value per key among the unread records.
    pub fn read_key_values_to_map(&self) -> HashMap<K, V>
    where
        K: Eq + Hash,
    {
        self.read_key_values().into_iter().collect()
    }
}
