//! The runtime against the real local broker: several instances sharing the work of one
//! application while members join and leave, dead-lettering of poison records, and
//! start-up checks. Start the broker with `dev/kafka start` (or run `dev/test`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::{Offset, TopicPartitionList};
use streams_core::runtime::error_handling::{HEADER_EXCEPTION, HEADER_OFFSET};
use streams_core::runtime::{
    DeserializationErrorHandler, KafkaStreams, State, StreamsConfig, StreamsError,
};
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder, Topology};
use streams_test_support::{
    bootstrap, client_config, consume_n, consume_to_end, produce_keyed, require_broker, within,
    AppTopics, Isolation, TestTopic,
};

const TEST_LIMIT: Duration = Duration::from_secs(180);

fn unique_app(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

fn config(app: &str) -> StreamsConfig {
    StreamsConfig::new(app, bootstrap())
        .with_commit_interval(Duration::from_millis(200))
        .with_state_dir(std::env::temp_dir().join(app))
        .with_consumer_setting("session.timeout.ms", "10000")
        .with_consumer_setting("heartbeat.interval.ms", "1000")
}

/// `in → filter → map_values → peek → out`: drops values marked `drop`, tags the rest.
fn pipeline(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .filter_not(|_, v| v.ends_with(":drop"))
        .map_values(|v| format!("{v}:seen"))
        .peek(|_, _| {})
        .to(output, Produced::with(StringSerde, StringSerde));
    builder.build().unwrap()
}

fn start_instance(app: &str, input: &str, output: &str) -> KafkaStreams {
    let streams = KafkaStreams::new(pipeline(input, output), config(app)).unwrap();
    streams.start().unwrap();
    streams
}

/// Produces `per_key` records for each of `keys` keys, numbered from `from` per key.
fn produce_batch(topic: &str, keys: usize, from: usize, per_key: usize) {
    let records: Vec<(String, String)> = (from..from + per_key)
        .flat_map(|seq| (0..keys).map(move |k| (format!("key-{k}"), format!("{k}:{seq}"))))
        .collect();
    produce_keyed(topic, records);
}

/// Waits until `topic` holds records for every (key, seq) below `per_key`.
fn wait_for_output(
    topic: &str,
    keys: usize,
    per_key: usize,
    timeout: Duration,
) -> Vec<(String, usize)> {
    let deadline = Instant::now() + timeout;
    loop {
        let read = consume_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(20));
        let parsed: Vec<(String, usize)> = read
            .iter()
            .map(|r| {
                let seq = r
                    .value_str()
                    .split(':')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("value k:seq:seen");
                (r.key_str().to_string(), seq)
            })
            .collect();
        let mut seen: HashMap<&str, Vec<usize>> = HashMap::new();
        for (k, s) in &parsed {
            seen.entry(k.as_str()).or_default().push(*s);
        }
        let complete = (0..keys).all(|k| {
            seen.get(format!("key-{k}").as_str())
                .is_some_and(|seqs| (0..per_key).all(|s| seqs.contains(&s)))
        });
        if complete {
            return parsed;
        }
        assert!(
            Instant::now() < deadline,
            "output incomplete after {timeout:?}: {} records read",
            parsed.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn instances_share_partitions_and_lose_nothing_when_members_join_and_leave() {
    within(TEST_LIMIT, || {
        require_broker();
        let app = unique_app("it-rebalance");
        let _cleanup = AppTopics::new(&app);
        let input = TestTopic::new("rebalance-in", 3);
        let output = TestTopic::new("rebalance-out", 3);
        let (keys, per_phase) = (12, 50);

        let a = start_instance(&app, input.name(), output.name());
        let b = start_instance(&app, input.name(), output.name());
        assert!(
            a.wait_for_state(State::Running, Duration::from_secs(60)),
            "a: {:?}",
            a.state()
        );
        assert!(
            b.wait_for_state(State::Running, Duration::from_secs(60)),
            "b: {:?}",
            b.state()
        );
        produce_batch(input.name(), keys, 0, per_phase);
        wait_for_output(output.name(), keys, per_phase, Duration::from_secs(60));
        let mut tasks: Vec<_> = a.local_tasks().into_iter().chain(b.local_tasks()).collect();
        tasks.sort();
        assert_eq!(tasks.len(), 3, "three tasks over two instances: {tasks:?}");

        // A third instance joins mid-stream.
        let c = start_instance(&app, input.name(), output.name());
        produce_batch(input.name(), keys, per_phase, per_phase);
        assert!(
            c.wait_for_state(State::Running, Duration::from_secs(60)),
            "c: {:?}",
            c.state()
        );
        assert_eq!(
            c.local_tasks().len(),
            1,
            "range assignment of 3 partitions over 3 members"
        );
        wait_for_output(output.name(), keys, 2 * per_phase, Duration::from_secs(60));

        // One leaves while records keep coming.
        produce_batch(input.name(), keys, 2 * per_phase, per_phase);
        assert!(a.close(Duration::from_secs(30)), "a closes in time");
        assert_eq!(a.state(), State::NotRunning);
        produce_batch(input.name(), keys, 3 * per_phase, per_phase);
        let out = wait_for_output(output.name(), keys, 4 * per_phase, Duration::from_secs(90));
        let remaining = b.local_tasks().len() + c.local_tasks().len();
        assert_eq!(
            remaining, 3,
            "the two remaining instances took over every task"
        );
        assert!(b.close(Duration::from_secs(30)) && c.close(Duration::from_secs(30)));

        // Per key: starts at 0, never skips ahead (a replay after a rebalance may go
        // back, which at-least-once allows), and ends having covered every record.
        let mut per_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (k, s) in &out {
            per_key.entry(k.as_str()).or_default().push(*s);
        }
        assert_eq!(per_key.len(), keys);
        for (key, seqs) in &per_key {
            assert_eq!(seqs[0], 0, "{key}: {seqs:?}");
            for w in seqs.windows(2) {
                assert!(
                    w[1] <= w[0] + 1,
                    "{key} skipped from {} to {}: {seqs:?}",
                    w[0],
                    w[1]
                );
            }
            assert_eq!(*seqs.iter().max().unwrap(), 4 * per_phase - 1, "{key}");
        }
        assert!(out.len() >= keys * 4 * per_phase);
    });
}

/// A record's value and its headers as text.
type ValueAndHeaders = (Option<Vec<u8>>, HashMap<String, String>);

/// Reads `topic` until `n` records arrived, then for another second, so that records
/// beyond the `n` expected show up too.
fn read_with_headers(topic: &str, n: usize) -> Vec<ValueAndHeaders> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", unique_app("reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let mut deadline = Instant::now() + Duration::from_secs(30);
    let mut reached = false;
    while Instant::now() < deadline {
        if !reached && out.len() >= n {
            reached = true;
            deadline = Instant::now() + Duration::from_secs(1);
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().map(<[u8]>::to_vec), headers));
        }
    }
    out
}

