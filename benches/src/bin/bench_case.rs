//! One benchmark case on streams-core (or a raw rdkafka baseline), run as its own process
//! by the comparison runner (`compare`) beside the same case on Java Kafka Streams
//! (`benches/jvm`). Runs until `--records` input records have passed the source, then
//! prints one JSON line ([`CaseReport`]) and exits.
//!
//! ```text
//! cargo run --release -p streams-benches --bin bench-case -- --case streamcount \
//!     --input <topic> --records 1000000 --app-id bench-1 --state-dir /tmp/bench-1
//! ```
//!
//! The cases and their topologies are those of `benches/jvm/.../StreamsBench.java`, call
//! for call; see the README's benchmark section.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::Message;
use streams_benches::report::{process_cpu_ms, CaseReport};
use streams_benches::{client, producer, send_blocking};
use streams_core::dsl::{JoinWindows, TimeWindows};
use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::runtime::{KafkaStreams, ProcessingGuarantee, StreamsConfig};
use streams_core::serde::{BytesSerde, I32Serde, Nullable};
use streams_core::state::Stores;
use streams_core::{Consumed, Grouped, Materialized, Produced, Record, StreamsBuilder};

/// Window of the window-store case's fetch, behind each record's timestamp.
const WINDOW_STORE_FETCH_MS: i64 = 1_000;

#[derive(Parser, Debug)]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// The case to run.
    #[arg(long)]
    case: String,
    /// The input topic.
    #[arg(long)]
    input: String,
    /// Input records to process before stopping.
    #[arg(long)]
    records: u64,
    /// The table topic (stream-table and table-table joins).
    #[arg(long, default_value = "")]
    table: String,
    /// The right stream of the stream-stream join.
    #[arg(long, default_value = "")]
    right: String,
    /// The ads table of the ad-campaign pipeline.
    #[arg(long, default_value = "")]
    yahoo_ads: String,
    /// The output topic of cases that write one.
    #[arg(long, default_value = "")]
    output: String,
    /// Application id (also the consumer group of the raw baselines).
    #[arg(long)]
    app_id: String,
    /// State directory.
    #[arg(long)]
    state_dir: String,
    /// Commit interval in ms.
    #[arg(long, default_value_t = 1_000)]
    commit_interval_ms: u64,
    /// Record cache budget in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    cache_bytes: usize,
    /// `at_least_once` or `exactly_once_v2`.
    #[arg(long, default_value = "at_least_once")]
    guarantee: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// A librdkafka consumer setting over the library's defaults, `name=value`
    /// (repeatable), for measuring the defaults themselves.
    #[arg(long = "consumer-setting", value_parser = setting)]
    consumer_settings: Vec<(String, String)>,
}

fn setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected name=value, got {text:?}"))
}

/// Counts input records as they pass the source; marks the first and the last.
struct Progress {
    target: u64,
    seen: AtomicU64,
    /// (time, process CPU ms) at the first and at the target record.
    marks: Mutex<[Option<(Instant, f64)>; 2]>,
    done: Condvar,
}

impl Progress {
    fn new(target: u64) -> Arc<Self> {
        Arc::new(Progress {
            target,
            seen: AtomicU64::new(0),
            marks: Mutex::new([None, None]),
            done: Condvar::new(),
        })
    }

    fn count(&self) {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n == self.target {
            let mark = Some((Instant::now(), process_cpu_ms()));
            let mut marks = self.marks.lock().expect("progress lock");
            if n == 1 {
                marks[0] = mark;
            }
            if n == self.target {
                marks[1] = mark;
                self.done.notify_all();
            }
        }
    }

    /// Waits for the target record; the first and last marks.
    fn wait(&self, timeout: Duration) -> Result<[(Instant, f64); 2]> {
        let marks = self.marks.lock().expect("progress lock");
        let (marks, _) = self
            .done
            .wait_timeout_while(marks, timeout, |m| m[1].is_none())
            .expect("progress lock");
        match *marks {
            [Some(first), Some(last)] => Ok([first, last]),
            _ => bail!(
                "only {} of {} records arrived within {timeout:?}",
                self.seen.load(Ordering::Relaxed),
                self.target
            ),
        }
    }
}

