//! The cost of exactly-once: the stateful count (`group_by_key → count` in a change-logged
//! RocksDB store, every new count written to an output topic) under `at_least_once` and
//! under `exactly_once_v2`, over the same input on the real broker, in one run. Prints
//! records/s of each and the ratio.
//!
//! ```text
//! dev/kafka start
//! cargo run --release -p streams-benches --bin eos-overhead -- --records 200000
//! ```
//!
//! Each run is a fresh application (consumer group, store, changelog, output topic) over
//! the same input topic, both guarantees with the same commit interval (100 ms, the
//! library's default under exactly-once; at-least-once's default of 30 s would only
//! measure the wait for the last commit). Timing starts at the first record processed (group joins
//! are excluded) and ends when the group's committed offsets reach the end of the input:
//! under exactly-once that is when the last transaction commits, under at-least-once
//! after the outputs it covers are acknowledged. Runs alternate between the two so that
//! machine noise hits both alike; the median of each is reported.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streams_benches::{client, create_topic, delete_topics, end_offsets, fill_topic, median};
use streams_core::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};

#[derive(Parser, Debug)]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Input records per run.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Runs per guarantee.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Commit interval of both guarantees (exactly-once's default), so that the run
    /// compares the guarantees and not at-least-once's 30 s default interval.
    #[arg(long, default_value_t = 100)]
    commit_interval_ms: u64,
}

/// Whether the consumer's group committed offsets at `ends` on every partition of `topic`.
fn caught_up(
    options: &Options,
    consumer: &BaseConsumer,
    topic: &str,
    ends: &[i64],
) -> Result<bool> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..options.partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok((0..options.partitions).all(|p| {
        matches!(
            committed.find_partition(topic, p).map(|e| e.offset()),
            Some(Offset::Offset(o)) if o >= ends[p as usize]
        )
    }))
}

/// One run of the count under `guarantee`; returns the measured duration and the topics
/// it created.
fn run(
    options: &Options,
    input: &str,
    ends: &[i64],
    guarantee: ProcessingGuarantee,
) -> Result<(Duration, Vec<String>)> {
    let app = format!("bench-eos-overhead-{}", uuid::Uuid::new_v4().simple());
    let output = format!("{app}-out");
    create_topic(&options.bootstrap, &output, options.partitions)?;
    let topics = vec![output.clone(), format!("{app}-counts-changelog")];
    let first = Arc::new(Mutex::new(None::<Instant>));
    let mark = first.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .peek(move |_, _| {
            mark.lock()
                .expect("timer lock")
                .get_or_insert_with(Instant::now);
        })
        .group_by_key(Grouped::new())
        .count(Materialized::as_store("counts").with_key_serde(StringSerde))
        .to_stream()
        .to(&output, Produced::with(StringSerde, Nullable(I64Serde)));
    let state_dir = std::env::temp_dir().join(&app);
    let config = StreamsConfig::new(&app, &options.bootstrap)
        .with_state_dir(&state_dir)
        .with_processing_guarantee(guarantee)
        .with_commit_interval(Duration::from_millis(options.commit_interval_ms));
    let streams = KafkaStreams::new(builder.build()?, config)?;
    streams.start()?;
    // Only reads the group's committed offsets; it never joins the group.
    let group: BaseConsumer = client(&options.bootstrap).set("group.id", &app).create()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if caught_up(options, &group, input, ends)? {
            break;
        }
        if Instant::now() > deadline {
            bail!("the {guarantee:?} run stalled");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = first
        .lock()
        .expect("timer lock")
        .map(|s| s.elapsed())
        .unwrap_or_default();
    streams.close(Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok((elapsed, topics))
}

fn main() -> Result<()> {
    let options = Options::parse();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let input = format!("bench-eos-in-{run_id}");
    create_topic(&options.bootstrap, &input, options.partitions)
        .context("is the broker up? start it with `dev/kafka start`")?;
    let mut created = vec![input.clone()];
    fill_topic(
        &options.bootstrap,
        &input,
        options.records,
        options.keys,
        options.value_size,
    )?;
    let watcher: BaseConsumer = client(&options.bootstrap).create()?;
    let ends = end_offsets(&watcher, &input, options.partitions)?;
    println!(
        "{} records over {} keys, values of {} bytes, {} partitions, {} runs each",
        options.records, options.keys, options.value_size, options.partitions, options.rounds
    );
    let (mut alos, mut eos) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        for guarantee in [
            ProcessingGuarantee::AtLeastOnce,
            ProcessingGuarantee::ExactlyOnceV2,
        ] {
            let (elapsed, topics) = run(&options, &input, &ends, guarantee)?;
            created.extend(topics);
            let rate = options.records as f64 / elapsed.as_secs_f64();
            println!("round {round} {guarantee:<14?} {rate:>10.0} records/s ({elapsed:.2?})");
            match guarantee {
                ProcessingGuarantee::AtLeastOnce => alos.push(rate),
                ProcessingGuarantee::ExactlyOnceV2 => eos.push(rate),
            }
        }
    }
    delete_topics(&options.bootstrap, &created);
    let (alos, eos) = (median(alos), median(eos));
    println!("median at_least_once        {alos:>10.0} records/s");
    println!("median exactly_once_v2      {eos:>10.0} records/s");
    println!("ratio exactly-once / at-least-once {:>5.2}", eos / alos);
    Ok(())
}
