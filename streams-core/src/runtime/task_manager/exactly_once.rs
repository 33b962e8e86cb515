//! The exactly-once commit: one transaction per commit holding the outputs, changelog
//! writes and input offsets; an aborted transaction rewinds every task to the committed
//! offsets, with its stores wiped and restored.

use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::TaskManager;
use crate::processor::TaskId;
use crate::runtime::kafka_collector::TransactionFailure;
use crate::runtime::{metrics, StreamsError};

/// Transactions aborted in a row before the thread gives up.
const MAX_CONSECUTIVE_ABORTS: u32 = 3;

impl TaskManager {
    /// The exactly-once commit: commits the transaction holding the outputs, changelog
    /// writes and offsets; an abortable failure aborts it and rewinds every task (see
    /// [`rewind`](Self::rewind)), until too many fail in a row.
    pub(super) fn commit_exactly_once<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        // An empty commit (nothing processed since) proves nothing about the records
        // that made the last transactions fail.
        let has_work = self.collector.in_transaction() || self.pending_offsets()?.count() > 0;
        if self.commit_transaction(consumer)? {
            if has_work {
                self.consecutive_aborts = 0;
            }
        } else {
            // A record that fails every time (say, too large for its topic) would
            // abort and rewind forever: give up after a few attempts in a row.
            self.consecutive_aborts += 1;
            if self.consecutive_aborts > MAX_CONSECUTIVE_ABORTS {
                return Err(StreamsError::TransactionsAborted {
                    count: self.consecutive_aborts,
                    reason: self.last_abort_reason.clone(),
                });
            }
            self.rewind(consumer)?;
        }
        Ok(())
    }

    /// Commits the open transaction with the processed offsets. Returns `Ok(false)` if it
    /// had to be aborted (the caller decides whether to rewind), an error if the producer
    /// is unusable.
    pub(super) fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<bool, StreamsError> {
        let start = Instant::now();
        self.flush_caches()?;
        let offsets = self.pending_offsets()?;
        let group = consumer.group_metadata().ok_or_else(|| {
            StreamsError::TransactionFatal("the consumer has no group metadata".into())
        })?;
        match self.collector.commit_transaction(&offsets, &group) {
            Ok(()) => {
                for task in self.tasks.values_mut() {
                    task.mark_committed();
                }
                self.purge();
                metrics::record_commit(&self.thread_name, start.elapsed());
                Ok(true)
            }
            Err(TransactionFailure::Abortable(reason)) => {
                tracing::warn!(
                    thread = self.thread_name,
                    "aborting the transaction: {reason}"
                );
                self.last_abort_reason = reason.clone();
                match self.collector.abort_transaction() {
                    Ok(()) => Ok(false),
                    Err(TransactionFailure::Abortable(e) | TransactionFailure::Fatal(e)) => Err(
                        StreamsError::TransactionFatal(format!("abort failed after {reason}: {e}")),
                    ),
                }
            }
            Err(TransactionFailure::Fatal(reason)) => Err(StreamsError::TransactionFatal(reason)),
        }
    }

    /// After an aborted transaction: drops every task and its local state (which may
    /// hold aborted writes), and recreates them from the committed offsets, restoring
    /// stores from their changelogs (read committed). Wiping rather than buffering
    /// uncommitted store writes keeps the store layer simple; aborts are rare.
    pub(super) fn rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), StreamsError> {
        let assignment = consumer
            .assignment()
            .map_err(|e| StreamsError::kafka("reading the assignment to rewind", e))?;
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        self.drop_tasks();
        for id in ids {
            if self.locks.contains_key(&id) {
                self.state_dir.wipe(&id.to_string()).map_err(|e| {
                    StreamsError::state(format!("wiping the state of task {id}"), e)
                })?;
            }
        }
        self.locks.clear();
        let start = self.on_assigned(consumer, &assignment)?;
        consumer
            .assign(&start)
            .map_err(|e| StreamsError::kafka("reassigning partitions after an abort", e))?;
        // librdkafka keeps a partition paused across `assign`; the pauses of backpressure
        // were forgotten with the tasks, so a partition left paused would never move again.
        consumer
            .resume(&start)
            .map_err(|e| StreamsError::kafka("resuming partitions after an abort", e))?;
        self.pause_pending(consumer);
        tracing::info!(thread = self.thread_name, tasks = ?self.task_ids(), "tasks rewound to committed offsets");
        Ok(())
    }
}
