//! A broker-free driver for unit tests of topologies, in the spirit of Kafka Streams'
//! `TopologyTestDriver`: pipe records into input topics, read what the topology wrote to
//! output topics, and move the wall clock to fire punctuators.
//!
//! The driver runs the same tasks as the runtime: one per sub-topology and partition,
//! timestamp-ordered input, stream-time and wall-clock punctuation, the same error
//! handlers. Records written to topics the topology itself reads (repartition topics, or
//! any user topic) are fed back in, as a broker would. Keys are partitioned with murmur2
//! like Kafka's Java clients.
//!
//! ```
//! use streams_core::serde::StringSerde;
//! use streams_core::test_driver::TopologyTestDriver;
//! use streams_core::{Consumed, Produced, StreamsBuilder};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("in", Consumed::with(StringSerde, StringSerde))
//!     .filter(|_k, v: &String| !v.is_empty())
//!     .map_values(|v: String| v.to_uppercase())
//!     .to("out", Produced::with(StringSerde, StringSerde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap());
//!
//! let input = driver.input_topic("in", StringSerde, StringSerde);
//! let output = driver.output_topic("out", StringSerde, StringSerde);
//! input.pipe_input("k".to_string(), "hello".to_string());
//! input.pipe_input("k".to_string(), String::new());
//! assert_eq!(output.read_key_values(), vec![("k".to_string(), "HELLO".to_string())]);
//! ```

mod input;
mod output;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use streams_state::CacheBudget;

pub use input::TestInputTopic;
pub use output::TestOutputTopic;

use crate::graph::{OutgoingRecord, RecordCollector};
use crate::processor::{ProcessError, PunctuationType, TaskId};
use crate::record::Record;
use crate::runtime::partitioner::partition_for_key;
use crate::runtime::task::{StreamTask, TaskHandlers};
use crate::runtime::{
    DeserializationErrorHandler, ProcessingErrorHandler, ReadOnlyKeyValueStore,
    ReadOnlySessionStore, ReadOnlyWindowStore, StreamsError,
};
use crate::serde::Serde;
use crate::state::global::GlobalStores;
use crate::state::task_stores::TaskStores;
use crate::state::Windowed;
use crate::topology::node::RawRecord;
use crate::topology::Topology;

/// Settings of a [`TopologyTestDriver`].
#[derive(Clone, Debug)]
pub struct TestDriverConfig {
    /// Application id (prefix of internal topic names). Default `test-driver`.
    pub application_id: String,
    /// Partition counts of topics; unlisted topics have one partition (internal topics
    /// take the count of the sub-topology writing them).
    pub partitions: HashMap<String, i32>,
    /// Initial wall-clock time in ms. Default 0.
    pub wall_clock_start: i64,
    /// Deserialization error handler. Default: fail.
    pub deserialization_error_handler: DeserializationErrorHandler,
    /// Processing error handler. Default: fail.
    pub processing_error_handler: ProcessingErrorHandler,
    /// The record cache shared by the stores, in bytes; 0 disables it. Default 10 MiB,
    /// as the runtime. The driver commits after every record (and punctuation), as
    /// Kafka's does, so every update is still seen downstream: the cache only merges
    /// updates of a key made while one record is processed.
    pub store_cache_max_bytes: usize,
}

impl Default for TestDriverConfig {
    fn default() -> Self {
        TestDriverConfig {
            application_id: "test-driver".into(),
            partitions: HashMap::new(),
            wall_clock_start: 0,
            deserialization_error_handler: DeserializationErrorHandler::Fail,
            processing_error_handler: ProcessingErrorHandler::Fail,
            store_cache_max_bytes: crate::runtime::DEFAULT_STORE_CACHE_MAX_BYTES,
        }
    }
}

