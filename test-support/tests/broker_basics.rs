//! The real local broker behaves as the rest of the project assumes: records
//! round-trip, aborted transactions stay invisible to read_committed readers,
//! librdkafka's murmur2_random partitioner matches Kafka's Java one, and
//! [`InFlight`] sees open transactions and uncommitted input.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::executor::block_on;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use streams_test_support::{
    client_config, consume_n, consume_to_end, consume_with, murmur2_vectors, produce_keyed,
    require_broker, within, ConsumeOptions, ConsumedRecord, InFlight, Isolation, TestTopic,
    MURMUR2_PARTITION_COUNTS,
};

const TEST_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn produced_records_are_consumed_back() {
    within(TEST_LIMIT, || {
        require_broker();
        let topic = TestTopic::new("basics-roundtrip", 3);
        let records: Vec<(String, String)> = (0..30)
            .map(|i| (format!("key-{}", i % 10), format!("value-{i}")))
            .collect();

        let delivered = produce_keyed(topic.name(), records.clone());
        let consumed = consume_n(topic.name(), records.len(), Duration::from_secs(20));

        assert_eq!(
            consumed.len(),
            records.len(),
            "records read back: {consumed:?}"
        );
        let sent: BTreeSet<(String, String)> = records.into_iter().collect();
        let read: BTreeSet<(String, String)> = consumed
            .iter()
            .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
            .collect();
        assert_eq!(read, sent);

        // One key, one partition; offsets grow within each partition.
        let mut partition_of_key = BTreeMap::new();
        let mut last_offset = BTreeMap::new();
        for record in &consumed {
            let partition = *partition_of_key
                .entry(record.key_str().to_string())
                .or_insert(record.partition);
            assert_eq!(
                partition,
                record.partition,
                "key {} spread over partitions",
                record.key_str()
            );
            let previous = last_offset.insert(record.partition, record.offset);
            assert!(
                previous.is_none_or(|p| p < record.offset),
                "offsets out of order: {consumed:?}"
            );
        }
        assert!(delivered.iter().all(|d| (0..3).contains(&d.partition)));
    });
}

#[test]
fn aborted_transaction_is_invisible_to_read_committed() {
    within(TEST_LIMIT, || {
        require_broker();
        let topic = TestTopic::new("basics-transactions", 1);
        let producer: FutureProducer = client_config()
            .set(
                "transactional.id",
                format!("basics-transactions-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("transaction.timeout.ms", "30000")
            .create()
            .expect("transactional producer");
        let send_all = |values: &[&str]| {
            let deliveries: Vec<_> = values
                .iter()
                .map(|value| {
                    producer
                        .send_result(FutureRecord::to(topic.name()).key("k").payload(*value))
                        .map_err(|(e, _)| e)
                        .expect("enqueue")
                })
                .collect();
            // Wait for the broker to have the records, so the abort really
            // leaves aborted records in the log rather than purging them.
            for delivery in deliveries {
                block_on(delivery)
                    .expect("delivery report")
                    .expect("delivered");
            }
        };
        let timeout = Duration::from_secs(15);

        producer
            .init_transactions(timeout)
            .expect("init_transactions");
        producer
            .begin_transaction()
            .expect("begin aborted transaction");
        send_all(&["aborted-0", "aborted-1", "aborted-2"]);
        producer
            .abort_transaction(timeout)
            .expect("abort_transaction");
        producer
            .begin_transaction()
            .expect("begin committed transaction");
        send_all(&["committed-0", "committed-1"]);
        producer
            .commit_transaction(timeout)
            .expect("commit_transaction");

        let values = |records: Vec<ConsumedRecord>| -> Vec<String> {
            records.iter().map(|r| r.value_str().to_string()).collect()
        };
        // commit_transaction returns once the commit is decided; the markers
        // reach the partition just after. So wait for the first two records a
        // read_committed consumer sees instead of reading to the current end:
        // had the aborted records been visible, they would be those two.
        let first_committed = consume_with(
            topic.name(),
            ConsumeOptions {
                max_records: 2,
                timeout: Duration::from_secs(20),
                isolation: Isolation::ReadCommitted,
                stop_at_end: false,
            },
        );
        assert_eq!(values(first_committed), ["committed-0", "committed-1"]);
        // Up to the end of the partition, nothing else is visible either.
        let timeout = Duration::from_secs(20);
        assert_eq!(
            values(consume_to_end(
                topic.name(),
                Isolation::ReadCommitted,
                timeout
            )),
            ["committed-0", "committed-1"]
        );
        // The aborted records are in the log: read_uncommitted sees them.
        assert_eq!(
            values(consume_to_end(
                topic.name(),
                Isolation::ReadUncommitted,
                timeout
            )),
            [
                "aborted-0",
                "aborted-1",
                "aborted-2",
                "committed-0",
                "committed-1"
            ]
        );
    });
}

#[test]
fn in_flight_sees_open_transactions_and_uncommitted_input() {
    within(TEST_LIMIT, || {
        require_broker();
        let topic = TestTopic::new("basics-in-flight", 2);
        let probe = InFlight::new();
        let producer: FutureProducer = client_config()
            .set(
                "transactional.id",
                format!("basics-in-flight-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("transaction.timeout.ms", "30000")
            .create()
            .expect("transactional producer");
        let timeout = Duration::from_secs(15);
        producer
            .init_transactions(timeout)
            .expect("init_transactions");
        producer.begin_transaction().expect("begin_transaction");
        for value in ["a", "b", "c"] {
            let delivery = producer
                .send_result(
                    FutureRecord::to(topic.name())
                        .key("k")
                        .payload(value)
                        .partition(1),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
            block_on(delivery)
                .expect("delivery report")
                .expect("delivered");
        }
        assert_eq!(
            probe.open_transaction_records(topic.name(), &[0, 1]),
            BTreeMap::from([(0, 0), (1, 3)])
        );
        producer
            .commit_transaction(timeout)
            .expect("commit_transaction");
        // The commit marker reaches the partition just after the commit returns.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while probe.open_transaction_records(topic.name(), &[1])[&1] != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "still open after commit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // A group that never committed has all 3 records (and the marker) ahead of it.
        let group = format!("basics-in-flight-{}", uuid::Uuid::new_v4().simple());
        assert_eq!(
            probe.uncommitted_input(&group, topic.name(), &[0, 1]),
            BTreeMap::from([(0, 0), (1, 4)])
        );
    });
}

#[test]
fn murmur2_random_partitioner_matches_the_java_default_partitioner() {
    within(TEST_LIMIT, || {
        require_broker();
        let vectors = murmur2_vectors();
        let mut mismatches = Vec::new();
        for partition_count in MURMUR2_PARTITION_COUNTS {
            let topic = TestTopic::new("basics-murmur2", partition_count);
            let delivered = produce_keyed(
                topic.name(),
                vectors
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.key.clone(), i.to_string())),
            );
            for (vector, delivery) in vectors.iter().zip(&delivered) {
                let java = vector
                    .partition_for(partition_count)
                    .expect("vector for this count");
                if delivery.partition != java {
                    mismatches.push(format!(
                        "key {:02x?} with {partition_count} partitions: rdkafka chose {}, Java chooses {java}",
                        vector.key, delivery.partition
                    ));
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "partitioner mismatches:\n{}",
            mismatches.join("\n")
        );
    });
}
