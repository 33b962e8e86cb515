//! Which partition a sink writes each record to: windowed keys go where Kafka Streams'
//! `WindowedStreamPartitioner` puts them (murmur2 of the base key only), so that Java
//! consumers and co-partitioned Java applications find them.

use std::time::Duration;

use streams_core::dsl::{SessionWindows, TimeWindows};
use streams_core::serde::{I64Serde, Nullable, Serde, StringSerde};
use streams_core::state::{SessionWindowedSerde, TimeWindowedSerde, Windowed};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
use streams_test_support::murmur2_vectors;

const PARTITIONS: i32 = 12;

/// A session-windowed count as written: partition, key, session bounds, count.
type SessionRow = (i32, String, (i64, i64), Option<i64>);

/// Keys of the Java vectors that are UTF-8 strings, with the partition Java's
/// partitioner picks for them among 12 partitions.
fn java_string_keys() -> Vec<(String, i32)> {
    let mut seen = std::collections::HashSet::new();
    let keys: Vec<(String, i32)> = murmur2_vectors()
        .into_iter()
        .filter_map(|v| {
            let partition = v.partition_for(PARTITIONS)?;
            let key = String::from_utf8(v.key).ok()?;
            (!key.is_empty() && seen.insert(key.clone())).then_some((key, partition))
        })
        .collect();
    assert!(keys.len() >= 5, "too few string vectors: {keys:?}");
    keys
}

fn driver_for(builder: StreamsBuilder) -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_partitions("counts", PARTITIONS),
    )
}

#[test]
fn time_windowed_keys_are_partitioned_by_their_base_key() {
    let size = Duration::from_millis(10);
    // Grace enough for every key's two windows to stay open.
    let windows = TimeWindows::of_size_and_grace(size, Duration::from_secs(3600));
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        .windowed_by(windows)
        .count(Materialized::as_store("click-counts"))
        .to_stream()
        .to(
            "counts",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, size),
                Nullable(I64Serde),
            ),
        );
    let driver = driver_for(builder);
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let keys = java_string_keys();
    for (key, _) in &keys {
        input.pipe_input_at(key.clone(), "x".into(), 3);
        input.pipe_input_at(key.clone(), "x".into(), 25);
    }
    let written = driver
        .output_topic(
            "counts",
            TimeWindowedSerde::new(StringSerde, size),
            Nullable(I64Serde),
        )
        .read_records_with_partition();
    let mut expected = Vec::new();
    for (key, partition) in &keys {
        expected.push((*partition, key.clone(), 0, Some(1)));
        expected.push((*partition, key.clone(), 20, Some(1)));
    }
    let got: Vec<(i32, String, i64, Option<i64>)> = written
        .into_iter()
        .map(|(p, r)| {
            let (w, count): (Windowed<String>, Option<i64>) = (r.key, r.value);
            (p, w.key, w.window.start, count)
        })
        .collect();
    assert_eq!(got, expected);

    // Hashing the whole windowed key would put some of them elsewhere.
    let serde = TimeWindowedSerde::new(StringSerde, size);
    let moved = keys.iter().any(|(key, partition)| {
        let bytes = serde
            .serialize("counts", &Windowed::new(key.clone(), 0, 10))
            .unwrap()
            .unwrap();
        streams_core::runtime::partitioner::partition_for_key(&bytes, PARTITIONS) != *partition
    });
    assert!(moved, "the vectors do not tell the two partitionings apart");
}

#[test]
fn session_windowed_keys_are_partitioned_by_their_base_key() {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::new())
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(
            Duration::from_millis(10),
        ))
        .count(Materialized::as_store("click-sessions"))
        .to_stream()
        .to(
            "counts",
            Produced::with(SessionWindowedSerde::new(StringSerde), Nullable(I64Serde)),
        );
    let driver = driver_for(builder);
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let keys = java_string_keys();
    for (key, _) in &keys {
        input.pipe_input_at(key.clone(), "x".into(), 7);
    }
    let got: Vec<SessionRow> = driver
        .output_topic(
            "counts",
            SessionWindowedSerde::new(StringSerde),
            Nullable(I64Serde),
        )
        .read_records_with_partition()
        .into_iter()
        .map(|(p, r)| {
            let (w, count): (Windowed<String>, Option<i64>) = (r.key, r.value);
            (p, w.key, (w.window.start, w.window.end), count)
        })
        .collect();
    let expected: Vec<SessionRow> = keys
        .iter()
        .map(|(key, partition)| (*partition, key.clone(), (7, 7), Some(1)))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn internal_topics_and_plain_keys_keep_the_default_partitioner() {
    // A non-windowed key is hashed whole, as Java's default partitioner does.
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .to("counts", Produced::with(StringSerde, StringSerde));
    let driver = driver_for(builder);
    let input = driver.input_topic("clicks", StringSerde, StringSerde);
    let keys = java_string_keys();
    for (key, _) in &keys {
        input.pipe_input(key.clone(), "v".into());
    }
    let got: Vec<(i32, String)> = driver
        .output_topic("counts", StringSerde, StringSerde)
        .read_records_with_partition()
        .into_iter()
        .map(|(p, r)| (p, r.key))
        .collect();
    let expected: Vec<(i32, String)> = keys.iter().map(|(k, p)| (*p, k.clone())).collect();
    assert_eq!(got, expected);
}