/// Reads and rewrites each record's key in a key-value store.
struct KeyValueUpdater;

impl Processor<i32, Vec<u8>, i32, Vec<u8>> for KeyValueUpdater {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, i32, Vec<u8>>,
        record: Record<i32, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<i32, Vec<u8>>("store")?;
        let _old = store.get(&record.key)?;
        store.put(&record.key, &record.value)
    }
}

/// Reads a key's windows of the last second, then writes the record's window.
struct WindowUpdater;

impl Processor<i32, Vec<u8>, i32, Vec<u8>> for WindowUpdater {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, i32, Vec<u8>>,
        record: Record<i32, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.window_store::<i32, Vec<u8>>("store")?;
        let ts = record.timestamp;
        let _recent = store.fetch_time_range(&record.key, ts - WINDOW_STORE_FETCH_MS, ts)?;
        store.put(&record.key, &record.value, ts)
    }
}

fn consumed() -> Consumed<i32, Vec<u8>> {
    Consumed::with(I32Serde, BytesSerde)
}

fn produced() -> Produced<i32, Vec<u8>> {
    Produced::with(I32Serde, BytesSerde)
}

/// Builds `case`'s topology; `progress` counts every input record at the source.
fn build(options: &Options, progress: &Arc<Progress>) -> Result<StreamsBuilder> {
    let b = StreamsBuilder::new();
    let count = {
        let progress = progress.clone();
        move |_: &i32, _: &Vec<u8>| progress.count()
    };
    let input = || b.stream(&options.input, consumed());
    match options.case.as_str() {
        "streamprocess" => input().foreach(count),
        "streamprocesswithsink" => input().peek(count).to(&options.output, produced()),
        "streamprocesswithstatestore" => {
            b.add_state_store(Stores::key_value("store", I32Serde, BytesSerde));
            input()
                .peek(count)
                .process_with_stores(|| KeyValueUpdater, &["store"]);
        }
        "streamprocesswithwindowstore" => {
            b.add_state_store(Stores::window(
                "store",
                I32Serde,
                BytesSerde,
                Duration::from_secs(60),
                Duration::from_secs(1),
                false,
            ));
            input()
                .peek(count)
                .process_with_stores(|| WindowUpdater, &["store"]);
        }
        "streamcount" => {
            input()
                .peek(count)
                .group_by_key(Grouped::with(I32Serde, BytesSerde))
                .count(Materialized::as_store("count"));
        }
        "streamcountwindowed" => {
            input()
                .peek(count)
                .group_by_key(Grouped::with(I32Serde, BytesSerde))
                .windowed_by(
                    TimeWindows::of_size_with_no_grace(Duration::from_secs(1))
                        .advance_by(Duration::from_millis(500)),
                )
                .count(Materialized::as_store("windowed-count"));
        }
        "streamtablejoin" => {
            let table = b.table(&options.table, consumed(), Materialized::as_store("table"));
            input()
                .peek(count)
                .left_join(&table, |v, _t| v.clone())
                .to(&options.output, produced());
        }
        "streamstreamjoin" => {
            let right = b.stream(&options.right, consumed());
            input()
                .peek(count)
                .left_join_stream(
                    &right,
                    |v, _r| v.clone(),
                    JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(10)),
                )
                .to(&options.output, produced());
        }
        "tabletablejoin" => {
            let right = b.table(&options.table, consumed(), Materialized::as_store("right"));
            input()
                .peek(count)
                .to_table(Materialized::as_store("left"))
                .left_join(&right, |l, _r| l.clone())
                .to_stream()
                .to(
                    &options.output,
                    Produced::with(I32Serde, Nullable(BytesSerde)),
                );
        }
        "yahoo" => {
            let ads = b.table(
                &options.yahoo_ads,
                Consumed::with(I32Serde, I32Serde),
                Materialized::as_store("ads"),
            );
            input()
                .peek(count)
                .filter(|_, event| event.first() == Some(&0))
                .map_values(|event| {
                    let time: [u8; 8] = event[1..9].try_into().expect("9-byte event");
                    i64::from_be_bytes(time)
                })
                .join(&ads, |_time, campaign| *campaign)
                .map(|ad, campaign| (campaign, ad))
                .group_by_key(Grouped::with(I32Serde, I32Serde))
                .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(10)))
                .count(Materialized::as_store("campaign-counts"));
        }
        other => bail!("unknown case {other}"),
    }
    Ok(b)
}