#[test]
fn poison_records_go_to_the_dead_letter_topic_and_processing_continues() {
    within(TEST_LIMIT, || {
        require_broker();
        let app = unique_app("it-dlq");
        let _cleanup = AppTopics::new(&app);
        let input = TestTopic::new("dlq-in", 1);
        let output = TestTopic::new("dlq-out", 1);
        let dead = TestTopic::new("dlq-dead", 1);

        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, I64Serde))
            .map_values(|v| v * 10)
            .to(output.name(), Produced::with(StringSerde, I64Serde));
        let config = config(&app).with_deserialization_error_handler(
            DeserializationErrorHandler::DeadLetter {
                topic: dead.name().to_string(),
            },
        );
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();

        let good = |n: i64| n.to_be_bytes().to_vec();
        let producer: rdkafka::producer::BaseProducer = client_config().create().unwrap();
        for value in [good(1), b"not a long".to_vec(), good(2)] {
            producer
                .send(
                    rdkafka::producer::BaseRecord::to(input.name())
                        .key("k")
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();

        let out = consume_n(output.name(), 2, Duration::from_secs(60));
        let values: Vec<i64> = out
            .iter()
            .map(|r| i64::from_be_bytes(r.value.clone().unwrap().try_into().unwrap()))
            .collect();
        assert_eq!(
            values,
            [10, 20],
            "processing continued past the poison record"
        );
        // And nothing else was written (the poison record in particular).
        std::thread::sleep(Duration::from_millis(500));
        let all = consume_to_end(
            output.name(),
            Isolation::ReadUncommitted,
            Duration::from_secs(20),
        );
        assert_eq!(all.len(), 2, "exactly the two good records");
        let dead_letters = read_with_headers(dead.name(), 1);
        assert_eq!(dead_letters.len(), 1);
        let (payload, headers) = &dead_letters[0];
        assert_eq!(payload.as_deref(), Some(&b"not a long"[..]));
        assert_eq!(headers[HEADER_EXCEPTION], "deserialization");
        assert_eq!(headers[HEADER_OFFSET], "1");

        // Closing commits past the poison record: nothing is left to reprocess.
        assert!(streams.close(Duration::from_secs(30)));
        let group: BaseConsumer = client_config().set("group.id", &app).create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(input.name(), 0);
        let committed = group
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            committed.find_partition(input.name(), 0).unwrap().offset(),
            Offset::Offset(3)
        );
    });
}

