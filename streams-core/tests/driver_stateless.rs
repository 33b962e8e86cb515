//! Stateless DSL operators on the broker-free test driver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::runtime::partitioner::partition_for_key;
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, KStream, Produced, Record, Repartitioned, StreamsBuilder};

fn strings() -> Consumed<String, String> {
    Consumed::with(StringSerde, StringSerde)
}

fn out() -> Produced<String, String> {
    Produced::with(StringSerde, StringSerde)
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Builds `in → f → out` and returns what `inputs` produce.
fn run(
    f: impl FnOnce(KStream<String, String>) -> KStream<String, String>,
    inputs: &[(&str, &str)],
) -> Vec<(String, String)> {
    let builder = StreamsBuilder::new();
    f(builder.stream("in", strings())).to("out", out());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("in", StringSerde, StringSerde);
    for (k, v) in inputs {
        input.pipe_input(k.to_string(), v.to_string());
    }
    driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values()
}

#[test]
fn filter_and_filter_not_keep_complementary_records() {
    let inputs = [("a", "1"), ("b", "22"), ("c", "333"), ("d", "4444")];
    let even = run(|s| s.filter(|_, v| v.len() % 2 == 0), &inputs);
    assert_eq!(even, vec![kv("b", "22"), kv("d", "4444")]);
    let odd = run(|s| s.filter_not(|_, v| v.len() % 2 == 0), &inputs);
    assert_eq!(odd, vec![kv("a", "1"), kv("c", "333")]);
}

#[test]
fn map_and_map_values_transform_records() {
    let mapped = run(|s| s.map(|k, v| (v, k)), &[("k1", "v1"), ("k2", "v2")]);
    assert_eq!(mapped, vec![kv("v1", "k1"), kv("v2", "k2")]);
    let upper = run(|s| s.map_values(|v| v.to_uppercase()), &[("k", "abc")]);
    assert_eq!(upper, vec![kv("k", "ABC")]);
    let with_key = run(
        |s| s.map_values_with_key(|k, v| format!("{k}:{v}")),
        &[("k", "v")],
    );
    assert_eq!(with_key, vec![kv("k", "k:v")]);
}

#[test]
fn flat_map_and_flat_map_values_emit_zero_or_more() {
    let words = run(
        |s| s.flat_map_values(|v: String| v.split(' ').map(str::to_string).collect::<Vec<_>>()),
        &[("k", "a b c"), ("e", "")],
    );
    assert_eq!(
        words,
        vec![kv("k", "a"), kv("k", "b"), kv("k", "c"), kv("e", "")]
    );
    let pairs = run(
        |s| {
            s.flat_map(|k: String, v: String| {
                v.chars()
                    .map(|c| (format!("{k}-{c}"), c.to_string()))
                    .collect::<Vec<_>>()
            })
        },
        &[("k", "xy"), ("none", "")],
    );
    assert_eq!(pairs, vec![kv("k-x", "x"), kv("k-y", "y")]);
}

#[test]
fn select_key_peek_and_foreach_see_every_record() {
    let peeked = Arc::new(Mutex::new(Vec::new()));
    let seen = peeked.clone();
    let result = run(
        move |s| {
            s.peek(move |k, v| seen.lock().unwrap().push(format!("{k}={v}")))
                .select_key(|_, v| v.chars().next().map(String::from).unwrap_or_default())
        },
        &[("1", "apple"), ("2", "banana")],
    );
    assert_eq!(result, vec![kv("a", "apple"), kv("b", "banana")]);
    assert_eq!(*peeked.lock().unwrap(), vec!["1=apple", "2=banana"]);

    let builder = StreamsBuilder::new();
    let sum = Arc::new(Mutex::new(0i64));
    let total = sum.clone();
    builder
        .stream("numbers", Consumed::with(StringSerde, I64Serde))
        .foreach(move |_, v| *total.lock().unwrap() += v);
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("numbers", StringSerde, I64Serde);
    input.pipe_key_values([("a".to_string(), 5), ("b".to_string(), 7)]);
    assert_eq!(*sum.lock().unwrap(), 12);
}

#[test]
fn key_changing_operators_mark_the_stream_for_repartitioning() {
    let builder = StreamsBuilder::new();
    let s = builder.stream("in", strings());
    assert!(!s.repartition_required());
    assert!(!s
        .filter(|_, _| true)
        .map_values(|v| v)
        .repartition_required());
    assert!(s.map(|k, v| (k, v)).repartition_required());
    assert!(s.select_key(|k, _| k.clone()).repartition_required());
    assert!(s.flat_map(|k, v| vec![(k, v)]).repartition_required());
    // Marking survives value-only operators, and repartitioning clears it.
    let marked = s
        .select_key(|k, _| k.clone())
        .map_values(|v| v)
        .filter(|_, _| true);
    assert!(marked.repartition_required());
    assert!(!marked
        .repartition(Repartitioned::new())
        .repartition_required());
}

#[test]
fn split_routes_each_record_to_the_first_matching_branch_or_the_default() {
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream("events", strings())
        .split_with_prefix("events-")
        .branch("orders", |_, v| v.starts_with("order"))
        .branch("payments", |_, v| v.starts_with("pay"))
        .default_branch("other");
    let mut names: Vec<&String> = branches.keys().collect();
    names.sort();
    assert_eq!(names, ["events-orders", "events-other", "events-payments"]);
    for (name, stream) in &branches {
        stream.to(name, out());
    }
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("events", StringSerde, StringSerde);
    for v in ["order-1", "payment-1", "refund-1", "order-2", "pay-order"] {
        input.pipe_input("k".to_string(), v.to_string());
    }
    let read = |t: &str| {
        driver
            .output_topic(t, StringSerde, StringSerde)
            .read_values()
    };
    assert_eq!(read("events-orders"), ["order-1", "order-2"]);
    assert_eq!(read("events-payments"), ["payment-1", "pay-order"]);
    assert_eq!(read("events-other"), ["refund-1"]);
}

#[test]
fn split_without_default_drops_unmatched_records() {
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream("in", strings())
        .split()
        .branch("big", |_, v| v.len() > 3)
        .no_default_branch();
    branches["big"].to("out", out());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe_input("k".into(), "tiny".into());
    input.pipe_input("k".into(), "no".into());
    assert_eq!(
        driver
            .output_topic("out", StringSerde, StringSerde)
            .read_values(),
        ["tiny"]
    );
}

#[test]
fn merge_combines_both_streams_in_processing_order() {
    let builder = StreamsBuilder::new();
    let a = builder
        .stream("a", strings())
        .map_values(|v| format!("a:{v}"));
    let b = builder
        .stream("b", strings())
        .map_values(|v| format!("b:{v}"));
    a.merge(&b).to("out", out());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let in_a = driver.input_topic("a", StringSerde, StringSerde);
    let in_b = driver.input_topic("b", StringSerde, StringSerde);
    in_a.pipe_input("k".into(), "1".into());
    in_b.pipe_input("k".into(), "2".into());
    in_a.pipe_input("k".into(), "3".into());
    assert_eq!(
        driver
            .output_topic("out", StringSerde, StringSerde)
            .read_values(),
        ["a:1", "b:2", "a:3"]
    );
}

/// Tags each record with the topic and partition it was read from.
struct ReadFrom;

impl Processor<String, String, String, String> for ReadFrom {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let from = ctx
            .record_metadata()
            .map(|m| format!("{}/{}", m.topic, m.partition))
            .unwrap_or_default();
        let value = format!("seen {} from {from}", record.value);
        ctx.forward(record.with_value(value))
    }
}

