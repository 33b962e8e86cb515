//! Exactly-once processing against the real broker: outputs, changelog writes and
//! consumed offsets commit together, so a read-committed reader sees every update exactly
//! once. Start the broker with `dev/kafka start` (or run `dev/test`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use streams_core::runtime::{KafkaStreams, ProcessingGuarantee, State, StreamsConfig};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
use streams_test_support::{
    bootstrap, consume_to_end, produce_keyed, require_broker, within, Isolation, TestTopic,
};

fn counting_app(app: &str, input: &str, output: &str, state_dir: &std::path::Path) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        .count(Materialized::as_store("counts"))
        .to_stream()
        .to(output, Produced::with(StringSerde, Nullable(I64Serde)));
    // No record cache: every update is forwarded, so each one can be checked.
    let config = StreamsConfig::new(app, bootstrap())
        .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
        .with_state_dir(state_dir)
        .with_store_cache_max_bytes(0);
    assert_eq!(
        config.commit_interval,
        Duration::from_millis(100),
        "exactly-once commits every 100 ms by default"
    );
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    streams.start().unwrap();
    assert!(
        streams.wait_for_state(State::Running, Duration::from_secs(60)),
        "{:?}",
        streams.state()
    );
    streams
}

fn read_committed(topic: &str, expected: usize) -> Vec<(String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = consume_to_end(topic, Isolation::ReadCommitted, Duration::from_secs(20));
        if records.len() >= expected || Instant::now() > deadline {
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
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_update_is_committed_exactly_once_across_a_restart() {
    within(Duration::from_secs(180), || {
        require_broker();
        let app = format!("it-eos-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("eos-in", 3);
        let output = TestTopic::new("eos-out", 3);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dir = tempfile::tempdir().unwrap();
        let batch = |from: usize, n: usize| -> Vec<(String, String)> {
            (from..from + n)
                .map(|i| (format!("k{}", i % 30), format!("v{i}")))
                .collect()
        };

        let streams = counting_app(&app, input.name(), output.name(), dir.path());
        produce_keyed(input.name(), batch(0, 1500));
        let updates = read_committed(output.name(), 1500);
        assert_eq!(updates.len(), 1500, "one committed update per input record");
        assert!(streams.close(Duration::from_secs(30)));

        // A restart (clean close, so the checkpoint is trusted) continues the counts.
        let streams = counting_app(&app, input.name(), output.name(), dir.path());
        produce_keyed(input.name(), batch(1500, 1500));
        let updates = read_committed(output.name(), 3000);
        assert_eq!(updates.len(), 3000, "no update duplicated or lost");
        let mut per_key: HashMap<String, Vec<i64>> = HashMap::new();
        for (k, c) in updates {
            per_key.entry(k).or_default().push(c);
        }
        assert_eq!(per_key.len(), 30);
        for (key, counts) in &per_key {
            // Per key, the committed updates are exactly 1, 2, ..., 100.
            let expected: Vec<i64> = (1..=100).collect();
            assert_eq!(counts, &expected, "{key}");
        }
        assert!(streams.close(Duration::from_secs(30)));
    });
}

#[test]
fn an_aborted_transaction_is_rewound_and_never_visible_to_read_committed_readers() {
    within(Duration::from_secs(180), || {
        require_broker();
        let app = format!("it-eos-abort-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("eos-abort-in", 1);
        // The broker refuses batches over 2 KB here: a big record fails its transaction.
        let output = TestTopic::with_config("eos-abort-out", 1, &[("max.message.bytes", "2048")]);
        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, StringSerde))
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let config = StreamsConfig::new(&app, bootstrap())
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
            .with_state_dir(tempfile::tempdir().unwrap().path())
            .with_producer_setting("linger.ms", "0");
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));

        produce_keyed(input.name(), [("k", "small-1"), ("k", "small-2")]);
        let committed = |n: usize| {
            consume_to_end(
                output.name(),
                Isolation::ReadCommitted,
                Duration::from_secs(20),
            )
            .len()
                >= n
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !committed(2) {
            assert!(
                Instant::now() < deadline,
                "the first records were never committed"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let big = "x".repeat(4096);
        produce_keyed(
            input.name(),
            [("k", big.as_str()), ("k", "after-the-big-one")],
        );

        // Every attempt aborts and rewinds to the committed offset; after a few the
        // thread gives up.
        assert!(
            streams.wait_for_state(State::Error, Duration::from_secs(90)),
            "{:?}",
            streams.state()
        );
        let errors = streams.thread_errors();
        // Four attempts: the first and three more after rewinding to the committed offset.
        assert!(
            errors
                .iter()
                .any(|e| e.contains("4 transactions in a row were aborted")),
            "{errors:?}"
        );

        let visible: Vec<String> = consume_to_end(
            output.name(),
            Isolation::ReadCommitted,
            Duration::from_secs(20),
        )
        .iter()
        .map(|r| r.value_str().to_string())
        .collect();
        assert_eq!(
            visible,
            ["small-1", "small-2"],
            "nothing of the aborted transactions is visible"
        );
        assert!(streams.close(Duration::from_secs(30)));
    });
}

#[test]
fn a_partition_paused_by_backpressure_moves_again_after_an_abort() {
    within(Duration::from_secs(180), || {
        require_broker();
        let app = format!("it-eos-paused-{}", uuid::Uuid::new_v4().simple());
        // Sub-topology 0 reads `left` and `right` in one task: with `right` empty it idles,
        // so `left` fills its buffer and backpressure pauses it.
        let left = TestTopic::new("eos-paused-left", 1);
        let right = TestTopic::new("eos-paused-right", 1);
        let merged = TestTopic::new("eos-paused-merged", 1);
        // Sub-topology 1 makes one transaction fail: its first output is too large.
        let trigger = TestTopic::new("eos-paused-trigger", 1);
        let limited =
            TestTopic::with_config("eos-paused-limited", 1, &[("max.message.bytes", "2048")]);
        let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let builder = StreamsBuilder::new();
        let from_left = builder.stream(left.name(), Consumed::with(StringSerde, StringSerde));
        let from_right = builder.stream(right.name(), Consumed::with(StringSerde, StringSerde));
        from_left
            .merge(&from_right)
            .to(merged.name(), Produced::with(StringSerde, StringSerde));
        let once = first.clone();
        builder
            .stream(trigger.name(), Consumed::with(StringSerde, StringSerde))
            .map_values(move |v: String| {
                if once.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    "x".repeat(4096)
                } else {
                    v
                }
            })
            .to(limited.name(), Produced::with(StringSerde, StringSerde));
        let mut config = StreamsConfig::new(&app, bootstrap())
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
            .with_state_dir(tempfile::tempdir().unwrap().path())
            .with_max_task_idle(Duration::from_secs(8))
            .with_producer_setting("linger.ms", "0");
        config.buffered_records_per_partition = 5;
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));

        let lefts: Vec<(String, String)> = (0..50)
            .map(|i| (format!("k{i}"), format!("left-{i}")))
            .collect();
        produce_keyed(left.name(), lefts.clone());
        // Fetched at once: 50 buffered records pause `left` while the task idles.
        std::thread::sleep(Duration::from_millis(1500));
        produce_keyed(trigger.name(), [("t", "small")]);

        // The oversized record aborts the transaction; the rewound task emits the small one.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = consume_to_end(
                limited.name(),
                Isolation::ReadCommitted,
                Duration::from_secs(10),
            );
            if !out.is_empty() {
                let values: Vec<&str> = out.iter().map(|r| r.value_str()).collect();
                assert_eq!(values, ["small"]);
                break;
            }
            assert!(Instant::now() < deadline, "the trigger was never committed");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            !first.load(std::sync::atomic::Ordering::SeqCst),
            "the oversized record was produced"
        );
        assert!(
            streams.thread_errors().is_empty(),
            "{:?}",
            streams.thread_errors()
        );

        // `left` was paused when the abort rewound its task; it must be fetched again.
        let deadline = Instant::now() + Duration::from_secs(60);
        let out = loop {
            let out = consume_to_end(
                merged.name(),
                Isolation::ReadCommitted,
                Duration::from_secs(10),
            );
            if out.len() >= lefts.len() || Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let got: Vec<(String, String)> = out
            .iter()
            .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
            .collect();
        assert_eq!(got, lefts, "every left record, once, in order");
        assert!(streams.close(Duration::from_secs(30)));
    });
}

