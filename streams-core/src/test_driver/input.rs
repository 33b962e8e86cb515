//! `TestInputTopic`: typed records into the test driver.

use std::sync::Arc;
use std::time::Duration;

use std::cell::Cell;

use super::TopologyTestDriver;
use crate::record::Record;
use crate::runtime::StreamsError;
use crate::serde::Serde;

/// Pipes typed records into one topic of a [`TopologyTestDriver`].
///
/// Records without an explicit timestamp get the topic's current time, which starts at 0
/// and advances by the auto-advance step (default 0) after each record.
pub struct TestInputTopic<'d, K, V> {
    driver: &'d TopologyTestDriver,
    topic: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    time: Cell<i64>,
    advance: i64,
}

impl<'d, K: 'static, V: 'static> TestInputTopic<'d, K, V> {
    pub(crate) fn new(
        driver: &'d TopologyTestDriver,
        topic: &str,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        TestInputTopic {
            driver,
            topic: topic.to_string(),
            key_serde,
            value_serde,
            time: Cell::new(0),
            advance: 0,
        }
    }

    /// Starts record times at `start` and advances them by `step` after each record.
    pub fn with_time(mut self, start: i64, step: Duration) -> Self {
        self.time.set(start);
        self.advance = step.as_millis() as i64;
        self
    }

    /// Moves this topic's record time forward.
    pub fn advance_time(&self, by: Duration) {
        self.time.set(self.time.get() + by.as_millis() as i64);
    }

    fn next_time(&self) -> i64 {
        let t = self.time.get();
        self.time.set(t + self.advance);
        t
    }

    /// Pipes a record with the topic's current time and processes it.
    ///
    /// # Panics
    /// If serialization or processing fails (with the handler set to fail).
    pub fn pipe_input(&self, key: K, value: V) {
        let timestamp = self.next_time();
        self.pipe_record(Record::new(key, value, timestamp));
    }

    /// Pipes a record with the given timestamp and processes it.
    ///
    /// # Panics
    /// As [`pipe_input`](Self::pipe_input).
    pub fn pipe_input_at(&self, key: K, value: V, timestamp: i64) {
        self.pipe_record(Record::new(key, value, timestamp));
    }

    /// Pipes several key/value pairs, one after the other.
    ///
    /// # Panics
    /// As [`pipe_input`](Self::pipe_input).
    pub fn pipe_key_values(&self, records: impl IntoIterator<Item = (K, V)>) {
        for (k, v) in records {
            self.pipe_input(k, v);
        }
    }

    /// Pipes a full record (timestamp and headers included) and processes it.
    ///
    /// # Panics
    /// As [`pipe_input`](Self::pipe_input).
    pub fn pipe_record(&self, record: Record<K, V>) {
        self.try_pipe(record, None, true)
            .unwrap_or_else(|e| panic!("test driver: {e}"));
    }

    /// Like [`pipe_record`](Self::pipe_record), returning the error instead of panicking.
    pub fn try_pipe_record(&self, record: Record<K, V>) -> Result<(), StreamsError> {
        self.try_pipe(record, None, true)
    }

    /// Buffers a record on `partition` without processing it; call
    /// [`TopologyTestDriver::process_buffered`] to process everything buffered, lowest
    /// timestamp first within each task.
    ///
    /// # Panics
    /// If serialization fails.
    pub fn enqueue(&self, partition: i32, key: K, value: V, timestamp: i64) {
        self.try_pipe(Record::new(key, value, timestamp), Some(partition), false)
            .unwrap_or_else(|e| panic!("test driver: {e}"));
    }

    /// Pipes raw bytes (for example a record no serde can read) and processes them.
    pub fn pipe_raw(
        &self,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), StreamsError> {
        self.driver
            .pipe_raw(&self.topic, None, Record::new(key, value, timestamp), true)
    }

    fn try_pipe(
        &self,
        record: Record<K, V>,
        partition: Option<i32>,
        process: bool,
    ) -> Result<(), StreamsError> {
        let serialize_error = |source| {
            StreamsError::Config(format!(
                "cannot serialize a test record for topic {}: {source}",
                self.topic
            ))
        };
        let key = self
            .key_serde
            .serialize(&self.topic, &record.key)
            .map_err(serialize_error)?;
        let value = self
            .value_serde
            .serialize(&self.topic, &record.value)
            .map_err(serialize_error)?;
        let bytes = Record {
            key,
            value,
            timestamp: record.timestamp,
            headers: record.headers,
        };
        self.driver.pipe_raw(&self.topic, partition, bytes, process)
    }
}