impl TestDriverConfig {
    /// Sets the record cache of the stores (0 disables it).
    pub fn with_store_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.store_cache_max_bytes = bytes;
        self
    }

    /// Declares that `topic` has `partitions` partitions.
    pub fn with_partitions(mut self, topic: impl Into<String>, partitions: i32) -> Self {
        self.partitions.insert(topic.into(), partitions.max(1));
        self
    }

    /// Sets the application id.
    pub fn with_application_id(mut self, id: impl Into<String>) -> Self {
        self.application_id = id.into();
        self
    }

    /// Sets the deserialization error handler.
    pub fn with_deserialization_error_handler(
        mut self,
        handler: DeserializationErrorHandler,
    ) -> Self {
        self.deserialization_error_handler = handler;
        self
    }

    /// Sets the processing error handler.
    pub fn with_processing_error_handler(mut self, handler: ProcessingErrorHandler) -> Self {
        self.processing_error_handler = handler;
        self
    }

    /// Sets the initial wall-clock time.
    pub fn with_wall_clock_start(mut self, ms: i64) -> Self {
        self.wall_clock_start = ms;
        self
    }
}

/// A record the topology wrote, with the partition it landed on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProducedRecord {
    pub partition: i32,
    pub offset: i64,
    pub record: OutgoingRecord,
}

/// Collects what sinks write, and knows the partition counts.
struct DriverCollector {
    pending: RefCell<Vec<OutgoingRecord>>,
    partitions: HashMap<String, i32>,
}

impl RecordCollector for DriverCollector {
    fn send(&self, record: OutgoingRecord) -> Result<(), ProcessError> {
        self.pending.borrow_mut().push(record);
        Ok(())
    }

    fn partition_count(&self, topic: &str) -> Option<i32> {
        Some(self.partitions.get(topic).copied().unwrap_or(1))
    }
}

struct DriverState {
    /// Global stores, updated as soon as a record reaches their topic.
    globals: Arc<GlobalStores>,
    topology: Topology,
    router: crate::runtime::topic_router::TopicRouter,
    handlers: Arc<TaskHandlers>,
    application_id: Arc<str>,
    tasks: BTreeMap<TaskId, StreamTask>,
    collector: DriverCollector,
    wall_clock: i64,
    /// Next offset per topic partition (inputs and outputs share one log, as on a broker).
    next_offset: HashMap<(String, i32), i64>,
    /// Records written per topic, not yet read through a `TestOutputTopic`.
    outputs: HashMap<String, VecDeque<ProducedRecord>>,
    round_robin: HashMap<String, i32>,
    /// The record cache budget shared by every task's stores.
    cache: CacheBudget,
}

/// Runs a topology without a broker. See the [module documentation](self).
pub struct TopologyTestDriver {
    state: RefCell<DriverState>,
}

impl TopologyTestDriver {
    /// A driver with the default [`TestDriverConfig`].
    ///
    /// # Panics
    /// If a processor's `init` fails.
    pub fn new(topology: Topology) -> Self {
        Self::with_config(topology, TestDriverConfig::default())
    }

    /// A driver with `config`.
    ///
    /// # Panics
    /// If a processor's `init` fails.
    pub fn with_config(topology: Topology, config: TestDriverConfig) -> Self {
        Self::try_with_config(topology, config).unwrap_or_else(|e| panic!("test driver: {e}"))
    }

