//! State stores under the runtime, against the real broker: counts kept in a RocksDB
//! store survive restarts, a restart with an intact state directory restores only the
//! changelog tail after its checkpoint, and an instance without local state restores
//! everything. Start the broker with `dev/kafka start` (or run `dev/test`).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::restore::{wait_restored, RestoreCount};
use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig, StreamsError, TaskStatus};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::state::Stores;
use streams_core::{Consumed, Grouped, Materialized, Produced, Record, StreamsBuilder};
use streams_test_support::{
    bootstrap, consume_to_end, produce_keyed, require_broker, within, Isolation, TestTopic,
};

/// Counts records per key in the store "counts" and emits the new count.
struct Counter;

impl Processor<String, String, String, i64> for Counter {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let counts = ctx.key_value_store::<String, i64>("counts")?;
        let count = counts.get(&record.key)?.unwrap_or(0) + 1;
        counts.put(&record.key, &count)?;
        ctx.forward(record.with_value(count))
    }
}

fn counting_app(
    app: &str,
    input: &str,
    output: &str,
    state_dir: &Path,
    in_memory: bool,
) -> (KafkaStreams, RestoreCount) {
    counting_app_with(
        app,
        input,
        output,
        state_dir,
        in_memory,
        0,
        Duration::from_millis(200),
    )
}

/// The counting app with a record cache of `cache_bytes` (0: every write is logged,
/// which the exact restore counts of these tests rely on), committing every `commit`.
fn counting_app_with(
    app: &str,
    input: &str,
    output: &str,
    state_dir: &Path,
    in_memory: bool,
    cache_bytes: usize,
    commit: Duration,
) -> (KafkaStreams, RestoreCount) {
    let builder = StreamsBuilder::new();
    let store = Stores::key_value("counts", StringSerde, I64Serde);
    builder.add_state_store(if in_memory { store.in_memory() } else { store });
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .process_with_stores(|| Counter, &["counts"])
        .to(output, Produced::with(StringSerde, I64Serde));
    let config = StreamsConfig::new(app, bootstrap())
        .with_commit_interval(commit)
        .with_state_dir(state_dir)
        .with_store_cache_max_bytes(cache_bytes);
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    let listener = RestoreCount::default();
    streams.set_restore_listener(listener.clone());
    streams.start().unwrap();
    assert!(
        streams.wait_for_state(State::Running, Duration::from_secs(60)),
        "{:?}",
        streams.state()
    );
    (streams, listener)
}

