//! A stream task: one sub-topology instantiated for one partition number, with its input
//! buffers, stream time, punctuation and consumed offsets. The stream thread and the test
//! driver both run topologies through it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error_handling::{
    dead_letter_record, DeserializationErrorHandler, FailureStage, ProcessingErrorHandler, Verdict,
};
use super::metrics;
use super::partition_group::{PartitionGroup, Queued};
use super::StreamsError;
use crate::graph::{CurrentRecord, ErasedRecord, Exec, RecordCollector, TaskState};
use crate::processor::{ProcessError, PunctuationType, TaskId};
use crate::state::task_stores::TaskStores;
use crate::topology::node::{DecodeError, RawRecord};
use crate::topology::{GraphInstance, Topology};

/// The lag of an empty input partition (topic, partition, the offset after the last
/// record received since the assignment): `Some(0)` when the broker has nothing more.
pub(crate) type LagOf<'a> = dyn FnMut(&str, i32, Option<i64>) -> Option<i64> + 'a;

/// The error handlers a task applies to its records.
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskHandlers {
    pub deserialization: DeserializationErrorHandler,
    pub processing: ProcessingErrorHandler,
}

/// One sub-topology running for one partition number.
pub(crate) struct StreamTask {
    id: TaskId,
    graph: GraphInstance,
    state: TaskState,
    inputs: PartitionGroup,
    handlers: Arc<TaskHandlers>,
    /// Offsets as of the last commit; a task whose offsets equal these has nothing to commit.
    committed: BTreeMap<(String, i32), i64>,
    initialized: bool,
    /// Per empty partition known to have nothing more on the broker: the wall-clock time
    /// until which the task waits for it (`max_task_idle` after it was found empty).
    /// Keyed by the partition's queue in `inputs`.
    idle_deadlines: BTreeMap<usize, i64>,
    /// Restoring its stores from their changelogs: no processing yet.
    restoring: bool,
}

impl StreamTask {
    /// Creates the task for `partitions` (topics resolved, all read by sub-topology
    /// `id.subtopology`). Nodes are initialized by [`init`](Self::init).
    pub fn new(
        topology: &Topology,
        id: TaskId,
        partitions: &[(String, i32)],
        application_id: Arc<str>,
        handlers: Arc<TaskHandlers>,
        stores: TaskStores,
    ) -> Self {
        let graph = topology.instantiate(id.subtopology, &application_id);
        let mut inputs = PartitionGroup::new();
        for (topic, partition) in partitions {
            if let Some(source) = graph.source_for(topic) {
                inputs.add_partition(
                    topic,
                    *partition,
                    source,
                    graph.sources[source].decoder.clone(),
                );
            } else {
                tracing::warn!(task = %id, topic, "assigned a partition that no source of this task reads");
            }
        }
        StreamTask {
            id,
            graph,
            state: TaskState::new(id, application_id, stores),
            inputs,
            handlers,
            committed: BTreeMap::new(),
            initialized: false,
            idle_deadlines: BTreeMap::new(),
            restoring: false,
        }
    }

    /// The task's state stores.
    pub fn stores(&self) -> &TaskStores {
        &self.state.stores
    }

    /// Marks the task as restoring its stores (it processes nothing meanwhile) or done.
    pub fn set_restoring(&mut self, restoring: bool) {
        self.restoring = restoring;
    }

    /// Whether the task is restoring its stores.
    pub fn is_restoring(&self) -> bool {
        self.restoring
    }