/// Sends `key` → a count-store changelog value (Kafka's `ValueAndTimestamp` layout: the
/// timestamp, then the count) to partition 0 of `changelog` through `producer`.
fn send_count(producer: &rdkafka::producer::BaseProducer, changelog: &str, key: &str, count: i64) {
    use rdkafka::producer::{BaseRecord, Producer};
    let mut value = 1_000_i64.to_be_bytes().to_vec();
    value.extend_from_slice(&count.to_be_bytes());
    producer
        .send(
            BaseRecord::to(changelog)
                .partition(0)
                .key(key)
                .payload(&value),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A transactional producer that has written its first transaction's records.
fn transactional_producer(timeout_ms: &str) -> rdkafka::producer::BaseProducer {
    use rdkafka::producer::{BaseProducer, Producer};
    let producer: BaseProducer = streams_test_support::client_config()
        .set(
            "transactional.id",
            format!("it-eos-owner-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("transaction.timeout.ms", timeout_ms)
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer.begin_transaction().unwrap();
    producer
}

/// An owner killed in the middle of a transaction leaves it open until it times out, and
/// the changelog's last stable offset stays at its first record meanwhile; the task's
/// next owner commits writes (and input offsets) after it. Whoever takes the task over
/// then must restore those committed writes too: stopping at the stable offset would
/// restart the counts from before them while the input goes on after them.
#[test]
fn restoration_reads_committed_changelog_writes_past_an_open_transaction() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::producer::Producer;
    use rdkafka::{Offset, TopicPartitionList};
    within(Duration::from_secs(180), || {
        require_broker();
        let app = format!("it-eos-open-txn-{}", uuid::Uuid::new_v4().simple());
        let changelog_name = format!("{app}-counts-changelog");
        let input = TestTopic::new("eos-open-txn-in", 1);
        let output = TestTopic::new("eos-open-txn-out", 1);
        let _changelog = TestTopic::adopt(&changelog_name);

        // A first instance counts five records and closes: the changelog exists and
        // holds k → 5, the input offset 5 is committed.
        let streams = counting_app(
            &app,
            input.name(),
            output.name(),
            tempfile::tempdir().unwrap().path(),
        );
        produce_keyed(input.name(), (0..5).map(|i| ("k", format!("v{i}"))));
        assert_eq!(
            read_committed(output.name(), 5).last(),
            Some(&("k".into(), 5))
        );
        assert!(streams.close(Duration::from_secs(30)));

        // An owner killed mid-transaction: k → 99, never committed (it times out).
        let killed = transactional_producer("5000");
        send_count(&killed, &changelog_name, "k", 99);
        // The next owner counted two more records, k → 7, and committed that with the
        // input offset 7.
        produce_keyed(input.name(), [("k", "v5"), ("k", "v6")]);
        let next_owner = transactional_producer("60000");
        send_count(&next_owner, &changelog_name, "k", 7);
        next_owner
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
        let group: BaseConsumer = streams_test_support::client_config()
            .set("group.id", &app)
            .create()
            .unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(input.name(), 0, Offset::Offset(7))
            .unwrap();
        group.commit(&offsets, CommitMode::Sync).unwrap();

        // A third instance, without local state, takes the task over while the killed
        // owner's transaction is still open, and counts one more record.
        let streams = counting_app(
            &app,
            input.name(),
            output.name(),
            tempfile::tempdir().unwrap().path(),
        );
        produce_keyed(input.name(), [("k", "v7")]);
        let updates = read_committed(output.name(), 6);
        assert_eq!(
            updates.last(),
            Some(&("k".into(), 8)),
            "the count goes on from the committed 7: {updates:?}"
        );
        assert!(streams.close(Duration::from_secs(30)));
        drop(killed);
    });
}
