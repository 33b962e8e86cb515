//! What the quickstart binaries share: their command line, creating their topics,
//! sending sample input and printing their output topic.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use streams_core::runtime::StreamsConfig;

/// The options every quickstart takes.
#[derive(Args, Debug, Clone)]
pub struct QuickstartArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Put in front of every topic name and of the application id (several runs, or
    /// tests, on one broker).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Send the example's sample input after starting.
    #[arg(long)]
    pub sample: bool,
    /// Where the state stores live (default: a directory under the system's temp).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl QuickstartArgs {
    /// `name` behind the prefix.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The configuration of application `id` (behind the prefix), committing every
    /// 100 ms so that output shows up quickly.
    pub fn config(&self, id: &str) -> StreamsConfig {
        let application_id = format!("{}{id}", self.prefix);
        let state_dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("streams-quickstarts"));
        StreamsConfig::new(application_id, &self.bootstrap)
            .with_state_dir(state_dir)
            .with_commit_interval(Duration::from_millis(100))
    }
}

/// Creates `topics` with `partitions` each, unless they exist.
pub fn ensure_topics(bootstrap: &str, topics: &[String], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating the admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.create_topics(&new, &options))
        .with_context(|| {
            format!("creating topics at {bootstrap} (is the broker up? `dev/kafka start`)")
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Sends `records` (key, value, timestamp in ms or `None` for now) to `topic` and
/// waits until they are acknowledged.
pub fn send(
    bootstrap: &str,
    topic: &str,
    records: &[(Vec<u8>, Vec<u8>, Option<i64>)],
) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .context("creating the producer")?;
    for (key, value, timestamp) in records {
        let mut record = BaseRecord::to(topic).key(key).payload(value);
        if let Some(ts) = timestamp {
            record = record.timestamp(*ts);
        }
        producer
            .send(record)
            .map_err(|(e, _)| e)
            .with_context(|| format!("sending to {topic}"))?;
    }
    producer
        .flush(Duration::from_secs(30))
        .with_context(|| format!("sending to {topic}"))?;
    Ok(())
}

/// Turns a record's key and value into one printable line.
pub type ShowRecord = fn(Option<&[u8]>, Option<&[u8]>) -> String;

/// Prints every record of `topic`, from its beginning, as `<label> <what show makes>`,
/// on a thread of its own.
pub fn print_topic(
    bootstrap: &str,
    topic: &str,
    label: &'static str,
    show: ShowRecord,
) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("{topic}-printer-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating the output printer")?;
    consumer.subscribe(&[topic])?;
    std::thread::Builder::new()
        .name("printer".into())
        .spawn(move || loop {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                println!("{label} {}", show(message.key(), message.payload()));
            }
        })?;
    Ok(())
}

/// `(key, value)` text pairs as records to [`send`] now.
pub fn text_records(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>, Option<i64>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec(), None))
        .collect()
}

/// Bytes as UTF-8 text (`null` when absent).
pub fn text(bytes: Option<&[u8]>) -> String {
    bytes.map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned())
}

/// An 8-byte big-endian long (Java's `LongSerializer`) as text.
pub fn long(bytes: Option<&[u8]>) -> String {
    match bytes.map(<[u8; 8]>::try_from) {
        Some(Ok(b)) => i64::from_be_bytes(b).to_string(),
        _ => format!("{bytes:?}"),
    }
}
