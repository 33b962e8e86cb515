//! Records without a key, when the key type has no null: skipped where Kafka Streams'
//! aggregations, joins and table sources skip them (a warning and
//! `streams_dropped_records_total{reason="null_key"}`), never sent to the
//! deserialization error handler, whose default would stop the task. Null values of
//! table sources are deletes.

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::test_driver::TopologyTestDriver;
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};

/// The `null_key` drops recorded since the last snapshot.
fn null_key_drops(snapshotter: &Snapshotter) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, _, _, _)| {
            key.key().name() == "streams_dropped_records_total"
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == "reason" && l.value() == "null_key")
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => n,
            other => panic!("not a counter: {other:?}"),
        })
        .sum()
}

fn strings() -> Consumed<String, String> {
    Consumed::with(StringSerde, StringSerde)
}

#[test]
fn an_aggregation_skips_null_keys_and_counts_them() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let builder = StreamsBuilder::new();
        builder
            .stream("words", strings())
            .group_by_key(Grouped::new())
            .count(Materialized::as_store("counts"))
            .to_stream()
            .to("counts", Produced::with(StringSerde, Nullable(I64Serde)));
        let driver = TopologyTestDriver::new(builder.build().unwrap());
        let input = driver.input_topic("words", StringSerde, StringSerde);
        input.pipe_input_at("a".into(), "x".into(), 1);
        input
            .pipe_raw(None, Some(b"y".to_vec()), 2)
            .expect("a null key is skipped, not a failure");
        input.pipe_input_at("a".into(), "z".into(), 3);
        let records: Vec<(String, Option<i64>, i64)> = driver
            .output_topic("counts", StringSerde, Nullable(I64Serde))
            .read_records()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        assert_eq!(
            records,
            [("a".to_string(), Some(1), 1), ("a".to_string(), Some(2), 3)]
        );
    });
    assert_eq!(null_key_drops(&snapshotter), 1);
}

#[test]
fn a_stream_table_join_skips_null_keys_on_both_sides() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let builder = StreamsBuilder::new();
        let customers = builder.table("customers", strings(), Materialized::new());
        builder
            .stream("orders", strings())
            .join(&customers, |order, name| format!("{order} for {name}"))
            .to("joined", Produced::with(StringSerde, StringSerde));
        let driver = TopologyTestDriver::new(builder.build().unwrap());
        let customers = driver.input_topic("customers", StringSerde, StringSerde);
        let orders = driver.input_topic("orders", StringSerde, StringSerde);
        customers.pipe_input_at("c1".into(), "ann".into(), 1);
        customers
            .pipe_raw(None, Some(b"nobody".to_vec()), 2)
            .expect("a null-keyed table record is skipped");
        orders
            .pipe_raw(None, Some(b"lost".to_vec()), 3)
            .expect("a null-keyed stream record is skipped");
        orders.pipe_input_at("c1".into(), "o1".into(), 4);
        // A null value in the table's topic deletes the row.
        customers
            .pipe_raw(Some(b"c1".to_vec()), None, 5)
            .expect("a tombstone is a delete");
        orders.pipe_input_at("c1".into(), "o2".into(), 6);
        let joined: Vec<(String, String, i64)> = driver
            .output_topic("joined", StringSerde, StringSerde)
            .read_records()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        assert_eq!(joined, [("c1".to_string(), "o1 for ann".to_string(), 4)]);
    });
    assert_eq!(null_key_drops(&snapshotter), 2);
}

#[test]
fn a_global_table_treats_null_values_as_deletes_and_ignores_null_keys() {
    let builder = StreamsBuilder::new();
    let customers = builder.global_table("customers", strings(), Materialized::new());
    builder
        .stream("orders", strings())
        .left_join_global(
            &customers,
            |_, order: &String| order.clone(),
            |order, name: Option<&String>| {
                format!("{order} for {}", name.map_or("-", String::as_str))
            },
        )
        .to("joined", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let customers = driver.input_topic("customers", StringSerde, StringSerde);
    let orders = driver.input_topic("orders", StringSerde, StringSerde);
    customers.pipe_input_at("c1".into(), "ann".into(), 1);
    customers
        .pipe_raw(None, Some(b"nobody".to_vec()), 2)
        .expect("a null-keyed global record is ignored");
    orders.pipe_input_at("k".into(), "c1".into(), 3);
    customers
        .pipe_raw(Some(b"c1".to_vec()), None, 4)
        .expect("a tombstone is a delete");
    orders.pipe_input_at("k".into(), "c1".into(), 5);
    let joined: Vec<String> = driver
        .output_topic("joined", StringSerde, StringSerde)
        .read_values();
    assert_eq!(joined, ["c1 for ann", "c1 for -"]);
}
