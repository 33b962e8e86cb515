//! `read-topics`: the last records of each topic of the order platform, decoded, like
//! the originals' helper script: Avro values through the schema registry, keys as the
//! platform writes them (UTF-8 ids, 8-byte big-endian customer ids, 4-byte big-endian
//! stock levels). Run through `dev/read-topics`; settings as the services take them
//! (`KAFKA_BOOTSTRAP`, `SCHEMA_REGISTRY_URL`, `PLATFORM_TOPIC_PREFIX`).
//!
//! ```text
//! dev/read-topics                 # the last 5 records of every topic
//! dev/read-topics -n 20 orders.v1 payments.v1
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use orders_platform::serdes::PlatformSerdes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use service_kit::service::registry;
use service_kit::ServiceConfig;
use streams_core::serde::Serde;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Prints the last records of each platform topic, decoded")]
struct Options {
    /// Records per topic.
    #[arg(short = 'n', long, default_value_t = 5)]
    count: usize,
    /// Topics to read, by their reference names (default: every platform topic).
    topics: Vec<String>,
}

/// How one topic's keys and values are decoded into printable text.
type Decoder = Arc<dyn Fn(Option<&[u8]>, Option<&[u8]>) -> (String, String)>;

fn json<T: Serialize>(value: Result<T, impl std::fmt::Display>) -> String {
    match value {
        Ok(v) => serde_json::to_string(&v).unwrap_or_else(|e| format!("<{e}>")),
        Err(e) => format!("<does not decode: {e}>"),
    }
}

fn text(bytes: Option<&[u8]>) -> String {
    bytes.map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned())
}

fn big_endian<const N: usize>(bytes: Option<&[u8]>, read: fn([u8; N]) -> i64) -> String {
    match bytes.map(<[u8; N]>::try_from) {
        Some(Ok(b)) => read(b).to_string(),
        Some(Err(_)) => format!("<not {N} bytes: {:?}>", bytes.unwrap_or_default()),
        None => "null".into(),
    }
}

/// A decoder of string-keyed Avro values of type `T`.
fn avro<T: Serialize + 'static>(topic: &str, serde: Arc<dyn Serde<T>>) -> Decoder {
    let topic = topic.to_string();
    Arc::new(move |key, value| {
        let value = match value {
            None => "null (tombstone)".into(),
            Some(v) => json(serde.deserialize(&topic, Some(v))),
        };
        (text(key), value)
    })
}

/// Every platform topic with its decoder, under its reference name.
fn decoders(config: &ServiceConfig, serdes: &PlatformSerdes) -> Vec<(String, String, Decoder)> {
    let t = config.topics();
    let mut topics: Vec<(String, String, Decoder)> = vec![
        (
            orders_platform::topics::ORDERS.into(),
            t.orders.clone(),
            avro(&t.orders, serdes.order.clone()),
        ),
        (
            orders_platform::topics::ORDER_VALIDATIONS.into(),
            t.order_validations.clone(),
            avro(&t.order_validations, serdes.validation.clone()),
        ),
        (
            orders_platform::topics::PAYMENTS.into(),
            t.payments.clone(),
            avro(&t.payments, serdes.payment.clone()),
        ),
        (
            orders_platform::topics::WAREHOUSE_INVENTORY.into(),
            t.warehouse_inventory.clone(),
            Arc::new(|key, value| {
                (
                    text(key),
                    big_endian(value, |b| i64::from(i32::from_be_bytes(b))),
                )
            }),
        ),
        {
            let serde = serdes.customer.clone();
            let topic = t.customers.clone();
            let decode: Decoder = Arc::new(move |key, value| {
                let value = match value {
                    None => "null (tombstone)".into(),
                    Some(v) => json(serde.deserialize(&topic, Some(v))),
                };
                (big_endian(key, i64::from_be_bytes), value)
            });
            (
                orders_platform::topics::CUSTOMERS.into(),
                t.customers.clone(),
                decode,
            )
        },
        (
            orders_platform::topics::ORDERS_ENRICHED.into(),
            t.orders_enriched.clone(),
            avro(&t.orders_enriched, serdes.enriched_order.clone()),
        ),
    ];
    for (name, topic) in orders_platform::topics::CUSTOMER_LEVELS
        .iter()
        .zip(&t.customer_levels)
    {
        topics.push((
            name.to_string(),
            topic.clone(),
            avro(topic, serdes.order_enriched.clone()),
        ));
    }
    topics
}

/// The last `count` records of `topic` (over all partitions, by timestamp).
fn last_records(
    consumer: &BaseConsumer,
    topic: &str,
    count: usize,
    decode: &Decoder,
) -> Result<Vec<String>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("reading topic metadata")?;
    let Some(partitions) = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len() as i32)
    else {
        return Ok(Vec::new());
    };
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0;
    for partition in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        let start = low.max(high - count as i64);
        if start < high {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            remaining += high - start;
        }
    }
    if remaining == 0 {
        return Ok(Vec::new());
    }
    let mut records: Vec<(i64, String)> = Vec::new();
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    // Transaction markers take offsets too: stop at the deadline if they are all that is left.
    while remaining > 0 && std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        remaining -= 1;
        let ts = match message.timestamp() {
            Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => ms,
            Timestamp::NotAvailable => -1,
        };
        let (key, value) = decode(message.key(), message.payload());
        records.push((
            ts,
            format!(
                "  p{}@{} ts={ts} key={key} value={value}",
                message.partition(),
                message.offset()
            ),
        ));
    }
    records.sort_by_key(|(ts, _)| *ts);
    let skip = records.len().saturating_sub(count);
    Ok(records
        .into_iter()
        .skip(skip)
        .map(|(_, line)| line)
        .collect())
}

fn main() -> Result<()> {
    let options = Options::parse();
    let config = ServiceConfig::load(0)?;
    let serdes = PlatformSerdes::avro(registry(&config, &[])?)?;
    for (name, topic, decode) in decoders(&config, &serdes) {
        if !options.topics.is_empty() && !options.topics.contains(&name) {
            continue;
        }
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("group.id", "read-topics")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .context("creating the consumer")?;
        println!("{topic}");
        match last_records(&consumer, &topic, options.count, &decode) {
            Ok(lines) if lines.is_empty() => println!("  (empty)"),
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => println!("  (cannot read: {e:#})"),
        }
    }
    Ok(())
}
