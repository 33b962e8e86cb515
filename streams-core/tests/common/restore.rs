//! Following store restoration in broker tests: a listener that counts restored records,
//! and a wait for every task to finish restoring.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streams_core::runtime::{KafkaStreams, TaskStatus};
use streams_state::{RestoreListener, TopicPartition};

/// Sums what restoration reports: records per batch, and totals at the end.
#[derive(Clone, Default)]
pub struct RestoreCount(Arc<Mutex<(u64, u64)>>);

impl RestoreListener for RestoreCount {
    fn on_restore_start(&self, _: &str, _: &TopicPartition, _: i64, _: i64) {}
    fn on_batch_restored(&self, _: &str, _: &TopicPartition, _: i64, n: u64) {
        self.0.lock().unwrap().0 += n;
    }
    fn on_restore_end(&self, _: &str, _: &TopicPartition, total: u64) {
        self.0.lock().unwrap().1 += total;
    }
}

impl RestoreCount {
    /// Records restored so far; the batch reports must add up to the end reports.
    pub fn restored(&self) -> u64 {
        let (batches, ends) = *self.0.lock().unwrap();
        assert_eq!(batches, ends, "batch reports add up to the end reports");
        batches
    }
}

/// Waits until no task of `streams` is restoring.
pub fn wait_restored(streams: &KafkaStreams) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while streams
        .local_task_states()
        .iter()
        .any(|(_, s)| *s == TaskStatus::Restoring)
    {
        assert!(
            Instant::now() < deadline,
            "still restoring: {:?}",
            streams.local_task_states()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
