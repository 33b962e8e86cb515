//! Metrics the runtime records through the `metrics` facade. Install any recorder (the
//! apps use the Prometheus exporter) to collect them; without one they cost next to nothing.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `streams_records_consumed_total` | counter | `thread` | records polled from Kafka |
//! | `streams_records_processed_total` | counter | `thread` | records processed by tasks |
//! | `streams_records_produced_total` | counter | `thread` | records handed to the producer |
//! | `streams_skipped_records_total` | counter | `task`, `reason` | records skipped by an error handler |
//! | `streams_dropped_records_total` | counter | `task`, `node`, `reason` | records dropped: by a windowed operator (`late`: beyond the grace period), or at a source (`null_key`: no key, and the key type has none) |
//! | `streams_process_latency_seconds` | histogram | `thread` | time to process one poll's worth of records, per record |
//! | `streams_commit_latency_seconds` | histogram | `thread` | flush + offset commit time |
//! | `streams_consumer_lag` | gauge | `topic`, `partition` | records behind the partition's end |
//! | `streams_standby_lag` | gauge | `task`, `store` | changelog records a standby store has not applied yet |
//!
//! Rates (records in/out per second) are derived from the counters by the metrics backend.

use std::time::Duration;

use super::error_handling::FailureStage;
use crate::processor::TaskId;

pub(crate) fn record_skipped(task: &TaskId, stage: FailureStage) {
    let reason = match stage {
        FailureStage::Deserialization => "deserialization",
        FailureStage::Processing => "processing",
    };
    metrics::counter!("streams_skipped_records_total", "task" => task.to_string(), "reason" => reason).increment(1);
}

pub(crate) fn record_consumed(thread: &str, n: u64) {
    metrics::counter!("streams_records_consumed_total", "thread" => thread.to_string())
        .increment(n);
}

pub(crate) fn record_processed(thread: &str, n: u64, elapsed: Duration) {
    if n == 0 {
        return;
    }
    metrics::counter!("streams_records_processed_total", "thread" => thread.to_string())
        .increment(n);
    metrics::histogram!("streams_process_latency_seconds", "thread" => thread.to_string())
        .record(elapsed.as_secs_f64() / n as f64);
}

pub(crate) fn record_produced(thread: &str, n: u64) {
    metrics::counter!("streams_records_produced_total", "thread" => thread.to_string())
        .increment(n);
}

pub(crate) fn record_commit(thread: &str, elapsed: Duration) {
    metrics::histogram!("streams_commit_latency_seconds", "thread" => thread.to_string())
        .record(elapsed.as_secs_f64());
}

pub(crate) fn record_lag(topic: &str, partition: i32, lag: i64) {
    metrics::gauge!("streams_consumer_lag", "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(lag as f64);
}

pub(crate) fn record_dropped_null_key(task: &TaskId, node: &str) {
    metrics::counter!("streams_dropped_records_total", "task" => task.to_string(), "node" => node.to_string(), "reason" => "null_key")
        .increment(1);
}

pub(crate) fn record_dropped_late(task: &TaskId, node: &str) {
    metrics::counter!("streams_dropped_records_total", "task" => task.to_string(), "node" => node.to_string(), "reason" => "late")
        .increment(1);
}

pub(crate) fn record_standby_lag(task: &TaskId, store: &str, lag: i64) {
    metrics::gauge!("streams_standby_lag", "task" => task.to_string(), "store" => store.to_string())
        .set(lag as f64);
}
