//! State stores on the test driver: processors read and write typed key-value stores,
//! every write reaches the changelog topic, and misuse gives clear errors.

use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::state::Stores;
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Produced, Record, StreamsBuilder, TopologyError};

/// Keeps a running total per key in "totals"; a value of -1 deletes the key.
struct Totals;

impl Processor<String, i64, String, i64> for Totals {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, i64>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<String, i64>("totals")?;
        if record.value == -1 {
            store.delete(&record.key)?;
            return Ok(());
        }
        let total = store.get(&record.key)?.unwrap_or(0) + record.value;
        store.put(&record.key, &total)?;
        ctx.forward(record.with_value(total))
    }
}

fn totals_driver(partitions: i32) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value("totals", StringSerde, I64Serde));
    builder
        .stream("amounts", Consumed::with(StringSerde, I64Serde))
        .process_with_stores(|| Totals, &["totals"])
        .to("totals-out", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    assert!(
        topology.describe().to_string().contains("stores: [totals]"),
        "{}",
        topology.describe()
    );
    TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default()
            .with_application_id("shop")
            .with_partitions("amounts", partitions),
    )
}

#[test]
fn processors_keep_state_per_key_and_log_every_change() {
    let driver = totals_driver(1);
    let input = driver.input_topic("amounts", StringSerde, I64Serde);
    input.pipe_key_values([
        ("alice".to_string(), 5),
        ("bob".to_string(), 1),
        ("alice".to_string(), 7),
    ]);
    let out = driver
        .output_topic("totals-out", StringSerde, I64Serde)
        .read_key_values();
    assert_eq!(
        out,
        [
            ("alice".to_string(), 5),
            ("bob".to_string(), 1),
            ("alice".to_string(), 12)
        ]
    );

    let store = driver.key_value_store::<String, i64>("totals").unwrap();
    assert_eq!(store.get(&"alice".to_string()), Some(12));
    assert_eq!(
        store.all(),
        [("alice".to_string(), 12), ("bob".to_string(), 1)]
    );

    // The changelog holds each write, then the deletion as a tombstone.
    input.pipe_input("bob".to_string(), -1);
    assert_eq!(store.get(&"bob".to_string()), None);
    let changelog = driver.output_topic(
        "shop-totals-changelog",
        StringSerde,
        streams_core::serde::Nullable(I64Serde),
    );
    let logged = changelog.read_key_values();
    assert_eq!(
        logged,
        [
            ("alice".to_string(), Some(5)),
            ("bob".to_string(), Some(1)),
            ("alice".to_string(), Some(12)),
            ("bob".to_string(), None),
        ]
    );
}

#[test]
fn each_partition_has_its_own_store_instance() {
    let driver = totals_driver(4);
    let input = driver.input_topic("amounts", StringSerde, I64Serde);
    let keys: Vec<String> = (0..20).map(|i| format!("customer-{i}")).collect();
    for k in &keys {
        input.pipe_input(k.clone(), 2);
        input.pipe_input(k.clone(), 3);
    }
    let store = driver.key_value_store::<String, i64>("totals").unwrap();
    for k in &keys {
        assert_eq!(store.get(k), Some(5), "{k}");
    }
    assert_eq!(store.all().len(), 20);
    assert_eq!(driver.task_ids().len(), 4);
}

#[test]
fn stores_must_be_added_connected_and_read_with_their_types() {
    // Using a store that was never added fails at build time.
    let builder = StreamsBuilder::new();
    builder
        .stream("amounts", Consumed::with(StringSerde, I64Serde))
        .process_with_stores(|| Totals, &["totals"])
        .to("out", Produced::with(StringSerde, I64Serde));
    match builder.build() {
        Err(TopologyError::Invalid(message)) => assert!(message.contains("totals"), "{message}"),
        other => panic!("expected an invalid topology, got {:?}", other.map(|_| ())),
    }

    // A processor not connected to the store cannot use it.
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value("totals", StringSerde, I64Serde));
    builder
        .stream("amounts", Consumed::with(StringSerde, I64Serde))
        .process(|| Totals)
        .to("out", Produced::with(StringSerde, I64Serde));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let err = driver
        .input_topic("amounts", StringSerde, I64Serde)
        .try_pipe_record(Record::new("k".into(), 1, 0))
        .unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");

    // Reading with other types is refused, naming both.
    assert!(driver.key_value_store::<String, String>("totals").is_none());
    assert!(driver.key_value_store::<String, i64>("missing").is_none());

    // Two stores with one name are refused.
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value("dup", StringSerde, I64Serde));
    builder.add_state_store(Stores::key_value("dup", StringSerde, StringSerde).in_memory());
    builder
        .stream("x", Consumed::with(StringSerde, StringSerde))
        .to("y", Produced::with(StringSerde, StringSerde));
    assert!(builder.build().is_err());
}