/// The latest count per key in `topic`, once `expected` records are there.
fn latest_counts(topic: &str, expected: usize) -> HashMap<String, i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = consume_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(20));
        if records.len() >= expected {
            return records
                .iter()
                .map(|r| {
                    (
                        r.key_str().to_string(),
                        i64::from_be_bytes(r.value.clone().unwrap().try_into().unwrap()),
                    )
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} records in {topic}",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn batch(keys: usize, per_key: usize) -> Vec<(String, String)> {
    (0..per_key)
        .flat_map(|i| (0..keys).map(move |k| (format!("k{k}"), format!("v{i}"))))
        .collect()
}

#[test]
fn a_restart_restores_only_the_changelog_tail_after_its_checkpoint() {
    within(Duration::from_secs(180), || {
        require_broker();
        let app = format!("it-restore-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("restore-in", 2);
        let output = TestTopic::new("restore-out", 2);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();

        // A counts 10 keys x 5 records and closes: its checkpoint covers all 50 writes.
        let (a, restored) = counting_app(&app, input.name(), output.name(), dir_a.path(), false);
        produce_keyed(input.name(), batch(10, 5));
        assert_eq!(latest_counts(output.name(), 50)["k3"], 5);
        assert_eq!(
            restored.restored(),
            0,
            "a fresh application has nothing to restore"
        );
        assert!(a.close(Duration::from_secs(30)));

        // B, with an empty state directory, restores all 50 changelog records, then
        // counts 10 keys x 2 more records (20 changelog writes A has not seen).
        let (b, restored) = counting_app(&app, input.name(), output.name(), dir_b.path(), false);
        wait_restored(&b);
        assert_eq!(restored.restored(), 50);
        produce_keyed(input.name(), batch(10, 2));
        assert_eq!(latest_counts(output.name(), 70)["k3"], 7);
        assert!(b.close(Duration::from_secs(30)));

        // A again, with its intact directory: only the 20-record tail is restored, and
        // counting goes on from the right totals.
        let (a, restored) = counting_app(&app, input.name(), output.name(), dir_a.path(), false);
        wait_restored(&a);
        assert_eq!(
            restored.restored(),
            20,
            "only the tail after A's checkpoint"
        );
        produce_keyed(input.name(), batch(10, 1));
        let counts = latest_counts(output.name(), 80);
        assert!((0..10).all(|k| counts[&format!("k{k}")] == 8), "{counts:?}");
        assert!(a.close(Duration::from_secs(30)));
    });
}

#[test]
fn an_in_memory_store_is_rebuilt_from_its_changelog_on_every_start() {
    within(Duration::from_secs(120), || {
        require_broker();
        let app = format!("it-memory-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("memory-in", 1);
        let output = TestTopic::new("memory-out", 1);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dir = tempfile::tempdir().unwrap();

        let (first, _) = counting_app(&app, input.name(), output.name(), dir.path(), true);
        produce_keyed(input.name(), batch(3, 4));
        assert_eq!(latest_counts(output.name(), 12)["k1"], 4);
        assert!(first.close(Duration::from_secs(30)));

        let (second, restored) = counting_app(&app, input.name(), output.name(), dir.path(), true);
        wait_restored(&second);
        assert_eq!(
            restored.restored(),
            12,
            "no checkpoint for in-memory stores: the whole log"
        );
        produce_keyed(input.name(), batch(3, 1));
        assert_eq!(latest_counts(output.name(), 15)["k1"], 5);
        assert!(second.close(Duration::from_secs(30)));
    });
}

/// Asserts that `streams` came out of restoration healthy: no stream thread failed (a
/// crashed thread leaves no task, which looks restored), the instance and each of its
/// tasks run, and one more record of `k1` is counted, to `k1_count`, as the
/// `expected_total`-th output record.
fn assert_processes_after_restoring(
    streams: &KafkaStreams,
    input: &str,
    output: &str,
    expected_total: usize,
    k1_count: i64,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = streams.local_task_states();
        let errors = streams.thread_errors();
        assert!(errors.is_empty(), "a stream thread failed: {errors:?}");
        if streams.state() == State::Running
            && !tasks.is_empty()
            && tasks.iter().all(|(_, s)| *s == TaskStatus::Running)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not running every task within 30 s: state {:?}, tasks {tasks:?}",
            streams.state()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    produce_keyed(input, [("k1", "after")]);
    assert_eq!(latest_counts(output, expected_total)["k1"], k1_count);
    assert!(
        streams.thread_errors().is_empty(),
        "{:?}",
        streams.thread_errors()
    );
}

#[test]
fn a_checkpoint_below_the_changelog_start_restores_from_the_log_start_without_looping() {
    within(Duration::from_secs(120), || {
        require_broker();
        let app = format!("it-logstart-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("logstart-in", 1);
        let output = TestTopic::new("logstart-out", 1);
        let changelog = format!("{app}-counts-changelog");
        let _changelog = TestTopic::adopt(&changelog);
        let dir = tempfile::tempdir().unwrap();

        let (a, _) = counting_app(&app, input.name(), output.name(), dir.path(), false);
        produce_keyed(input.name(), batch(5, 4));
        assert_eq!(latest_counts(output.name(), 20)["k1"], 4);
        assert!(a.close(Duration::from_secs(30)));

        // Retention (or compaction) removed the start of the changelog, past the
        // checkpoint: 10 of 20 records remain. Then more changes are logged by another
        // instance with an empty state directory.
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            streams_test_support::client_config().create().unwrap();
        // Kafka deletes records only from topics with the delete policy (as window store
        // changelogs have); give this one both, as retention would.
        let policy =
            rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(&changelog))
                .set("cleanup.policy", "compact,delete");
        for result in futures::executor::block_on(
            admin.alter_configs([&policy], &rdkafka::admin::AdminOptions::new()),
        )
        .unwrap()
        {
            result.unwrap();
        }
        let delete = |tpl: &rdkafka::TopicPartitionList| {
            let result = futures::executor::block_on(
                admin.delete_records(tpl, &rdkafka::admin::AdminOptions::new()),
            )
            .unwrap();
            for e in result.elements() {
                e.error()
                    .unwrap_or_else(|err| panic!("deleting records of {}: {err}", e.topic()));
            }
        };
        let mut below = rdkafka::TopicPartitionList::new();
        below
            .add_partition_offset(&changelog, 0, rdkafka::Offset::Offset(10))
            .unwrap();
        delete(&below);
        let other_dir = tempfile::tempdir().unwrap();
        let (b, restored) =
            counting_app(&app, input.name(), output.name(), other_dir.path(), false);
        wait_restored(&b);
        assert_eq!(
            restored.restored(),
            10,
            "restoration starts at the log start"
        );
        produce_keyed(input.name(), batch(5, 1));
        assert_eq!(latest_counts(output.name(), 25)["k1"], 5);
        assert!(b.close(Duration::from_secs(30)));

        // A's checkpoint (20) is inside the log, which now starts at 10 and ends at 25:
        // only the 5-record tail is restored; nothing loops.
        let (a, restored) = counting_app(&app, input.name(), output.name(), dir.path(), false);
        wait_restored(&a);
        assert_eq!(restored.restored(), 5);
        // A's own 4 counts of k1 plus B's one from the tail, then one more.
        assert_processes_after_restoring(&a, input.name(), output.name(), 26, 6);
        assert!(a.close(Duration::from_secs(30)));

        // Everything before the end deleted: a checkpoint below the log start restores
        // from the log start, here nothing, and the task runs.
        let mut all = rdkafka::TopicPartitionList::new();
        all.add_partition_offset(&changelog, 0, rdkafka::Offset::End)
            .unwrap();
        delete(&all);
        let fresh = tempfile::tempdir().unwrap();
        let (c, restored) = counting_app(&app, input.name(), output.name(), fresh.path(), false);
        wait_restored(&c);
        assert_eq!(restored.restored(), 0);
        // Nothing left to restore from: counting starts over.
        assert_processes_after_restoring(&c, input.name(), output.name(), 27, 1);
        assert!(c.close(Duration::from_secs(30)));
    });
}

#[test]
fn running_instances_answer_local_store_queries_and_clean_up_after_close() {
    within(Duration::from_secs(120), || {
        require_broker();
        let app = format!("it-query-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("query-in", 3);
        let output = TestTopic::new("query-out", 3);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dir = tempfile::tempdir().unwrap();
        let (streams, _) = counting_app(&app, input.name(), output.name(), dir.path(), false);
        wait_restored(&streams);
        produce_keyed(input.name(), batch(6, 3));
        latest_counts(output.name(), 18);

        assert_eq!(
            streams
                .query_key::<String, i64>("counts", &"k2".to_string())
                .unwrap(),
            Some(3)
        );
        assert_eq!(
            streams
                .query_key::<String, i64>("counts", &"absent".to_string())
                .unwrap(),
            None
        );
        let mut all = streams.query_all::<String, i64>("counts").unwrap();
        all.sort();
        assert_eq!(
            all,
            (0..6).map(|k| (format!("k{k}"), 3)).collect::<Vec<_>>()
        );
        assert!(
            streams
                .query_key::<String, String>("counts", &"k2".to_string())
                .is_err(),
            "wrong types are refused"
        );
        assert!(streams.query_all::<String, i64>("no-such-store").is_err());

        // The read-only view: ranges and prefixes over every task of this instance.
        let view = streams.key_value_store::<String, i64>("counts").unwrap();
        let sorted = |mut entries: Vec<(String, i64)>| {
            entries.sort();
            entries
        };
        assert_eq!(
            sorted(
                view.range(Some(&"k1".to_string()), Some(&"k3".to_string()))
                    .unwrap()
            ),
            (1..=3).map(|k| (format!("k{k}"), 3)).collect::<Vec<_>>()
        );
        assert_eq!(
            view.prefix_scan(&"k4".to_string()).unwrap(),
            [("k4".to_string(), 3)]
        );
        assert_eq!(view.get(&"k5".to_string()).unwrap(), Some(3));
        assert!(
            matches!(
                streams.window_store::<String, i64>("counts"),
                Err(StreamsError::InvalidState(_))
            ),
            "a key-value store is no window store"
        );
        assert!(streams.cleanup().is_err(), "no cleanup while running");

        assert!(streams.close(Duration::from_secs(30)));
        // Closed, it runs no task: not available (retryable), not an unknown store.
        assert!(matches!(
            streams.key_value_store::<String, i64>("counts"),
            Err(StreamsError::StoreNotAvailable { store }) if store == "counts"
        ));
        let app_dir = dir.path().join(&app);
        assert!(
            std::fs::read_dir(&app_dir).unwrap().next().is_some(),
            "task directories exist"
        );
        streams.cleanup().unwrap();
        assert!(
            std::fs::read_dir(&app_dir).map_or(true, |mut d| d.next().is_none()),
            "task directories removed"
        );
    });
}

/// Waits until store `store` of `streams` holds `expected` for every key `k0..k{n}`.
fn wait_for_counts(streams: &KafkaStreams, store: &str, keys: usize, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Vec<Option<i64>> = (0..keys)
            .map(|k| {
                streams
                    .query_key::<String, i64>(store, &format!("k{k}"))
                    .ok()
                    .flatten()
            })
            .collect();
        if counts.iter().all(|c| *c == Some(expected)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "counts in {store} never reached {expected}: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(key, count)` of records holding big-endian i64 counts.
fn key_counts(records: &[streams_test_support::ConsumedRecord]) -> Vec<(String, i64)> {
    records
        .iter()
        .map(|r| {
            (
                r.key_str().to_string(),
                i64::from_be_bytes(r.value.clone().unwrap().try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn the_write_cache_logs_each_key_once_per_commit_and_keeps_counts_exact() {
    within(Duration::from_secs(180), || {
        require_broker();
        let app = format!("it-cache-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("cache-in", 1);
        let output = TestTopic::new("cache-out", 1);
        let changelog = format!("{app}-counts-changelog");
        let _changelog = TestTopic::adopt(&changelog);
        let dir = tempfile::tempdir().unwrap();
        // 5 keys, 100 updates each, all processed long before the first interval
        // commit: the only commit is the one at close.
        produce_keyed(input.name(), batch(5, 100));
        let (streams, _) = counting_app_with(
            &app,
            input.name(),
            output.name(),
            dir.path(),
            false,
            1 << 20,
            Duration::from_secs(3600),
        );
        wait_for_counts(&streams, "counts", 5, 100);
        let counts = latest_counts(output.name(), 500);
        assert!(
            (0..5).all(|k| counts[&format!("k{k}")] == 100),
            "{counts:?}"
        );
        // Nothing was committed yet, so nothing was logged.
        let logged = consume_to_end(
            &changelog,
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        );
        assert!(logged.is_empty(), "logged before any commit: {logged:?}");
        assert!(streams.close(Duration::from_secs(30)));
        // One commit: each key logged once, with its final count.
        let mut logged = key_counts(&consume_to_end(
            &changelog,
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        ));
        logged.sort();
        let expected: Vec<(String, i64)> = (0..5).map(|k| (format!("k{k}"), 100)).collect();
        assert_eq!(logged, expected);

        // Restored from the deduplicated changelog into a fresh directory, the counts
        // go on from the right totals.
        let fresh = tempfile::tempdir().unwrap();
        let (streams, restored) = counting_app_with(
            &app,
            input.name(),
            output.name(),
            fresh.path(),
            false,
            1 << 20,
            Duration::from_millis(200),
        );
        wait_restored(&streams);
        assert_eq!(restored.restored(), 5);
        produce_keyed(input.name(), batch(5, 1));
        let counts = latest_counts(output.name(), 505);
        assert!(
            (0..5).all(|k| counts[&format!("k{k}")] == 101),
            "{counts:?}"
        );
        assert!(streams.close(Duration::from_secs(30)));
    });
}

/// A DSL count of `input` into `output` in store "dsl-counts", committing every
/// `commit`, with the record cache on or off for the store.
fn dsl_count_app(
    app: &str,
    input: &str,
    output: &str,
    state_dir: &Path,
    caching: bool,
    commit: Duration,
) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("dsl-counts").with_caching(caching))
        .to_stream()
        .to(output, Produced::with(StringSerde, Nullable(I64Serde)));
    let config = StreamsConfig::new(app, bootstrap())
        .with_commit_interval(commit)
        .with_state_dir(state_dir);
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    streams.start().unwrap();
    assert!(
        streams.wait_for_state(State::Running, Duration::from_secs(60)),
        "{:?}",
        streams.state()
    );
    streams
}

#[test]
fn a_cached_count_forwards_each_key_once_per_commit_and_an_uncached_one_every_update() {
    within(Duration::from_secs(240), || {
        require_broker();
        let input = TestTopic::new("dsl-cache-in", 1);
        produce_keyed(input.name(), batch(5, 100));
        let inputs = consume_to_end(
            input.name(),
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        );
        assert_eq!(inputs.len(), 500);
        // Each key's output carries the timestamp of its latest input record.
        let last_timestamp: HashMap<String, Option<i64>> = inputs
            .iter()
            .map(|r| (r.key_str().to_string(), r.timestamp_ms))
            .collect();

        // With the default cache: all 500 updates are processed before the first
        // interval commit, and downstream sees nothing until the commit at close, which
        // forwards the final count of each key once.
        let app = format!("it-dsl-cache-{}", uuid::Uuid::new_v4().simple());
        let _changelog = TestTopic::adopt(&format!("{app}-dsl-counts-changelog"));
        let output = TestTopic::new("dsl-cache-out", 1);
        let dir = tempfile::tempdir().unwrap();
        let streams = dsl_count_app(
            &app,
            input.name(),
            output.name(),
            dir.path(),
            true,
            Duration::from_secs(3600),
        );
        wait_for_counts(&streams, "dsl-counts", 5, 100);
        let early = consume_to_end(
            output.name(),
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        );
        assert!(early.is_empty(), "forwarded before a commit: {early:?}");
        assert!(streams.close(Duration::from_secs(30)));
        let out = consume_to_end(
            output.name(),
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        );
        let mut counts = key_counts(&out);
        counts.sort();
        let expected: Vec<(String, i64)> = (0..5).map(|k| (format!("k{k}"), 100)).collect();
        assert_eq!(counts, expected, "500 updates consumed, 5 forwarded");
        for r in &out {
            assert_eq!(r.timestamp_ms, last_timestamp[r.key_str()], "{r:?}");
        }

        // With caching off for the store, every update is forwarded, in order.
        let app = format!("it-dsl-nocache-{}", uuid::Uuid::new_v4().simple());
        let _changelog = TestTopic::adopt(&format!("{app}-dsl-counts-changelog"));
        let output = TestTopic::new("dsl-nocache-out", 1);
        let dir = tempfile::tempdir().unwrap();
        let streams = dsl_count_app(
            &app,
            input.name(),
            output.name(),
            dir.path(),
            false,
            Duration::from_secs(3600),
        );
        let out = streams_test_support::consume_n(output.name(), 500, Duration::from_secs(60));
        assert_eq!(out.len(), 500);
        assert!(streams.close(Duration::from_secs(30)));
        for k in 0..5 {
            let key = format!("k{k}");
            let counts: Vec<i64> = key_counts(&out)
                .into_iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, c)| c)
                .collect();
            assert_eq!(counts, (1..=100).collect::<Vec<_>>(), "{key}");
        }
        // Nothing beyond the 500 updates.
        let all = consume_to_end(
            output.name(),
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        );
        assert_eq!(all.len(), 500);
    });
}

/// Queries read a store through a lock of its own, not the stream thread's: while a
/// commit waits for the broker to acknowledge the output (here to a sink topic that does
/// not exist, so the flush before the commit cannot finish), queries still answer at
/// once.
#[test]
fn queries_answer_while_a_commit_waits_for_the_broker() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::TopicPartitionList;
    within(Duration::from_secs(120), || {
        require_broker();
        let app = format!("it-query-commit-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("query-commit-in", 1);
        let missing = format!("query-commit-missing-{}", uuid::Uuid::new_v4().simple());
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let builder = StreamsBuilder::new();
        let stream = builder.stream(input.name(), Consumed::with(StringSerde, StringSerde));
        stream
            .group_by_key(Grouped::new())
            .count(Materialized::as_store("counts").with_key_serde(StringSerde));
        stream.to(&missing, Produced::with(StringSerde, StringSerde));
        let config = StreamsConfig::new(&app, bootstrap())
            .with_state_dir(tempfile::tempdir().unwrap().path())
            .with_commit_interval(Duration::from_millis(100))
            // The stuck flush gives up after this, after the queries below.
            .with_producer_setting("message.timeout.ms", "8000");
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));

        produce_keyed(input.name(), [("k", "1"), ("k", "2"), ("k", "3")]);
        let count = || {
            streams
                .query_key::<String, i64>("counts", &"k".to_string())
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while count() != Some(3) {
            assert!(Instant::now() < deadline, "the count never reached 3");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The first commit is waiting for the output's acknowledgements by now.
        std::thread::sleep(Duration::from_secs(2));
        let group: BaseConsumer = streams_test_support::client_config()
            .set("group.id", &app)
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(input.name(), 0);
        let committed = || {
            group
                .committed_offsets(partitions.clone(), Duration::from_secs(10))
                .unwrap()
                .elements()[0]
                .offset()
        };
        assert_eq!(
            committed(),
            rdkafka::Offset::Invalid,
            "nothing committed yet"
        );
        for _ in 0..20 {
            let asked = Instant::now();
            assert_eq!(count(), Some(3));
            assert!(
                asked.elapsed() < Duration::from_millis(500),
                "a query waited {:?} for the commit",
                asked.elapsed()
            );
        }
        assert_eq!(
            committed(),
            rdkafka::Offset::Invalid,
            "the commit was still waiting while the queries were answered"
        );
        drop(streams);
    });
}
