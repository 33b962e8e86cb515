//! Event router: a stateless topology that reads JSON events, sends records it cannot
//! parse to a dead-letter topic, drops events with a negative amount, and routes the rest
//! by type to one topic each.
//!
//! ```text
//! events ──parse──┬── type=order    ──> events-orders
//!    │            ├── type=payment  ──> events-payments
//!    │            └── anything else ──> events-other
//!    └─ unparsable ──> events-dlq (original bytes, error in headers)
//! ```
//!
//! Run it against the local broker (`dev/kafka start`, `dev/registry start`) with
//! `cargo run -p streams-examples --bin event-router` (`-- --help` lists the options). By default it creates
//! the topics, produces sample events (some malformed), waits until every one of them
//! was routed, prints where they went and exits; `--follow` keeps it running until Ctrl-C.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use streams_core::runtime::{DeserializationErrorHandler, KafkaStreams, State, StreamsConfig};
use streams_core::serde::{JsonSerde, StringSerde};
use streams_core::{Consumed, Produced, StreamsBuilder, Topology};

/// Command-line options; every one can also come from the environment.
#[derive(Parser, Debug)]
#[command(about = "Routes JSON events by type to topics, dead-lettering malformed ones.")]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Application id (consumer group and internal topic prefix).
    #[arg(long, env = "STREAMS_APPLICATION_ID", default_value = "event-router")]
    application_id: String,
    /// Topic prefix: reads `<prefix>`, writes `<prefix>-orders`, `-payments`, `-other`, `-dlq`.
    #[arg(long, default_value = "events")]
    topic: String,
    /// Partitions of the topics the example creates when they are missing.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Sample events to produce before waiting for them to be routed (0: none).
    #[arg(long, default_value_t = 1000)]
    sample_events: usize,
    /// Keep routing until Ctrl-C instead of exiting after the sample.
    #[arg(long)]
    follow: bool,
}

/// An event on the input topic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Event {
    /// `order`, `payment`, or anything else.
    #[serde(rename = "type")]
    kind: String,
    /// Id of the business object.
    id: String,
    /// Amount in cents; negative amounts are invalid and dropped.
    amount: i64,
}

struct Topics {
    input: String,
    orders: String,
    payments: String,
    other: String,
    dead_letters: String,
}

impl Topics {
    fn new(prefix: &str) -> Self {
        Topics {
            input: prefix.to_string(),
            orders: format!("{prefix}-orders"),
            payments: format!("{prefix}-payments"),
            other: format!("{prefix}-other"),
            dead_letters: format!("{prefix}-dlq"),
        }
    }

    fn all(&self) -> [&str; 5] {
        [
            &self.input,
            &self.orders,
            &self.payments,
            &self.other,
            &self.dead_letters,
        ]
    }
}

fn topology(topics: &Topics) -> Topology {
    let builder = StreamsBuilder::new();
    let events = JsonSerde::<Event>::new();
    let branches = builder
        .stream(&topics.input, Consumed::with(StringSerde, events.clone()))
        .filter(|_, e| e.amount >= 0)
        .split()
        .branch("orders", |_, e| e.kind == "order")
        .branch("payments", |_, e| e.kind == "payment")
        .default_branch("other");
    let produced = || Produced::with(StringSerde, events.clone());
    branches["orders"].to(&topics.orders, produced());
    branches["payments"].to(&topics.payments, produced());
    branches["other"].to(&topics.other, produced());
    builder.build().expect("the event-router topology is valid")
}

fn create_topics(options: &Options, topics: &Topics) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &options.bootstrap)
        .create()
        .context("creating the admin client")?;
    let new: Vec<NewTopic<'_>> = topics
        .all()
        .iter()
        .map(|t| NewTopic::new(t, options.partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .with_context(|| {
        format!(
            "creating topics on {} (is the broker up? start it with `dev/kafka start`)",
            options.bootstrap
        )
    })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Sample events: a mix of types, some negative amounts, and every 100th one malformed.
fn sample(n: usize) -> Vec<(String, Vec<u8>)> {
    let kinds = ["order", "payment", "shipment"];
    (0..n)
        .map(|i| {
            let key = format!("customer-{}", i % 17);
            if i % 100 == 99 {
                return (key, format!("{{not json #{i}").into_bytes());
            }
            let event = Event {
                kind: kinds[i % kinds.len()].to_string(),
                id: format!("evt-{i}"),
                amount: if i % 50 == 7 {
                    -1
                } else {
                    (i as i64 * 37) % 10_000
                },
            };
            (key, serde_json::to_vec(&event).expect("events serialize"))
        })
        .collect()
}

/// Where each sample event should end up.
fn expected_counts(samples: &[(String, Vec<u8>)], topics: &Topics) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = topics.all()[1..]
        .iter()
        .map(|t| (t.to_string(), 0))
        .collect();
    for (_, bytes) in samples {
        let topic = match serde_json::from_slice::<Event>(bytes) {
            Err(_) => &topics.dead_letters,
            Ok(e) if e.amount < 0 => continue,
            Ok(e) if e.kind == "order" => &topics.orders,
            Ok(e) if e.kind == "payment" => &topics.payments,
            Ok(_) => &topics.other,
        };
        *counts.get_mut(topic).expect("output topic") += 1;
    }
    counts
}

fn produce(options: &Options, topic: &str, records: &[(String, Vec<u8>)]) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &options.bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .context("creating the sample producer")?;
    for (key, value) in records {
        producer
            .send(BaseRecord::to(topic).key(key).payload(value))
            .map_err(|(e, _)| e)
            .context("producing a sample event")?;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing sample events")?;
    Ok(())
}

/// Records in each of `topics` (the sum of their partitions' end offsets).
fn end_offsets(consumer: &BaseConsumer, topics: &[&str]) -> Result<BTreeMap<String, i64>> {
    let mut ends = BTreeMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("reading the metadata of {topic}"))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == *topic)
            .map_or(0, |t| t.partitions().len() as i32);
        let mut total = 0;
        for p in 0..partitions {
            total += consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .with_context(|| format!("reading the end of {topic}-{p}"))?
                .1;
        }
        ends.insert(topic.to_string(), total);
    }
    Ok(ends)
}