    /// Like [`with_config`](Self::with_config), returning `init` errors.
    pub fn try_with_config(
        topology: Topology,
        config: TestDriverConfig,
    ) -> Result<Self, StreamsError> {
        let app = config.application_id.clone();
        let mut partitions = config.partitions.clone();
        let internal = crate::runtime::internal_topics_for_driver(&topology, &app, &partitions);
        partitions.extend(internal);
        let router = crate::runtime::topic_router::TopicRouter::new(&topology, &app);
        let mut state = DriverState {
            router,
            handlers: Arc::new(TaskHandlers {
                deserialization: config.deserialization_error_handler.clone(),
                processing: config.processing_error_handler.clone(),
            }),
            application_id: Arc::from(app.as_str()),
            tasks: BTreeMap::new(),
            collector: DriverCollector {
                pending: RefCell::new(Vec::new()),
                partitions,
            },
            wall_clock: config.wall_clock_start,
            next_offset: HashMap::new(),
            outputs: HashMap::new(),
            round_robin: HashMap::new(),
            cache: CacheBudget::new(config.store_cache_max_bytes),
            globals: Arc::new(GlobalStores::new(&topology.global_tables)),
            topology,
        };
        // One task per sub-topology and partition of its named source topics.
        for id in 0..state.topology.subtopology_count() as u32 {
            let topics = state.topology.source_topics(id, &app);
            let count = topics
                .iter()
                .map(|t| state.collector.partition_count(t).unwrap_or(1))
                .max()
                .unwrap_or(0);
            for partition in 0..count {
                let inputs: Vec<(String, i32)> = topics
                    .iter()
                    .filter(|t| partition < state.collector.partition_count(t).unwrap_or(1))
                    .map(|t| (t.clone(), partition))
                    .collect();
                state.create_task(
                    TaskId {
                        subtopology: id,
                        partition,
                    },
                    &inputs,
                )?;
            }
        }
        Ok(TopologyTestDriver {
            state: RefCell::new(state),
        })
    }