fn run_streams(options: &Options, started: Instant) -> Result<CaseReport> {
    let progress = Progress::new(options.records);
    let builder = build(options, &progress)?;
    let guarantee = match options.guarantee.as_str() {
        "at_least_once" => ProcessingGuarantee::AtLeastOnce,
        "exactly_once_v2" => ProcessingGuarantee::ExactlyOnceV2,
        other => bail!("unknown guarantee {other}"),
    };
    let mut config = StreamsConfig::new(&options.app_id, &options.bootstrap)
        .with_stream_threads(1)
        .with_commit_interval(Duration::from_millis(options.commit_interval_ms))
        .with_processing_guarantee(guarantee)
        .with_store_cache_max_bytes(options.cache_bytes)
        .with_state_dir(&options.state_dir);
    // The library's own consumer defaults, unless --consumer-setting overrides them.
    for (name, value) in &options.consumer_settings {
        config = config.with_consumer_setting(name, value);
    }
    let streams = KafkaStreams::new(builder.build()?, config)?;
    streams.start()?;
    let marks = progress.wait(Duration::from_secs(options.timeout_secs));
    streams.close(Duration::from_secs(60));
    let _ = streams.cleanup();
    report(options, started, marks?)
}

fn report(options: &Options, started: Instant, marks: [(Instant, f64); 2]) -> Result<CaseReport> {
    let [(first, first_cpu), (last, last_cpu)] = marks;
    Ok(CaseReport {
        case: options.case.clone(),
        records: options.records,
        startup_ms: (first - started).as_secs_f64() * 1e3,
        elapsed_ms: (last - first).as_secs_f64() * 1e3,
        cpu_ms: last_cpu - first_cpu,
    })
}

/// The raw baselines: consume (and produce each record again) with rdkafka directly,
/// one `BaseConsumer` poll loop, as a stream thread would.
fn run_raw(options: &Options, started: Instant, produce: bool) -> Result<CaseReport> {
    let consumer: BaseConsumer = client(&options.bootstrap)
        .set("group.id", &options.app_id)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // The fetch setting streams-core consumers start from, so the ceiling is comparable.
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    consumer.subscribe(&[&options.input])?;
    let producer = if produce {
        Some(producer(&options.bootstrap)?)
    } else {
        None
    };
    let progress = Progress::new(options.records);
    let deadline = started + Duration::from_secs(options.timeout_secs);
    while progress.seen.load(Ordering::Relaxed) < options.records {
        if Instant::now() > deadline {
            bail!("raw baseline stalled");
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("consuming")?;
        if let Some(p) = &producer {
            let mut record =
                BaseRecord::to(&options.output).payload(message.payload().unwrap_or_default());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            send_blocking(p, record);
        }
        progress.count();
    }
    if let Some(p) = &producer {
        p.flush(Duration::from_secs(60))?;
    }
    let marks = progress.wait(Duration::ZERO)?;
    report(options, started, marks)
}

fn main() -> Result<()> {
    let started = Instant::now();
    let options = Options::parse();
    let report = match options.case.as_str() {
        "rawconsume" => run_raw(&options, started, false)?,
        "rawconsumeproduce" => run_raw(&options, started, true)?,
        _ => run_streams(&options, started)?,
    };
    println!("{}", report.to_line());
    Ok(())
}