#[test]
fn start_fails_clearly_on_missing_or_unequally_partitioned_joined_sources() {
    within(TEST_LIMIT, || {
        require_broker();
        let app = unique_app("it-startup");
        let _cleanup = AppTopics::new(&app);
        let missing = format!("missing-{}", uuid::Uuid::new_v4().simple());
        let streams = KafkaStreams::new(pipeline(&missing, "anywhere"), config(&app)).unwrap();
        match streams.start() {
            Err(StreamsError::MissingSourceTopics(topics)) => {
                assert_eq!(topics, std::slice::from_ref(&missing))
            }
            other => panic!("expected missing topics, got {other:?}"),
        }
        assert_eq!(streams.state(), State::Created);

        let two = TestTopic::new("copart-two", 2);
        let three = TestTopic::new("copart-three", 3);
        let builder = StreamsBuilder::new();
        let a = builder.stream(two.name(), Consumed::with(StringSerde, StringSerde));
        let b = builder.table(
            three.name(),
            Consumed::with(StringSerde, StringSerde),
            Materialized::new(),
        );
        a.join(&b, |l, r| format!("{l}{r}"))
            .to("anywhere", Produced::with(StringSerde, StringSerde));
        let streams = KafkaStreams::new(builder.build().unwrap(), config(&app)).unwrap();
        let err = streams.start().unwrap_err();
        assert!(matches!(err, StreamsError::CoPartitioning { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{} has 2", two.name()))
                && message.contains(&format!("{} has 3", three.name())),
            "{message}"
        );
    });
}

#[test]
fn repartition_records_are_purged_once_committed() {
    within(TEST_LIMIT, || {
        require_broker();
        let app = unique_app("it-purge");
        let _cleanup = AppTopics::new(&app);
        let input = TestTopic::new("purge-in", 2);
        let output = TestTopic::new("purge-out", 2);
        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, StringSerde))
            .select_key(|_, v| v.clone())
            .repartition(streams_core::Repartitioned::new().with_name("by-value"))
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let mut config = config(&app);
        config.repartition_purge_interval = Duration::from_millis(300);
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        produce_keyed(
            input.name(),
            (0..200).map(|i| (format!("k{i}"), format!("v{}", i % 20))),
        );
        assert_eq!(
            consume_n(output.name(), 200, Duration::from_secs(30)).len(),
            200
        );
        // No duplicates beyond the 200 (no rebalance or failure happened).
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            consume_to_end(
                output.name(),
                Isolation::ReadUncommitted,
                Duration::from_secs(20)
            )
            .len(),
            200
        );

        // Everything was read and committed: the repartition topic gets emptied.
        let repartition = format!("{app}-by-value-repartition");
        let consumer: BaseConsumer = client_config().create().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Later commits purge; keep a trickle of input so that commits happen.
            produce_keyed(input.name(), [("tick", "v0")]);
            let purged: i64 = (0..2)
                .map(|p| {
                    consumer
                        .fetch_watermarks(&repartition, p, Duration::from_secs(5))
                        .unwrap()
                        .0
                })
                .sum();
            if purged >= 150 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "repartition records not purged (low watermarks sum {purged})"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(streams.close(Duration::from_secs(30)));
    });
}