    /// An input topic to pipe typed records into.
    pub fn input_topic<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestInputTopic<'_, K, V> {
        TestInputTopic::new(self, topic, Arc::new(key_serde), Arc::new(value_serde))
    }

    /// An output topic to read typed records from.
    pub fn output_topic<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestOutputTopic<'_, K, V> {
        TestOutputTopic::new(self, topic, Arc::new(key_serde), Arc::new(value_serde))
    }

    /// Current wall-clock time of the driver, in ms.
    pub fn wall_clock_time(&self) -> i64 {
        self.state.borrow().wall_clock
    }

    /// Moves the wall clock forward and fires the wall-clock punctuators that became due
    /// (each at most once, as in the runtime).
    ///
    /// # Panics
    /// If a punctuator fails.
    pub fn advance_wall_clock_time(&self, by: Duration) {
        self.try_advance_wall_clock_time(by)
            .unwrap_or_else(|e| panic!("test driver: {e}"));
    }

    /// Like [`advance_wall_clock_time`](Self::advance_wall_clock_time), returning errors.
    pub fn try_advance_wall_clock_time(&self, by: Duration) -> Result<(), StreamsError> {
        let mut state = self.state.borrow_mut();
        state.wall_clock = state.wall_clock.saturating_add(by.as_millis() as i64);
        let now = state.wall_clock;
        let DriverState {
            tasks, collector, ..
        } = &mut *state;
        for task in tasks.values_mut() {
            task.punctuate(collector, PunctuationType::WallClockTime, now)?;
            // A commit after the punctuation, as after every record.
            task.flush_caches(collector)?;
        }
        state.route_outputs()?;
        state.process_until_idle()
    }

    /// Processes records buffered with [`TestInputTopic::enqueue`], lowest timestamp first
    /// within each task.
    ///
    /// # Panics
    /// If processing fails and the handler says to fail.
    pub fn process_buffered(&self) {
        self.state
            .borrow_mut()
            .process_until_idle()
            .unwrap_or_else(|e| panic!("test driver: {e}"));
    }

    /// The key-value store `name` across all tasks, to inspect what the topology stored.
    /// `None` if the topology has no such store or it holds other types.
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Option<DriverKeyValueStore<'_, K, V>> {
        self.has_store::<K, V>(name, |kind| kind == crate::state::StoreKind::KeyValue)
            .then(|| DriverKeyValueStore {
                driver: self,
                name: name.to_string(),
                types: std::marker::PhantomData,
            })
    }

    /// The window store `name` across all tasks, to inspect what the topology stored.
    /// `None` if the topology has no such window store or it holds other types.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Option<DriverWindowStore<'_, K, V>> {
        self.has_store::<K, V>(name, |kind| {
            matches!(kind, crate::state::StoreKind::Window { .. })
        })
        .then(|| DriverWindowStore {
            driver: self,
            name: name.to_string(),
            types: std::marker::PhantomData,
        })
    }

    /// The session store `name` across all tasks, to inspect what the topology stored.
    /// `None` if the topology has no such session store or it holds other types.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Option<DriverSessionStore<'_, K, V>> {
        self.has_store::<K, V>(name, |kind| {
            matches!(kind, crate::state::StoreKind::Session { .. })
        })
        .then(|| DriverSessionStore {
            driver: self,
            name: name.to_string(),
            types: std::marker::PhantomData,
        })
    }

    /// Whether the topology declares store `name` of a kind `kind_matches` accepts, with
    /// key and value types `K` and `V`.
    fn has_store<K: 'static, V: 'static>(
        &self,
        name: &str,
        kind_matches: impl FnOnce(crate::state::StoreKind) -> bool,
    ) -> bool {
        let state = self.state.borrow();
        let Some(definition) = state.topology.stores.get(name) else {
            return false;
        };
        kind_matches(definition.kind)
            && definition
                .serdes
                .downcast_ref::<crate::state::KvSerdes<K, V>>()
                .is_some()
    }

    /// Runs `f` on the slot of store `name` in each task that has it, until it returns
    /// `Some`.
    /// The slots of store `name` in the driver's tasks, for the read-only views.
    fn slots(&self, name: &str) -> crate::runtime::local_queries::Slots {
        self.state
            .borrow()
            .tasks
            .iter()
            .filter_map(|(id, task)| task.stores().shared_slot(name).map(|slot| (*id, slot)))
            .collect()
    }

    /// Ids of the driver's tasks.
    pub fn task_ids(&self) -> Vec<TaskId> {
        self.state.borrow().tasks.keys().copied().collect()
    }

    /// Topics the topology wrote to (with records not yet read), sorted.
    pub fn written_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .state
            .borrow()
            .outputs
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        topics.sort();
        topics
    }

    /// Buffers a record of serialized key and value for `topic` (partition chosen like a
    /// producer would when `partition` is `None`); processes it too when `process` is set.
    pub(crate) fn pipe_raw(
        &self,
        topic: &str,
        partition: Option<i32>,
        record: Record<Option<Vec<u8>>, Option<Vec<u8>>>,
        process: bool,
    ) -> Result<(), StreamsError> {
        let mut state = self.state.borrow_mut();
        let partition =
            partition.unwrap_or_else(|| state.choose_partition(topic, record.key.as_deref()));
        let offset = state.next_offset(topic, partition);
        let raw = RawRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        if !state.deliver_input(raw)? {
            return Err(StreamsError::Config(format!(
                "the topology does not read topic {topic}"
            )));
        }
        if process {
            state.process_until_idle()?;
        }
        Ok(())
    }

    /// Removes and returns what was written to `topic` so far.
    pub(crate) fn take_output(&self, topic: &str) -> VecDeque<ProducedRecord> {
        self.state
            .borrow_mut()
            .outputs
            .remove(topic)
            .unwrap_or_default()
    }

    /// Records written to `topic` and not yet read.
    pub(crate) fn output_len(&self, topic: &str) -> usize {
        self.state
            .borrow()
            .outputs
            .get(topic)
            .map_or(0, VecDeque::len)
    }

    /// Pops one record written to `topic`.
    pub(crate) fn pop_output(&self, topic: &str) -> Option<ProducedRecord> {
        self.state.borrow_mut().outputs.get_mut(topic)?.pop_front()
    }
}

/// Unwraps what a store read returned: the test driver panics on store failures.
fn read<T>(result: Result<T, StreamsError>) -> T {
    result.unwrap_or_else(|e| panic!("test driver: {e}"))
}