#[test]
fn repartition_writes_through_an_internal_topic_partitioned_by_the_new_key() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", strings())
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::new().with_name("by-value"))
        .process(|| ReadFrom)
        .to("out", out());
    let topology = builder.build().unwrap();
    assert_eq!(topology.subtopology_count(), 2, "{}", topology.describe());
    let config = TestDriverConfig::default()
        .with_application_id("app")
        .with_partitions("in", 4);
    let driver = TopologyTestDriver::with_config(topology, config);
    let input = driver.input_topic("in", StringSerde, StringSerde);
    let inputs = [("1", "x"), ("2", "y"), ("3", "x"), ("4", "z")];
    // Some record must change partition with its key, or the check below proves nothing.
    assert!(
        inputs
            .iter()
            .any(|(k, v)| partition_for_key(k.as_bytes(), 4) != partition_for_key(v.as_bytes(), 4)),
        "no input changes partition when re-keyed"
    );
    for (k, v) in inputs {
        input.pipe_input(k.to_string(), v.to_string());
    }
    // The internal topic took the upstream partition count (4) and murmur2 partitioning
    // of the new key: every record arrives there, in order, where Java would put it.
    let internal = driver.output_topic("app-by-value-repartition", StringSerde, StringSerde);
    let repartitioned: Vec<(i32, String, String)> = internal
        .read_records_with_partition()
        .into_iter()
        .map(|(partition, r)| (partition, r.key, r.value))
        .collect();
    let expected: Vec<(i32, String, String)> = inputs
        .iter()
        .map(|(_, v)| {
            (
                partition_for_key(v.as_bytes(), 4),
                v.to_string(),
                v.to_string(),
            )
        })
        .collect();
    assert_eq!(repartitioned, expected);
    // The second sub-topology reads each record back from that partition.
    let read = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_key_values();
    let expected: Vec<(String, String)> = inputs
        .iter()
        .map(|(_, v)| {
            let partition = partition_for_key(v.as_bytes(), 4);
            kv(
                v,
                &format!("seen {v} from app-by-value-repartition/{partition}"),
            )
        })
        .collect();
    assert_eq!(read, expected);
    // Tasks: 4 for the source sub-topology, 4 for the one reading the repartition topic.
    assert_eq!(driver.task_ids().len(), 8);
}

