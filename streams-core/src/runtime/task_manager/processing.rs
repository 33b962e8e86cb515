//! Work between commits: restoration steps, buffering polled records in their tasks,
//! processing them, and pausing partitions whose buffers are full.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;

use super::{now_ms, TaskManager};
use crate::processor::{PunctuationType, TaskId};
use crate::runtime::{metrics, StreamsError};
use crate::topology::node::RawRecord;

impl TaskManager {
    /// Applies a batch of changelog records to restoring stores; tasks that finish start
    /// processing.
    pub fn restore(&mut self) -> Result<(), StreamsError> {
        let finished = self.restorer.step(&mut self.tasks)?;
        let now = now_ms();
        for id in finished {
            if let Some(task) = self.tasks.get_mut(&id) {
                task.set_restoring(false);
                task.init(&self.collector, now)?;
                self.queryable.withdraw_stale(id);
                self.queryable.publish(id, task.stores());
            }
        }
        Ok(())
    }

    /// Buffers polled records in their tasks.
    pub fn add_records(&mut self, records: Vec<RawRecord>) {
        metrics::record_consumed(&self.thread_name, records.len() as u64);
        // Polled records come in runs of one partition: look its task up once per run.
        let mut last: Option<(Arc<str>, i32, Option<TaskId>)> = None;
        for raw in records {
            let id = match &last {
                Some((topic, partition, id))
                    if Arc::ptr_eq(topic, &raw.topic) && *partition == raw.partition =>
                {
                    *id
                }
                _ => {
                    let id = self
                        .by_partition
                        .get(&(raw.topic.to_string(), raw.partition))
                        .copied();
                    last = Some((raw.topic.clone(), raw.partition, id));
                    id
                }
            };
            match id {
                Some(id) => {
                    if let Some(task) = self.tasks.get_mut(&id) {
                        task.add_record(raw);
                    }
                }
                None => {
                    let waiting = self.pending.values_mut().find(|p| {
                        p.partitions
                            .iter()
                            .any(|(t, n)| **t == *raw.topic && *n == raw.partition)
                    });
                    match waiting {
                        // Fetched before its partition was paused: kept for the task.
                        Some(pending) => pending.early.push(raw),
                        None => tracing::debug!(
                            topic = &*raw.topic,
                            partition = raw.partition,
                            "record of an unowned partition"
                        ),
                    }
                }
            }
        }
    }

    /// Processes buffered records of every processable task, up to `per_task` each, then
    /// fires due wall-clock punctuators. Returns how many records were processed.
    pub fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        per_task: usize,
    ) -> Result<usize, StreamsError> {
        let start = Instant::now();
        let now = now_ms();
        let mut processed = 0;
        let lags = &mut self.lags;
        let mut positions = None;
        // Asked per record while a partition is empty, answered once per call: nothing is
        // fetched until the next poll, so a lag cannot change in between.
        let mut known: Vec<(Arc<str>, i32, Option<i64>)> = Vec::new();
        let mut lag = |topic: &str, partition: i32, fetched: Option<i64>| {
            if let Some((_, _, lag)) = known
                .iter()
                .find(|(t, p, _)| *p == partition && **t == *topic)
            {
                return *lag;
            }
            let lag = lags.lag(consumer, &mut positions, topic, partition, fetched);
            known.push((Arc::from(topic), partition, lag));
            lag
        };
        self.waiting = false;
        for task in self.tasks.values_mut() {
            let mut n = 0;
            while n < per_task && task.is_processable(now, self.max_idle_ms, &mut lag) {
                if !task.process_next(&self.collector, now)? {
                    break;
                }
                n += 1;
            }
            if n < per_task && !task.is_restoring() && task.buffered() > 0 {
                // Holding records back for an empty partition.
                self.waiting = true;
            }
            processed += n;
            task.punctuate(&self.collector, PunctuationType::WallClockTime, now)?;
        }
        self.uncommitted |= processed > 0;
        metrics::record_processed(&self.thread_name, processed as u64, start.elapsed());
        Ok(processed)
    }

    /// Pauses partitions with a full buffer and resumes those that drained below half.
    pub fn apply_backpressure<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for (tp, id) in &self.by_partition {
            let Some(task) = self.tasks.get(id) else {
                continue;
            };
            let buffered = task.buffered_in(&tp.0, tp.1);
            if buffered >= self.max_buffered && !self.paused.contains(tp) {
                pause.add_partition(&tp.0, tp.1);
                self.paused.insert(tp.clone());
            } else if buffered <= self.max_buffered / 2 && self.paused.contains(tp) {
                resume.add_partition(&tp.0, tp.1);
                self.paused.remove(tp);
            }
        }
        if pause.count() > 0 {
            if let Err(e) = consumer.pause(&pause) {
                tracing::warn!("cannot pause partitions: {e}");
            }
        }
        if resume.count() > 0 {
            if let Err(e) = consumer.resume(&resume) {
                tracing::warn!("cannot resume partitions: {e}");
            }
        }
    }
}