/// Read access to one key-value store of a [`TopologyTestDriver`], over every task that
/// has it (each key lives in the task of its partition), through the same read-only view
/// as a running application's queries. Made by [`TopologyTestDriver::key_value_store`].
pub struct DriverKeyValueStore<'d, K, V> {
    driver: &'d TopologyTestDriver,
    name: String,
    types: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> DriverKeyValueStore<'_, K, V> {
    /// The view over the tasks that exist now (the driver creates tasks as input arrives).
    fn view(&self) -> ReadOnlyKeyValueStore<K, V> {
        read(ReadOnlyKeyValueStore::new(self.driver.slots(&self.name)))
    }

    /// The value of `key`.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn get(&self, key: &K) -> Option<V> {
        read(self.view().get(key))
    }

    /// Every entry, task by task, each task's in key order.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn all(&self) -> Vec<(K, V)> {
        read(self.view().all())
    }
}

/// Read access to one window store of a [`TopologyTestDriver`], over every task that has
/// it, through the same read-only view as a running application's queries. Made by
/// [`TopologyTestDriver::window_store`]. Windows end at start + the store's window size.
pub struct DriverWindowStore<'d, K, V> {
    driver: &'d TopologyTestDriver,
    name: String,
    types: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> DriverWindowStore<'_, K, V> {
    fn view(&self) -> ReadOnlyWindowStore<K, V> {
        read(ReadOnlyWindowStore::new(self.driver.slots(&self.name)))
    }

    /// The value of `key` in the window starting at `window_start`.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn fetch(&self, key: &K, window_start: i64) -> Option<V> {
        read(self.view().fetch(key, window_start))
    }

    /// The values of `key` in windows starting within `[time_from, time_to]`, as
    /// `(window start, value)` by start.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn fetch_time_range(&self, key: &K, time_from: i64, time_to: i64) -> Vec<(i64, V)> {
        read(self.view().fetch_time_range(key, time_from, time_to))
    }

    /// Entries of every key in windows starting within `[time_from, time_to]`, task by
    /// task, each task's by window start, then key.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Vec<(Windowed<K>, V)> {
        read(self.view().fetch_range(None, None, time_from, time_to))
    }

    /// Every live entry, task by task, each task's by window start, then key.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn all(&self) -> Vec<(Windowed<K>, V)> {
        read(self.view().all())
    }
}

/// Read access to one session store of a [`TopologyTestDriver`], over every task that has
/// it, through the same read-only view as a running application's queries. Made by
/// [`TopologyTestDriver::session_store`].
pub struct DriverSessionStore<'d, K, V> {
    driver: &'d TopologyTestDriver,
    name: String,
    types: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K: 'static, V: 'static> DriverSessionStore<'_, K, V> {
    fn view(&self) -> ReadOnlySessionStore<K, V> {
        read(ReadOnlySessionStore::new(self.driver.slots(&self.name)))
    }

    /// Every live session of `key`, by end, then start.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn fetch(&self, key: &K) -> Vec<(Windowed<K>, V)> {
        read(self.view().fetch(key))
    }

    /// Sessions of `key` ending at or after `earliest_session_end` and starting at or
    /// before `latest_session_start`, by end, then start.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Vec<(Windowed<K>, V)> {
        read(
            self.view()
                .find_sessions(key, earliest_session_end, latest_session_start),
        )
    }

    /// The aggregate of the session of `key` from exactly `start` to `end`.
    ///
    /// # Panics
    /// If the store fails or the bytes do not deserialize.
    pub fn fetch_session(&self, key: &K, start: i64, end: i64) -> Option<V> {
        read(self.view().fetch_session(key, start, end))
    }
}

impl Drop for TopologyTestDriver {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        let DriverState {
            tasks, collector, ..
        } = state;
        for task in tasks.values_mut() {
            task.close(collector);
        }
    }
}

impl DriverState {
    fn create_task(&mut self, id: TaskId, inputs: &[(String, i32)]) -> Result<(), StreamsError> {
        // In-memory stores, whatever their declaration: the driver keeps nothing on disk.
        let stores = TaskStores::open(
            &self.topology.stores_of(id.subtopology),
            &self.application_id,
            id.partition,
            None,
            &self.cache,
        )
        .map_err(|e| StreamsError::state(format!("opening the stores of task {id}"), e))?
        .with_globals(self.globals.clone());
        let mut task = StreamTask::new(
            &self.topology,
            id,
            inputs,
            self.application_id.clone(),
            self.handlers.clone(),
            stores,
        );
        task.init(&self.collector, self.wall_clock)?;
        self.tasks.insert(id, task);
        Ok(())
    }

