//! Standby replicas against the real broker: with one standby, each of two instances
//! keeps a copy of the other's counts, readable only through the stale-read opt-in,
//! with its lag reported; when one instance leaves, the other takes its task over
//! restoring almost nothing. Start the broker with `dev/kafka start` (or run
//! `dev/test`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::restore::RestoreCount;
use streams_core::runtime::{KafkaStreams, State, StreamsConfig, TaskStatus};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Grouped, Materialized, StreamsBuilder};
use streams_test_support::{bootstrap, produce_keyed, within, TestTopic};

const KEYS: usize = 200;
const ROUNDS: usize = 30;

fn key(i: usize) -> String {
    format!("key-{i:03}")
}

fn instance(app: &str, input: &str, state_dir: &Path) -> (KafkaStreams, RestoreCount) {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("counts"));
    let config = StreamsConfig::new(app, bootstrap())
        .with_standby_replicas(1)
        .with_commit_interval(Duration::from_millis(200))
        // Every update reaches the changelog: the restore counts below are exact.
        .with_store_cache_max_bytes(0)
        .with_state_dir(state_dir);
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    let restored = RestoreCount::default();
    streams.set_restore_listener(restored.clone());
    streams.start().unwrap();
    (streams, restored)
}

/// The counts `streams` holds in its running tasks (`stale`: and its standbys).
fn counts(streams: &KafkaStreams, stale: bool) -> BTreeMap<String, i64> {
    let view = if stale {
        streams.stale_key_value_store::<String, i64>("counts")
    } else {
        streams.key_value_store::<String, i64>("counts")
    };
    view.and_then(|v| v.all())
        .map(|all| all.into_iter().collect())
        .unwrap_or_default()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_standby_stays_current_and_takes_over_without_a_full_restore() {
    within(Duration::from_secs(180), || {
        let app = format!("standby-{}", std::process::id());
        let input = TestTopic::new("standby-input", 2);
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, _) = instance(&app, input.name(), a_dir.path());
        let (b, b_restored) = instance(&app, input.name(), b_dir.path());
        for streams in [&a, &b] {
            assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        }
        let records: Vec<(String, String)> = (0..ROUNDS)
            .flat_map(|_| (0..KEYS).map(|i| (key(i), "x".to_string())))
            .collect();
        produce_keyed(
            input.name(),
            records.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        );

        let complete =
            |m: &BTreeMap<String, i64>| m.len() == KEYS && m.values().all(|&c| c == ROUNDS as i64);
        wait_until(
            "both instances counted everything",
            Duration::from_secs(60),
            || {
                let mut all = counts(&a, false);
                all.extend(counts(&b, false));
                complete(&all)
            },
        );
        // Each instance keeps a standby of the other's task, caught up.
        wait_until("the standbys caught up", Duration::from_secs(60), || {
            [&a, &b].iter().all(|s| {
                let lags = s.standby_lags();
                !lags.is_empty() && lags.iter().all(|l| l.lag == 0)
            })
        });
        let a_tasks = a.local_tasks();
        let b_lags = b.standby_lags();
        assert_eq!(b_lags.len(), 1, "{b_lags:?}");
        assert_eq!(
            vec![b_lags[0].task],
            a_tasks,
            "b keeps a standby of a's task"
        );
        let changelog_records = b_lags[0].end;
        assert!(
            changelog_records >= (ROUNDS * KEYS / 4) as i64,
            "{b_lags:?}"
        );

        // Stale reads see the standby's copy; plain reads only the running task.
        let fresh = counts(&b, false);
        assert!(fresh.len() < KEYS, "b runs one of two tasks");
        assert!(
            complete(&counts(&b, true)),
            "the standby holds a's keys too"
        );

        // a leaves; b takes its task over from the standby.
        let before = b_restored.restored();
        let left = Instant::now();
        assert!(a.close(Duration::from_secs(30)));
        wait_until("b runs both tasks", Duration::from_secs(60), || {
            let states = b.local_task_states();
            states.len() == 2 && states.iter().all(|(_, s)| *s == TaskStatus::Running)
        });
        let takeover = left.elapsed();
        assert!(complete(&counts(&b, false)), "b answers for every key");
        let restored = b_restored.restored() - before;
        eprintln!(
            "standby takeover: {takeover:?}, restored {restored} of {changelog_records} changelog records"
        );
        assert!(
            restored * 10 < changelog_records as u64,
            "the takeover restored {restored} of {changelog_records} records: not from the standby"
        );
        assert!(b.standby_lags().is_empty(), "no standby left to keep");
        assert!(b.close(Duration::from_secs(30)));
    });
}