#[test]
fn to_dynamic_chooses_the_topic_per_record_and_keeps_timestamps_and_headers() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", strings())
        .to_dynamic(|k, _| format!("out-{k}"), out());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("in", StringSerde, StringSerde);
    let mut record = Record::new("x".to_string(), "1".to_string(), 42);
    record.headers.add("trace", Some(b"abc".to_vec()));
    input.pipe_record(record);
    input.pipe_input_at("y".into(), "2".into(), 43);
    assert_eq!(driver.written_topics(), ["out-x", "out-y"]);
    let x = driver
        .output_topic("out-x", StringSerde, StringSerde)
        .read_record()
        .unwrap();
    assert_eq!((x.value.as_str(), x.timestamp), ("1", 42));
    assert_eq!(x.headers.last("trace"), Some(Some(&b"abc"[..])));
}

#[test]
fn a_custom_partitioner_decides_the_output_partition() {
    let builder = StreamsBuilder::new();
    builder.stream("in", strings()).to(
        "out",
        out().with_partitioner(|_topic, _k, v: &String, n| Some(v.len() as i32 % n)),
    );
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_partitions("out", 3),
    );
    let input = driver.input_topic("in", StringSerde, StringSerde);
    for v in ["a", "bb", "ccc", "dddd"] {
        input.pipe_input("k".into(), v.into());
    }
    let partitions: Vec<i32> = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_records_with_partition()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(partitions, [1, 2, 0, 1]);
}

#[test]
fn records_of_two_partitions_in_one_task_are_processed_in_timestamp_order() {
    let builder = StreamsBuilder::new();
    let left = builder.stream("left", strings());
    let right = builder.stream("right", strings());
    left.merge(&right).to("out", out());
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let l = driver.input_topic("left", StringSerde, StringSerde);
    let r = driver.input_topic("right", StringSerde, StringSerde);
    for ts in [1, 5, 9] {
        l.enqueue(0, "k".into(), format!("l{ts}"), ts);
    }
    for ts in [2, 3, 10] {
        r.enqueue(0, "k".into(), format!("r{ts}"), ts);
    }
    driver.process_buffered();
    assert_eq!(driver.task_ids().len(), 1);
    let values = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_values();
    assert_eq!(values, ["l1", "r2", "r3", "l5", "l9", "r10"]);
}

#[test]
fn describe_lists_sub_topologies_sources_processors_and_sinks() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", strings())
        .filter(|_, _| true)
        .select_key(|k, _| k.clone())
        .repartition(Repartitioned::new().with_name("rekey"))
        .to("out", out());
    let text = builder.build().unwrap().describe().to_string();
    for expected in [
        "Sub-topology: 0",
        "Sub-topology: 1",
        "Source: KSTREAM-SOURCE-0000000000 (topics: [in])",
        "Processor: KSTREAM-FILTER-0000000001",
        "Sink: rekey-sink (topic: rekey-repartition)",
        "Source: rekey-source (topics: [rekey-repartition])",
        "Sink: KSTREAM-SINK-",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn outputs_are_partitioned_with_murmur2_like_java_clients() {
    let builder = StreamsBuilder::new();
    builder.stream("in", strings()).to("out", out());
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_partitions("out", 6),
    );
    let input = driver.input_topic("in", StringSerde, StringSerde);
    let keys: Vec<String> = (0..50).map(|i| format!("customer-{i}")).collect();
    for k in &keys {
        input.pipe_input(k.clone(), "v".into());
    }
    let by_key: HashMap<String, i32> = driver
        .output_topic("out", StringSerde, StringSerde)
        .read_records_with_partition()
        .into_iter()
        .map(|(p, r)| (r.key, p))
        .collect();
    for k in &keys {
        assert_eq!(by_key[k], partition_for_key(k.as_bytes(), 6));
    }
    assert!(
        by_key
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );
}
