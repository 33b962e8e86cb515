//! A global table under the runtime, against the real broker: it is filled from every
//! partition before processing starts on each instance, and follows updates. Start the
//! broker with `dev/kafka start` (or run `dev/test`).

use std::time::{Duration, Instant};

use streams_core::runtime::{KafkaStreams, ProcessingGuarantee, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder};
use streams_test_support::{
    bootstrap, consume_to_end, produce_keyed, require_broker, within, Isolation, TestTopic,
};

#[test]
fn global_tables_are_complete_before_processing_and_follow_updates() {
    within(Duration::from_secs(120), || {
        require_broker();
        let customers = TestTopic::new("global-customers", 3);
        let orders = TestTopic::new("global-orders", 2);
        let output = TestTopic::new("global-out", 2);
        let keys: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
        produce_keyed(
            customers.name(),
            keys.iter().map(|k| (k.clone(), format!("name-of-{k}"))),
        );
        // Orders exist before the application starts: every one must find its customer,
        // whichever partition the customer is on.
        produce_keyed(
            orders.name(),
            keys.iter().map(|k| (format!("order-{k}"), k.clone())),
        );

        let builder = StreamsBuilder::new();
        let table = builder.global_table(
            customers.name(),
            Consumed::with(StringSerde, StringSerde),
            Materialized::new(),
        );
        builder
            .stream(orders.name(), Consumed::with(StringSerde, StringSerde))
            .join_global(
                &table,
                |_, customer| customer.clone(),
                |_, name| name.clone(),
            )
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let app = format!("it-global-{}", uuid::Uuid::new_v4().simple());
        let streams = KafkaStreams::new(
            builder.build().unwrap(),
            StreamsConfig::new(&app, bootstrap()).with_commit_interval(Duration::from_millis(200)),
        )
        .unwrap();
        streams.start().unwrap();
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));

        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let out = consume_to_end(
                    output.name(),
                    Isolation::ReadUncommitted,
                    Duration::from_secs(10),
                );
                if out.len() >= n || Instant::now() > deadline {
                    return out;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        let out = wait_for(30);
        assert_eq!(out.len(), 30, "every order joined");
        assert!(out
            .iter()
            .all(|r| r.value_str()
                == format!("name-of-{}", r.key_str().trim_start_matches("order-"))));

        // An update of the global topic reaches later joins (the global thread applies it
        // asynchronously, so keep ordering until one sees it).
        produce_keyed(customers.name(), [("c7", "renamed")]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sent = 0;
        loop {
            sent += 1;
            produce_keyed(orders.name(), [(format!("order-late-{sent}"), "c7")]);
            let out = wait_for(30 + sent);
            if out
                .iter()
                .any(|r| r.key_str().starts_with("order-late") && r.value_str() == "renamed")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the update never reached the global store"
            );
        }
        assert!(streams.close(Duration::from_secs(30)));
    });
}

/// Writes `key`/`value` to `partition` of `topic` in a transaction, committed or aborted.
fn transactional_write(topic: &str, partition: i32, key: &str, value: &str, commit: bool) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = streams_test_support::client_config()
        .set(
            "transactional.id",
            format!("it-global-txn-{}", uuid::Uuid::new_v4().simple()),
        )
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    producer.begin_transaction().unwrap();
    producer
        .send(
            BaseRecord::to(topic)
                .partition(partition)
                .key(key)
                .payload(value),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(timeout).unwrap();
    if commit {
        producer.commit_transaction(timeout).unwrap();
    } else {
        producer.abort_transaction(timeout).unwrap();
    }
}

/// Deletes every record of `topic`'s `partition`: its end offset stays above 0.
fn delete_all_records(topic: &str, partition: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        streams_test_support::client_config().create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::End)
        .unwrap();
    let result =
        futures::executor::block_on(admin.delete_records(&tpl, &AdminOptions::new())).unwrap();
    for e in result.elements() {
        e.error().unwrap();
    }
}

#[test]
fn bootstrap_finishes_on_partitions_without_readable_records() {
    within(Duration::from_secs(120), || {
        require_broker();
        let customers = TestTopic::new("global-markers", 3);
        let orders = TestTopic::new("global-markers-orders", 1);
        let output = TestTopic::new("global-markers-out", 1);
        // Partition 0: a committed record and its commit marker.
        transactional_write(customers.name(), 0, "c0", "ann", true);
        // Partition 1: an aborted record and its abort marker: nothing to read committed.
        transactional_write(customers.name(), 1, "c1", "ghost", false);
        // Partition 2: a record deleted since; its end offset is 1, its start 1 too.
        let producer: rdkafka::producer::BaseProducer =
            streams_test_support::client_config().create().unwrap();
        producer
            .send(
                rdkafka::producer::BaseRecord::to(customers.name())
                    .partition(2)
                    .key("c2")
                    .payload("gone"),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();
        delete_all_records(customers.name(), 2);

        let builder = StreamsBuilder::new();
        let table = builder.global_table(
            customers.name(),
            Consumed::with(StringSerde, StringSerde),
            Materialized::new(),
        );
        builder
            .stream(orders.name(), Consumed::with(StringSerde, StringSerde))
            .left_join_global(
                &table,
                |_, customer| customer.clone(),
                |order, name| format!("{order}:{}", name.map_or("-", String::as_str)),
            )
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let app = format!("it-global-markers-{}", uuid::Uuid::new_v4().simple());
        let streams = KafkaStreams::new(
            builder.build().unwrap(),
            StreamsConfig::new(&app, bootstrap())
                .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
                .with_state_dir(tempfile::tempdir().unwrap().path()),
        )
        .unwrap();
        // Bootstrapping reads every partition to its end; it must see that there is
        // nothing more to read on partitions 1 and 2.
        let started = Instant::now();
        streams.start().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bootstrap took {:?}",
            started.elapsed()
        );
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        produce_keyed(orders.name(), [("o", "c0"), ("o", "c1"), ("o", "c2")]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let values = loop {
            let out = consume_to_end(
                output.name(),
                Isolation::ReadCommitted,
                Duration::from_secs(10),
            );
            if out.len() >= 3 || Instant::now() > deadline {
                break out
                    .iter()
                    .map(|r| r.value_str().to_string())
                    .collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(values, ["c0:ann", "c1:-", "c2:-"]);
        assert!(streams.close(Duration::from_secs(30)));
    });
}