/// Waits until each topic grew by what `wanted` says since `before`, or `timeout`;
/// returns how much each grew.
fn wait_for_growth(
    consumer: &BaseConsumer,
    before: &BTreeMap<String, i64>,
    wanted: &BTreeMap<String, usize>,
    timeout: Duration,
) -> Result<BTreeMap<String, i64>> {
    let topics: Vec<&str> = before.keys().map(String::as_str).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let now = end_offsets(consumer, &topics)?;
        let grown: BTreeMap<String, i64> = now
            .iter()
            .map(|(t, n)| (t.clone(), n - before[t]))
            .collect();
        if wanted.iter().all(|(t, n)| grown[t] >= *n as i64) || Instant::now() > deadline {
            return Ok(grown);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .init();
    let options = Options::parse();
    let topics = Topics::new(&options.topic);
    create_topics(&options, &topics)?;

    let config = StreamsConfig::new(&options.application_id, &options.bootstrap)
        .with_commit_interval(Duration::from_secs(1))
        .with_deserialization_error_handler(DeserializationErrorHandler::DeadLetter {
            topic: topics.dead_letters.clone(),
        })
        .with_env_overrides()?;
    let topology = topology(&topics);
    println!("{}", topology.describe());
    let streams = KafkaStreams::new(topology, config)?;
    streams.start()?;
    if !streams.wait_for_state(State::Running, Duration::from_secs(60)) {
        bail!(
            "the application did not reach Running within 60 s (state {:?})",
            streams.state()
        );
    }

    if options.sample_events > 0 {
        let samples = sample(options.sample_events);
        let outputs: Vec<&str> = topics.all()[1..].to_vec();
        let watcher: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &options.bootstrap)
            .create()
            .context("creating the consumer that watches the outputs")?;
        let before = end_offsets(&watcher, &outputs)?;
        let started = Instant::now();
        produce(&options, &topics.input, &samples)?;
        let expected = expected_counts(&samples, &topics);
        let counts = wait_for_growth(&watcher, &before, &expected, Duration::from_secs(60))?;
        println!(
            "routed {} sample events in {:.1?}:",
            samples.len(),
            started.elapsed()
        );
        for (topic, wanted) in &expected {
            println!(
                "  {topic:<24} +{:>5} records (expected {wanted})",
                counts[topic]
            );
        }
        if let Some((topic, _)) = expected.iter().find(|(t, n)| counts[*t] < **n as i64) {
            streams.close(Duration::from_secs(10));
            bail!("topic {topic} did not receive every expected record");
        }
    }

    if options.follow {
        println!("routing until Ctrl-C ...");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(tokio::signal::ctrl_c())?;
    }
    if !streams.close(Duration::from_secs(30)) {
        bail!("stream threads did not stop within 30 s");
    }
    if let Some(error) = streams.thread_errors().first() {
        bail!("a stream thread failed: {error}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};

    #[test]
    fn routes_by_type_drops_negative_amounts_and_dead_letters_garbage() {
        let topics = Topics::new("events");
        let driver = TopologyTestDriver::with_config(
            topology(&topics),
            TestDriverConfig::default().with_deserialization_error_handler(
                DeserializationErrorHandler::DeadLetter {
                    topic: topics.dead_letters.clone(),
                },
            ),
        );
        let input = driver.input_topic(&topics.input, StringSerde, streams_core::serde::BytesSerde);
        let samples = sample(300);
        for (k, v) in &samples {
            input.pipe_input(k.clone(), v.clone());
        }
        let expected = expected_counts(&samples, &topics);
        for (topic, n) in &expected {
            let out = driver.output_topic(topic, StringSerde, streams_core::serde::BytesSerde);
            assert_eq!(out.read_values().len(), *n, "{topic}");
        }
        assert_eq!(expected[&topics.dead_letters], 3);
        assert!(expected[&topics.orders] > 50 && expected[&topics.payments] > 50);
    }
}