    fn next_offset(&mut self, topic: &str, partition: i32) -> i64 {
        let next = self
            .next_offset
            .entry((topic.to_string(), partition))
            .or_insert(0);
        let offset = *next;
        *next += 1;
        offset
    }

    fn choose_partition(&mut self, topic: &str, key: Option<&[u8]>) -> i32 {
        let count = self.collector.partition_count(topic).unwrap_or(1);
        match key {
            Some(key) => partition_for_key(key, count),
            None => {
                let next = self.round_robin.entry(topic.to_string()).or_insert(0);
                let p = *next % count;
                *next += 1;
                p
            }
        }
    }

    /// Buffers `raw` in the task reading its partition; `false` if no source reads it.
    fn deliver_input(&mut self, raw: RawRecord) -> Result<bool, StreamsError> {
        if self.globals.reads(&raw.topic) {
            self.globals
                .apply(&raw.topic, raw.key.as_deref(), raw.value.as_deref())
                .map_err(|e| {
                    StreamsError::state(format!("updating the global store of {}", raw.topic), e)
                })?;
            return Ok(true);
        }
        let Some((sub, _)) = self.router.route(&raw.topic) else {
            return Ok(false);
        };
        let id = TaskId {
            subtopology: sub,
            partition: raw.partition,
        };
        if !self.tasks.contains_key(&id) {
            self.create_task(id, &[(raw.topic.to_string(), raw.partition)])?;
        }
        let task = self.tasks.get_mut(&id).expect("task was just created");
        if !task.reads(&raw.topic, raw.partition) {
            task.add_input(&raw.topic, raw.partition);
        }
        task.add_record(raw);
        Ok(true)
    }

    /// Moves records the sinks wrote to the output queues, and back into the topology
    /// for topics it reads.
    fn route_outputs(&mut self) -> Result<(), StreamsError> {
        let written = std::mem::take(&mut *self.collector.pending.borrow_mut());
        for record in written {
            let partition = match record.partition {
                Some(p) => p,
                None => self.choose_partition(&record.topic, record.key.as_deref()),
            };
            let offset = self.next_offset(&record.topic, partition);
            let raw = RawRecord {
                topic: record.topic.as_str().into(),
                partition,
                offset,
                timestamp: record.timestamp,
                key: record.key.clone(),
                value: record.value.clone(),
                headers: record.headers.clone(),
            };
            self.deliver_input(raw)?;
            self.outputs
                .entry(record.topic.clone())
                .or_default()
                .push_back(ProducedRecord {
                    partition,
                    offset,
                    record,
                });
        }
        Ok(())
    }

    /// Processes until no task has buffered records, routing outputs after each record.
    /// On an error, outputs of the failed record are discarded (the runtime would not
    /// commit them either) and the error is returned.
    fn process_until_idle(&mut self) -> Result<(), StreamsError> {
        let result = self.try_process_until_idle();
        if result.is_err() {
            self.collector.pending.borrow_mut().clear();
        }
        result
    }

    fn try_process_until_idle(&mut self) -> Result<(), StreamsError> {
        loop {
            let mut progressed = false;
            let now = self.wall_clock;
            let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
            for id in ids {
                loop {
                    let task = self.tasks.get_mut(&id).expect("ids come from the map");
                    if !task.process_next(&self.collector, now)? {
                        break;
                    }
                    // Kafka's driver commits after every record: the caches forward
                    // what they hold.
                    task.flush_caches(&self.collector)?;
                    progressed = true;
                    self.route_outputs()?;
                }
            }
            if !progressed {
                return Ok(());
            }
        }
    }
}
