//! A foreign-key table join under the runtime, against the real broker: the two tables
//! are partitioned differently, so the join's internal topics must be sized like the
//! table each is read with, and answers must find left rows on whatever partition a
//! producer put them. Start the broker with `dev/kafka start` (or run `dev/test`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::producer::{FutureProducer, FutureRecord};
use streams_core::runtime::partitioner::partition_for_key;
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::{Nullable, StringSerde};
use streams_core::{Consumed, Materialized, Produced, StreamsBuilder};
use streams_test_support::{
    bootstrap, client_config, consume_to_end, produce_keyed, require_broker, within, Isolation,
    TestTopic,
};

/// How the test writes the orders table's records.
#[derive(Clone, Copy)]
enum OrderPartitions {
    /// By murmur2 of the key, as Kafka's Java producer does.
    Murmur2,
    /// Each to the partition after its murmur2 partition, as a producer with another
    /// partitioner might.
    NextToMurmur2,
}

/// Writes each record to the partition after the one murmur2 of its key picks.
fn produce_off_murmur2(topic: &str, partitions: i32, records: &[(String, String)]) {
    let producer: FutureProducer = client_config()
        .set("acks", "all")
        .set("message.timeout.ms", "15000")
        .create()
        .expect("producer");
    for (key, value) in records {
        let partition = (partition_for_key(key.as_bytes(), partitions) + 1) % partitions;
        let record = FutureRecord::to(topic)
            .key(key.as_bytes())
            .payload(value.as_bytes())
            .partition(partition);
        let delivered = block_on(producer.send_result(record).expect("accepted"))
            .expect("producer alive")
            .expect("delivered");
        assert_eq!(delivered.partition, partition);
    }
}

#[test]
fn orders_join_their_customer_across_differently_partitioned_tables() {
    join_orders_with_customers(OrderPartitions::Murmur2);
}

#[test]
fn answers_reach_orders_written_to_a_partition_other_than_murmur2_of_their_key() {
    join_orders_with_customers(OrderPartitions::NextToMurmur2);
}

fn join_orders_with_customers(order_partitions: OrderPartitions) {
    within(Duration::from_secs(120), move || {
        require_broker();
        let app = format!("it-fk-{}", uuid::Uuid::new_v4().simple());
        let orders = TestTopic::new("fk-orders", 3);
        let customers = TestTopic::new("fk-customers", 2);
        let output = TestTopic::new("fk-out", 3);
        let _internal: Vec<TestTopic> = ["REGISTRATION", "RESPONSE"]
            .iter()
            .map(|kind| {
                TestTopic::adopt(&format!(
                    "{app}-KTABLE-FK-JOIN-SUBSCRIPTION-{kind}-0000000005-topic"
                ))
            })
            .collect();

        let builder = StreamsBuilder::new();
        let strings = || Consumed::with(StringSerde, StringSerde);
        let order_table = builder.table(orders.name(), strings(), Materialized::new());
        let customer_table = builder.table(customers.name(), strings(), Materialized::new());
        order_table
            .join_on_foreign_key(
                &customer_table,
                |order: &String| order.split(':').next().unwrap_or("").to_string(),
                |order, name| format!("{order} by {name}"),
            )
            .to_stream()
            .to(
                output.name(),
                Produced::with(StringSerde, Nullable(StringSerde)),
            );
        let config =
            StreamsConfig::new(&app, bootstrap()).with_commit_interval(Duration::from_millis(200));
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        assert!(
            streams.wait_for_state(State::Running, Duration::from_secs(60)),
            "{:?}",
            streams.state()
        );

        produce_keyed(
            customers.name(),
            (0..10).map(|c| (format!("c{c}"), format!("name{c}"))),
        );
        let order_records: Vec<(String, String)> = (0..40)
            .map(|o| (format!("o{o}"), format!("c{}:item{o}", o % 10)))
            .collect();
        match order_partitions {
            OrderPartitions::Murmur2 => {
                produce_keyed(orders.name(), order_records);
            }
            OrderPartitions::NextToMurmur2 => {
                produce_off_murmur2(orders.name(), orders.partitions(), &order_records)
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let latest = loop {
            let records = consume_to_end(
                output.name(),
                Isolation::ReadUncommitted,
                Duration::from_secs(20),
            );
            let latest: HashMap<String, String> = records
                .iter()
                .filter(|r| r.value.is_some())
                .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
                .collect();
            if latest.len() == 40 || Instant::now() > deadline {
                break latest;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        assert_eq!(latest.len(), 40, "every order joined: {latest:?}");
        for o in 0..40 {
            assert_eq!(
                latest[&format!("o{o}")],
                format!("c{}:item{o} by name{}", o % 10, o % 10)
            );
        }
        assert!(streams.close(Duration::from_secs(30)));
    });
}
