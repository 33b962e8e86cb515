//! Stateless throughput: a source → map → sink topology on streams-core beside a raw
//! rdkafka consume → map → produce loop, over the same records on the real broker, in one
//! run. Prints records/s of each and the ratio.
//!
//! ```text
//! dev/kafka start
//! cargo run --release -p streams-benches --bin stateless-throughput -- --records 200000
//! ```
//!
//! Both sides read the same input topic from the beginning with a fresh consumer group,
//! apply the same transformation to every 1 KB value, and write to their own output
//! topic. Timing starts at the first record consumed (group joins are excluded) and
//! ends when every output record is acknowledged by the broker. Rounds alternate between
//! the two so that machine noise hits both alike; the median round of each is reported.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::Message;
use streams_benches::{
    client, create_topic, delete_topics, end_offsets, fill_topic, median, producer, send_blocking,
};
use streams_core::runtime::{KafkaStreams, StreamsConfig};
use streams_core::serde::BytesSerde;
use streams_core::{Consumed, Produced, StreamsBuilder};

#[derive(Parser, Debug)]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Records per round.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Rounds per side.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// The per-record work both sides do: flip the first byte of the value.
fn transform(mut value: Vec<u8>) -> Vec<u8> {
    if let Some(b) = value.first_mut() {
        *b = b.wrapping_add(1);
    }
    value
}

/// The raw loop; returns the measured duration.
fn run_raw(options: &Options, input: &str, output: &str) -> Result<Duration> {
    let consumer: BaseConsumer = client(&options.bootstrap)
        .set("group.id", format!("bench-raw-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[input])?;
    let p = producer(&options.bootstrap)?;
    let mut started = None;
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < options.records {
        if Instant::now() > deadline {
            bail!("raw loop stalled after {n} records");
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        started.get_or_insert_with(Instant::now);
        let value = transform(message.payload().unwrap_or_default().to_vec());
        let key = message.key().map(<[u8]>::to_vec);
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(output).payload(&value[..]);
        if let Some(k) = &key {
            record = record.key(&k[..]);
        }
        send_blocking(&p, record);
        n += 1;
    }
    p.flush(Duration::from_secs(120))?;
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    Ok(started.map(|s| s.elapsed()).unwrap_or_default())
}

/// The streams-core topology; returns the measured duration.
fn run_streams(options: &Options, input: &str, output: &str) -> Result<Duration> {
    let first = Arc::new(Mutex::new(None::<Instant>));
    let mark = first.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(BytesSerde, BytesSerde))
        .peek(move |_, _| {
            mark.lock()
                .expect("timer lock")
                .get_or_insert_with(Instant::now);
        })
        .map_values(transform)
        .to(output, Produced::with(BytesSerde, BytesSerde));
    let app = format!("bench-streams-{}", uuid::Uuid::new_v4().simple());
    let config = StreamsConfig::new(&app, &options.bootstrap);
    let streams = KafkaStreams::new(builder.build()?, config)?;
    streams.start()?;
    let watcher: BaseConsumer = client(&options.bootstrap).create()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        // Watermarks count only acknowledged records.
        if end_offsets(&watcher, output, options.partitions)?
            .iter()
            .sum::<i64>()
            >= options.records as i64
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("streams run stalled");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = first
        .lock()
        .expect("timer lock")
        .map(|s| s.elapsed())
        .unwrap_or_default();
    streams.close(Duration::from_secs(60));
    Ok(elapsed)
}

fn main() -> Result<()> {
    let options = Options::parse();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let input = format!("bench-in-{run}");
    create_topic(&options.bootstrap, &input, options.partitions)
        .context("is the broker up? start it with `dev/kafka start`")?;
    let mut created = vec![input.clone()];
    fill_topic(
        &options.bootstrap,
        &input,
        options.records,
        10_000,
        options.value_size,
    )?;
    println!(
        "{} records of {} bytes, {} partitions, {} rounds each",
        options.records, options.value_size, options.partitions, options.rounds
    );
    let (mut raw, mut streams) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        for side in ["raw", "streams"] {
            let output = format!("bench-out-{side}-{round}-{run}");
            create_topic(&options.bootstrap, &output, options.partitions)?;
            created.push(output.clone());
            let elapsed = if side == "raw" {
                run_raw(&options, &input, &output)?
            } else {
                run_streams(&options, &input, &output)?
            };
            let rate = options.records as f64 / elapsed.as_secs_f64();
            println!("round {round} {side:<8} {rate:>10.0} records/s ({elapsed:.2?})");
            if side == "raw" {
                raw.push(rate)
            } else {
                streams.push(rate)
            }
        }
    }
    delete_topics(&options.bootstrap, &created);
    let (raw, streams) = (median(raw), median(streams));
    println!("median raw rdkafka loop   {raw:>10.0} records/s");
    println!("median streams-core       {streams:>10.0} records/s");
    println!("ratio streams-core / raw  {:>10.2}", streams / raw);
    Ok(())
}