#[test]
fn a_merge_of_differently_partitioned_topics_runs_one_task_per_partition() {
    within(TEST_LIMIT, || {
        require_broker();
        let app = unique_app("it-merge-parts");
        let _cleanup = AppTopics::new(&app);
        let one = TestTopic::new("merge-one", 1);
        let three = TestTopic::new("merge-three", 3);
        let output = TestTopic::new("merge-out", 1);
        let builder = StreamsBuilder::new();
        let a = builder.stream(one.name(), Consumed::with(StringSerde, StringSerde));
        let b = builder.stream(three.name(), Consumed::with(StringSerde, StringSerde));
        a.merge(&b)
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let streams = KafkaStreams::new(builder.build().unwrap(), config(&app)).unwrap();
        streams
            .start()
            .expect("merged topics need not be co-partitioned");
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        produce_keyed(
            one.name(),
            (0..10).map(|i| (format!("a{i}"), format!("one-{i}"))),
        );
        produce_keyed(
            three.name(),
            (0..30).map(|i| (format!("b{i}"), format!("three-{i}"))),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut values = loop {
            let read = consume_to_end(
                output.name(),
                Isolation::ReadUncommitted,
                Duration::from_secs(20),
            );
            if read.len() >= 40 || Instant::now() > deadline {
                break read
                    .iter()
                    .map(|r| r.value_str().to_string())
                    .collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        values.sort();
        let mut expected: Vec<String> = (0..10)
            .map(|i| format!("one-{i}"))
            .chain((0..30).map(|i| format!("three-{i}")))
            .collect();
        expected.sort();
        assert_eq!(values, expected);
        // One task per partition of the larger topic.
        let mut tasks: Vec<String> = streams
            .local_tasks()
            .iter()
            .map(ToString::to_string)
            .collect();
        tasks.sort();
        assert_eq!(tasks, ["0_0", "0_1", "0_2"]);
        assert!(
            streams.thread_errors().is_empty(),
            "{:?}",
            streams.thread_errors()
        );
        assert!(streams.close(Duration::from_secs(30)));
    });
}

#[test]
fn a_stream_table_join_waits_for_the_table_records_already_on_the_broker() {
    within(TEST_LIMIT, || {
        require_broker();
        let app = unique_app("it-lag-wait");
        let _cleanup = AppTopics::new(&app);
        let customers = TestTopic::new("lag-customers", 1);
        let orders = TestTopic::new("lag-orders", 1);
        let output = TestTopic::new("lag-out", 1);
        // The table topic holds far more than one fetch returns (small batches, so that
        // the fetch size below holds); the orders, written after it, refer to the
        // customers written last.
        let padding = "x".repeat(200);
        let producer: rdkafka::producer::BaseProducer = client_config()
            .set("batch.num.messages", "5")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        for i in 0..3000 {
            let (key, value) = (format!("c{i}"), format!("name-{i}-{padding}"));
            let mut record = rdkafka::producer::BaseRecord::to(customers.name())
                .key(&key)
                .payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
        let wanted: Vec<usize> = (2950..3000).collect();
        produce_keyed(
            orders.name(),
            wanted
                .iter()
                .map(|i| (format!("c{i}"), format!("order-{i}"))),
        );

        let builder = StreamsBuilder::new();
        let table = builder.table(
            customers.name(),
            Consumed::with(StringSerde, StringSerde),
            Materialized::new(),
        );
        builder
            .stream(orders.name(), Consumed::with(StringSerde, StringSerde))
            .join(&table, |order, name| {
                format!("{order}:{}", name.split('-').nth(1).unwrap_or("?"))
            })
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        // Small fetches: the table arrives in many pieces, the orders at once. With
        // `max_task_idle` 0 (the default) the task still waits while the table's
        // partition has records on the broker.
        let config = config(&app).with_consumer_setting("max.partition.fetch.bytes", "16384");
        assert_eq!(config.max_task_idle, Duration::ZERO);
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        assert!(
            streams.wait_for_state(State::Running, Duration::from_secs(60)),
            "{:?} {:?}",
            streams.state(),
            streams.thread_errors()
        );

        let deadline = Instant::now() + Duration::from_secs(60);
        let joined = loop {
            let read = consume_to_end(
                output.name(),
                Isolation::ReadUncommitted,
                Duration::from_secs(20),
            );
            let done = read.len() >= wanted.len();
            if done || Instant::now() > deadline {
                // Give records beyond the expected ones a chance to show up.
                if done {
                    std::thread::sleep(Duration::from_millis(500));
                }
                break consume_to_end(
                    output.name(),
                    Isolation::ReadUncommitted,
                    Duration::from_secs(20),
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        let got: Vec<(String, String)> = joined
            .iter()
            .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
            .collect();
        let expected: Vec<(String, String)> = wanted
            .iter()
            .map(|i| (format!("c{i}"), format!("order-{i}:{i}")))
            .collect();
        assert_eq!(got, expected, "every order joined its customer");
        assert!(
            streams.thread_errors().is_empty(),
            "{:?}",
            streams.thread_errors()
        );
        assert!(streams.close(Duration::from_secs(30)));
    });
}