    /// Sends the changelog records the stores wrote since the last call.
    fn send_changelog(&self, collector: &dyn RecordCollector) -> Result<(), StreamsError> {
        for record in self.state.stores.take_changelog() {
            let topic = record.topic.clone();
            collector
                .send(record)
                .map_err(|e| StreamsError::Production {
                    topic,
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Adds an input partition after creation (a topic matching a source pattern that
    /// appeared later). Returns whether a source of the task reads it.
    pub fn add_input(&mut self, topic: &str, partition: i32) -> bool {
        match self.graph.source_for(topic) {
            Some(source) => {
                self.inputs.add_partition(
                    topic,
                    partition,
                    source,
                    self.graph.sources[source].decoder.clone(),
                );
                true
            }
            None => false,
        }
    }

    /// Whether the task reads `topic`'s `partition`.
    pub fn reads(&self, topic: &str, partition: i32) -> bool {
        self.inputs
            .partitions()
            .any(|(t, p)| t == topic && p == partition)
    }

    fn exec<'a>(
        graph: &'a GraphInstance,
        state: &'a TaskState,
        collector: &'a dyn RecordCollector,
    ) -> Exec<'a> {
        Exec {
            nodes: &graph.nodes,
            layout: &graph.layout,
            state,
            collector,
        }
    }

    /// Calls `init` on every node, sources first.
    pub fn init(
        &mut self,
        collector: &dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<(), StreamsError> {
        if self.initialized {
            return Ok(());
        }
        self.state.wall_clock.set(wall_clock);
        let exec = Self::exec(&self.graph, &self.state, collector);
        for (i, node) in self.graph.nodes.iter().enumerate() {
            node.borrow_mut()
                .init(&exec, i)
                .map_err(|source| StreamsError::Processing {
                    task: self.id,
                    position: None,
                    source: Box::new(source),
                })?;
        }
        self.initialized = true;
        self.send_changelog(collector)
    }

    /// Buffers a consumed record of one of the task's partitions.
    pub fn add_record(&mut self, raw: RawRecord) {
        if !self.inputs.push(raw) {
            tracing::warn!(task = %self.id, "dropped a record of a partition the task does not own");
        }
    }

    /// Records buffered for one partition (for pausing fetches).
    pub fn buffered_in(&self, topic: &str, partition: i32) -> usize {
        self.inputs.buffered_in(topic, partition)
    }

    /// Records buffered in all partitions.
    pub fn buffered(&self) -> usize {
        self.inputs.buffered()
    }

    /// Whether the task may process now, as Kafka Streams decides (KIP-695): every
    /// partition has buffered records, or each empty one is known to have nothing more
    /// on the broker (`lag` returns `Some(0)`) and was waited for `max_idle_ms`. An
    /// empty partition with records still on the broker, or whose lag is unknown,
    /// holds the task back however long that takes.
    pub fn is_processable(&mut self, now: i64, max_idle_ms: i64, lag: &mut LagOf<'_>) -> bool {
        if self.restoring || self.inputs.buffered() == 0 {
            self.idle_deadlines.clear();
            return false;
        }
        if self.inputs.all_partitions_buffered() {
            self.idle_deadlines.clear();
            return true;
        }
        let mut ready = true;
        for (queue, (topic, partition, buffered, fetched)) in self.inputs.queue_states().enumerate()
        {
            if buffered > 0 {
                self.idle_deadlines.remove(&queue);
                continue;
            }
            match lag(topic, partition, fetched) {
                Some(0) => {
                    let deadline = *self
                        .idle_deadlines
                        .entry(queue)
                        .or_insert(now.saturating_add(max_idle_ms));
                    if now < deadline {
                        ready = false;
                    }
                }
                unknown_or_behind => {
                    tracing::trace!(task = %self.id, topic, partition, lag = ?unknown_or_behind, "waiting for records of an empty partition");
                    self.idle_deadlines.remove(&queue);
                    return false;
                }
            }
        }
        ready
    }

    /// Processes the next buffered record (lowest timestamp first), then any stream-time
    /// punctuation it makes due. Returns whether a record was processed.
    pub fn process_next(
        &mut self,
        collector: &dyn RecordCollector,
        wall_clock: i64,
    ) -> Result<bool, StreamsError> {
        let Some((queue, queued)) = self.inputs.pop_next() else {
            return Ok(false);
        };
        let source = self.inputs.queue(queue).source;
        self.state.wall_clock.set(wall_clock);
        let offset = queued.raw().offset;
        match queued {
            Queued::Poison {
                raw,
                error: DecodeError::NullKey(error),
            } => {
                // As Kafka Streams' aggregations, joins and table sources: skip, warn, count.
                let node = &self.graph.layout[self.graph.sources[source].node].name;
                tracing::warn!(
                    task = %self.id, topic = &*raw.topic, partition = raw.partition, offset = raw.offset,
                    node, "skipping a record with a null key: {error}"
                );
                metrics::record_dropped_null_key(&self.id, node);
            }
            Queued::Poison { raw, error } => {
                self.handle_failure(
                    collector,
                    &raw,
                    FailureStage::Deserialization,
                    self.handlers.deserialization.verdict(),
                    &error,
                )
                .map_err(|()| StreamsError::Deserialization {
                    task: self.id,
                    topic: raw.topic.to_string(),
                    partition: raw.partition,
                    offset: raw.offset,
                    reason: error.to_string(),
                })?;
            }
            Queued::Ready { raw, mut decoded } => {
                let timestamp = decoded.timestamp;
                if timestamp > self.state.stream_time.get() {
                    self.state.stream_time.set(timestamp);
                }
                self.state.stores.set_record_time(timestamp);
                *self.state.current.borrow_mut() = Some(CurrentRecord {
                    topic: raw.topic.clone(),
                    partition: raw.partition,
                    offset: raw.offset,
                });
                let node = self.graph.sources[source].node;
                let result = Self::exec(&self.graph, &self.state, collector).forward(
                    node,
                    None,
                    ErasedRecord::from_boxed(&mut decoded.record),
                );
                *self.state.current.borrow_mut() = None;
                if let Err(error) = result {
                    let verdict = self.handlers.processing.verdict();
                    self.handle_failure(collector, &raw, FailureStage::Processing, verdict, &error)
                        .map_err(|()| StreamsError::Processing {
                            task: self.id,
                            position: Some((raw.topic.to_string(), raw.partition, offset)),
                            source: Box::new(error),
                        })?;
                }
            }
        }
        self.send_changelog(collector)?;
        self.inputs.mark_consumed(queue, offset);
        self.punctuate(
            collector,
            PunctuationType::StreamTime,
            self.state.stream_time.get(),
        )?;
        Ok(true)
    }

    /// Applies a handler's verdict; `Err(())` means the handler said to fail.
    fn handle_failure(
        &self,
        collector: &dyn RecordCollector,
        raw: &RawRecord,
        stage: FailureStage,
        verdict: Verdict,
        error: &dyn std::fmt::Display,
    ) -> Result<(), ()> {
        match verdict {
            Verdict::Fail => Err(()),
            Verdict::Skip => {
                tracing::warn!(
                    task = %self.id, topic = &*raw.topic, partition = raw.partition, offset = raw.offset,
                    "skipping record after {stage:?} error: {error}"
                );
                metrics::record_skipped(&self.id, stage);
                Ok(())
            }
            Verdict::DeadLetter(topic) => {
                tracing::warn!(
                    task = %self.id, topic = &*raw.topic, partition = raw.partition, offset = raw.offset,
                    dead_letter_topic = topic, "sending record to the dead-letter topic after {stage:?} error: {error}"
                );
                metrics::record_skipped(&self.id, stage);
                collector.send(dead_letter_record(&topic, raw, stage, error)).map_err(|e| {
                    tracing::error!(task = %self.id, "cannot send to dead-letter topic {topic}: {e}");
                })
            }
        }
    }

    /// Fires the punctuators of `kind` that are due at `now`; returns how many fired.
    pub fn punctuate(
        &mut self,
        collector: &dyn RecordCollector,
        kind: PunctuationType,
        now: i64,
    ) -> Result<usize, StreamsError> {
        if kind == PunctuationType::WallClockTime {
            self.state.wall_clock.set(now);
        }
        let due = self.state.punctuations.borrow_mut().due(kind, now);
        if due.is_empty() {
            return Ok(0);
        }
        self.state.stores.set_record_time(now);
        let exec = Self::exec(&self.graph, &self.state, collector);
        let mut fired = 0;
        for (node, punctuation) in due {
            // An earlier punctuator of this round may have cancelled this one.
            if !self.state.punctuations.borrow().contains(punctuation.id) {
                continue;
            }
            fired += 1;
            let result: Result<(), ProcessError> =
                self.graph.nodes[node]
                    .borrow_mut()
                    .punctuate(&exec, node, punctuation);
            result.map_err(|source| StreamsError::Processing {
                task: self.id,
                position: None,
                source: Box::new(source),
            })?;
        }
        self.send_changelog(collector)?;
        Ok(fired)
    }

    /// Whether a processor asked for a commit since the last one.
    pub fn commit_requested(&self) -> bool {
        self.state.commit_requested.get()
    }

    /// Offsets to commit (next offset per partition) that changed since the last commit.
    pub fn offsets_to_commit(&self) -> Vec<((String, i32), i64)> {
        self.inputs
            .consumed()
            .filter(|((topic, partition), offset)| {
                self.committed.get(&(topic.to_string(), *partition)) != Some(offset)
            })
            .map(|((topic, partition), offset)| ((topic.to_string(), partition), offset))
            .collect()
    }

    /// Offsets as of the last commit (next offset per input partition).
    pub fn committed_offsets(&self) -> &BTreeMap<(String, i32), i64> {
        &self.committed
    }

    /// Records that the offsets returned by [`offsets_to_commit`](Self::offsets_to_commit) are committed.
    pub fn mark_committed(&mut self) {
        self.committed = self
            .inputs
            .consumed()
            .map(|((topic, partition), offset)| ((topic.to_string(), partition), offset))
            .collect();
        self.state.commit_requested.set(false);
    }

    /// Forgets a processor's commit request (the commit was attempted).
    pub fn clear_commit_request(&mut self) {
        self.state.commit_requested.set(false);
    }

    /// Drops buffered records (they are re-fetched from the committed offsets).
    pub fn clear_buffers(&mut self) {
        self.inputs.clear();
        self.idle_deadlines.clear();
    }

    /// Empties the stores' record caches, forwarding what they held back through the
    /// processors that own them, and sends the changelog and output records that produced.
    pub fn flush_caches(&mut self, collector: &dyn RecordCollector) -> Result<(), StreamsError> {
        let exec = Self::exec(&self.graph, &self.state, collector);
        crate::state::record_cache::flush_and_forward(&exec).map_err(|source| {
            StreamsError::Processing {
                task: self.id,
                position: None,
                source: Box::new(source),
            }
        })?;
        self.send_changelog(collector)
    }

    /// Closes the processors (they may still forward and write) and sends the stores'
    /// last changelog writes; the stores stay open for a final commit and checkpoint.
    pub fn close_processors(&mut self, collector: &dyn RecordCollector) {
        if !self.initialized {
            return;
        }
        let exec = Self::exec(&self.graph, &self.state, collector);
        for (i, node) in self.graph.nodes.iter().enumerate() {
            node.borrow_mut().close(&exec, i);
            self.state.punctuations.borrow_mut().cancel_node(i);
        }
        if let Err(e) = self.send_changelog(collector) {
            tracing::warn!(task = %self.id, "changelog writes at close were not sent: {e}");
        }
        self.initialized = false;
    }

    /// Closes the stores, dropping changelog writes not sent yet (after a failure,
    /// nothing of them is committed).
    pub fn close_stores_only(&mut self) {
        self.state.stores.take_changelog();
        self.state.stores.close();
        self.initialized = false;
    }

    /// Closes processors, then stores; the task must not be used afterwards.
    pub fn close(&mut self, collector: &dyn RecordCollector) {
        self.close_processors(collector);
        self.close_stores_only();
    }
}
