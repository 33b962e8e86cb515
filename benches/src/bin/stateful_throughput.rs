//! Stateful throughput: streams-core's stateful operators on the real broker, one
//! `KafkaStreams` instance with one stream thread, RocksDB stores logged to changelogs.
//!
//! ```text
//! dev/kafka start
//! cargo run --release -p streams-benches --bin stateful-throughput -- \
//!     --records 200000 --restore-records 1000000
//! # a subset:
//! cargo run --release -p streams-benches --bin stateful-throughput -- --cases count,restore
//! ```
//!
//! Cases (`--cases`, comma separated; all by default):
//!
//! - `kv`: a processor reads, modifies and writes each record's 1 KB value in a
//!   persistent key-value store and forwards it;
//! - `count`: `group_by_key().count()`, updates held back by the record cache (10 MiB)
//!   until commit; `count-nocache` the same with `Materialized::with_caching(false)`, so
//!   every update goes out;
//! - `windowed`: hopping windowed count, size 60 s advancing by 10 s (six window updates
//!   per record in), with the record cache; `windowed-nocache` without it;
//! - `table-join`: `KStream::left_join(&KTable)` against a table of every key, loaded
//!   beforehand by a first run of the application while its own stream topic is empty;
//!   the stream records are written after that run closes, and a second run on the same
//!   state directory is timed;
//! - `stream-join`: `join_stream` of two input topics with a 10 s `JoinWindows`, half
//!   of `--records` on each side, every left record matching exactly one right record;
//! - `restore`: `--restore-records` records with distinct keys go through a processor
//!   that puts them into a persistent store, so its changelog holds exactly that many
//!   records (compaction has nothing to remove); the instance closes, and a fresh one
//!   with an empty state directory restores the changelog. Timed from the first
//!   restoration start reported to the `RestoreListener` until every task is `Running`.
//!
//! The aggregations (`count`, `windowed` and their `-nocache` variants) are timed until
//! the last input record has been counted, since the cache holds their output back.
//! The other throughput cases read `--records` records (10,000 keys, 1 KB values, 3 partitions,
//! timestamps 2 ms apart in the past) from the beginning. Timing starts at the first
//! record processed (a `peek` in front of the stateful operator, so group join and
//! start-up are excluded) and ends when the high watermarks of the output topic reach the
//! expected number of records (only acknowledged records count). Every topic and
//! consumer group the run creates starts with `bench-stateful-<run>` and is deleted at
//! the end, internal changelog and repartition topics included; state directories go
//! under the system temporary directory and are removed too.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use streams_core::dsl::{JoinWindows, TimeWindows};
use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig, TaskStatus};
use streams_core::serde::{BytesSerde, StringSerde};
use streams_core::state::Stores;
use streams_core::{Consumed, Grouped, Materialized, Produced, Record, StreamsBuilder};
use streams_state::{RestoreListener, TopicPartition};

const ALL_CASES: [&str; 8] = [
    "kv",
    "count",
    "count-nocache",
    "windowed",
    "windowed-nocache",
    "table-join",
    "stream-join",
    "restore",
];
/// Distinct keys of the throughput cases.
const KEYS: usize = 10_000;
/// Gap between the timestamps of consecutive input records: a key comes back every
/// 20 s, beyond the 10 s join window, so stream-join pairs are unambiguous.
const TIMESTAMP_STEP_MS: i64 = 2;
const WINDOW_SIZE: Duration = Duration::from_secs(60);
const WINDOW_ADVANCE: Duration = Duration::from_secs(10);
const JOIN_WINDOW: Duration = Duration::from_secs(10);
const TABLE_STORE: &str = "table-store";
const KV_STORE: &str = "kv-store";
const RESTORE_STORE: &str = "restore-store";
/// How long one case may take before it counts as stalled.
const CASE_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Parser, Debug)]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Input records of each throughput case (the stream join splits them over its two
    /// input topics).
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Changelog records the restore case restores.
    #[arg(long, default_value_t = 1_000_000)]
    restore_records: usize,
    /// Cases to run, comma separated: kv, count, count-nocache, windowed,
    /// windowed-nocache, table-join, stream-join, restore.
    #[arg(long, value_delimiter = ',', default_values_t = ALL_CASES.map(String::from))]
    cases: Vec<String>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
}

/// One measured case.
struct Outcome {
    case: String,
    records: u64,
    elapsed: Duration,
    note: String,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// Names, clients and directories of one run.
struct Bench {
    options: Options,
    /// Prefix of every topic, application id and state directory of the run.
    prefix: String,
    state_root: PathBuf,
    /// Timestamp of input record 0.
    base_ts: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn key(i: usize) -> String {
    format!("key-{}", i % KEYS)
}

/// Read-modify-write of each record's value in a persistent store: the first 8 bytes of
/// the stored value count the updates of its key.
struct ReadModifyWrite;

impl Processor<String, Vec<u8>, String, Vec<u8>> for ReadModifyWrite {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, Vec<u8>>,
        mut record: Record<String, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.key_value_store::<String, Vec<u8>>(KV_STORE)?;
        let previous = store
            .get(&record.key)?
            .and_then(|v| {
                v.get(..8)
                    .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
            })
            .unwrap_or(0);
        let mut value = std::mem::take(&mut record.value);
        if let Some(counter) = value.get_mut(..8) {
            counter.copy_from_slice(&(previous + 1).to_be_bytes());
        }
        store.put(&record.key, &value)?;
        ctx.forward(record.with_value(value))
    }
}

/// Puts each record into the restore case's store; forwards nothing.
struct PutInStore;

impl Processor<String, Vec<u8>, String, Vec<u8>> for PutInStore {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, Vec<u8>>,
        record: Record<String, Vec<u8>>,
    ) -> Result<(), ProcessError> {
        ctx.key_value_store::<String, Vec<u8>>(RESTORE_STORE)?
            .put(&record.key, &record.value)?;
        Ok(())
    }
}

/// Restoration progress: records restored, first start and last end.
#[derive(Clone, Default)]
struct RestoreClock(Arc<RestoreClockInner>);

#[derive(Default)]
struct RestoreClockInner {
    restored: AtomicU64,
    first_start: OnceLock<Instant>,
    last_end: Mutex<Option<Instant>>,
}

impl RestoreListener for RestoreClock {
    fn on_restore_start(&self, _: &str, _: &TopicPartition, _: i64, _: i64) {
        self.0.first_start.get_or_init(Instant::now);
    }

    fn on_batch_restored(&self, _: &str, _: &TopicPartition, _: i64, n: u64) {
        self.0.restored.fetch_add(n, Ordering::Relaxed);
    }

    fn on_restore_end(&self, _: &str, _: &TopicPartition, _: u64) {
        *self.0.last_end.lock().expect("restore clock lock") = Some(Instant::now());
    }
}

/// The instant of the first record processed, set by a `peek`.
type FirstRecord = Arc<OnceLock<Instant>>;

fn marker<K, V>(first: &FirstRecord) -> impl Fn(&K, &V) + Send + Sync + 'static {
    let first = first.clone();
    move |_, _| {
        first.get_or_init(Instant::now);
    }
}

/// Counts records passing a `peek`; marks the instant the last expected one passes.
#[derive(Clone)]
struct InputClock(Arc<InputClockInner>);

struct InputClockInner {
    expected: u64,
    seen: AtomicU64,
    last: OnceLock<Instant>,
}

impl InputClock {
    fn new(expected: usize) -> Self {
        InputClock(Arc::new(InputClockInner {
            expected: expected as u64,
            seen: AtomicU64::new(0),
            last: OnceLock::new(),
        }))
    }

    fn peek<K, V>(&self) -> impl Fn(&K, &V) + Send + Sync + 'static {
        let clock = self.0.clone();
        move |_, _| {
            if clock.seen.fetch_add(1, Ordering::Relaxed) + 1 == clock.expected {
                clock.last.get_or_init(Instant::now);
            }
        }
    }
}

/// Counts the records a `peek` sees.
fn counter<K, V>(n: &Arc<AtomicU64>) -> impl Fn(&K, &V) + Send + Sync + 'static {
    let n = n.clone();
    move |_, _| {
        n.fetch_add(1, Ordering::Relaxed);
    }
}

impl Bench {
    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.options.bootstrap);
        c
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        Ok(self.client().create()?)
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    fn create_topic(&self, what: &str) -> Result<String> {
        let name = self.name(what);
        let topic = NewTopic::new(&name, self.options.partitions, TopicReplication::Fixed(1));
        for result in block_on(self.admin()?.create_topics([&topic], &AdminOptions::new()))? {
            result.map_err(|(t, e)| anyhow!("creating {t}: {e}"))?;
        }
        Ok(name)
    }

    fn producer(&self) -> Result<ThreadedProducer<DefaultProducerContext>> {
        Ok(self
            .client()
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .create()?)
    }

    /// Writes `n` records of `--value-size` bytes, keyed by `key_of(i)`, with timestamp
    /// `ts_of(i)`.
    fn fill(
        &self,
        topic: &str,
        n: usize,
        key_of: impl Fn(usize) -> String,
        ts_of: impl Fn(usize) -> i64,
    ) -> Result<()> {
        let p = self.producer()?;
        let value = vec![b'x'; self.options.value_size];
        for i in 0..n {
            let key = key_of(i);
            let mut record = BaseRecord::to(topic)
                .key(&key)
                .payload(&value)
                .timestamp(ts_of(i));
            loop {
                match p.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        p.flush(Duration::from_secs(300))?;
        Ok(())
    }

    fn ts(&self, i: usize) -> i64 {
        self.base_ts + i as i64 * TIMESTAMP_STEP_MS
    }

    /// Sum of the high watermarks of `topic` (records acknowledged so far).
    fn end_offsets(&self, watcher: &BaseConsumer, topic: &str) -> Result<i64> {
        let mut total = 0;
        for p in 0..self.options.partitions {
            total += watcher
                .fetch_watermarks(topic, p, Duration::from_secs(10))?
                .1;
        }
        Ok(total)
    }

    /// Waits until `topic` holds `n` records while `streams` runs.
    fn wait_for_records(
        &self,
        streams: &KafkaStreams,
        case: &str,
        topic: &str,
        n: i64,
    ) -> Result<()> {
        let watcher: BaseConsumer = self.client().create()?;
        let deadline = Instant::now() + CASE_TIMEOUT;
        loop {
            // Internal topics exist only once the application has started.
            let written = self.end_offsets(&watcher, topic).unwrap_or(0);
            if written >= n {
                return Ok(());
            }
            if matches!(streams.state(), State::Error | State::NotRunning) {
                bail!("{case}: the application stopped in {:?}", streams.state());
            }
            if Instant::now() > deadline {
                bail!("{case}: {topic} stalled at {written} of {n} records");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn config(&self, app: &str, state_dir: &Path) -> StreamsConfig {
        StreamsConfig::new(app, &self.options.bootstrap)
            .with_stream_threads(1)
            .with_state_dir(state_dir)
    }

    /// Runs `builder`'s topology as application `<prefix>-<case>` until `output` holds
    /// `expected` records; timed from `first`.
    fn measure(
        &self,
        case: &str,
        builder: StreamsBuilder,
        first: &FirstRecord,
        output: &str,
        expected: i64,
    ) -> Result<Duration> {
        let app = self.name(case);
        let config = self.config(&app, &self.state_root.join(case));
        let streams = KafkaStreams::new(builder.build()?, config)?;
        streams.start()?;
        let watcher: BaseConsumer = self.client().create()?;
        let deadline = Instant::now() + CASE_TIMEOUT;
        let done = loop {
            let n = self.end_offsets(&watcher, output)?;
            if n >= expected {
                break Instant::now();
            }
            if matches!(streams.state(), State::Error | State::NotRunning) {
                bail!("{case}: the application stopped in {:?}", streams.state());
            }
            if Instant::now() > deadline {
                bail!("{case}: stalled at {n} of {expected} output records");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = first
            .get()
            .map(|s| done.duration_since(*s))
            .context("no record was processed")?;
        if !streams.close(Duration::from_secs(60)) {
            eprintln!("{case}: close timed out");
        }
        let n = self.end_offsets(&watcher, output)?;
        if n != expected {
            eprintln!("{case}: {n} output records, {expected} expected");
        }
        Ok(elapsed)
    }

    /// Runs `builder`'s topology until `clock` has seen every input record; timed from
    /// `first`. For aggregations, whose output the record cache holds back.
    fn measure_input(
        &self,
        case: &str,
        builder: StreamsBuilder,
        first: &FirstRecord,
        clock: &InputClock,
    ) -> Result<Duration> {
        let app = self.name(case);
        let config = self.config(&app, &self.state_root.join(case));
        let streams = KafkaStreams::new(builder.build()?, config)?;
        streams.start()?;
        let deadline = Instant::now() + CASE_TIMEOUT;
        let done = loop {
            if let Some(last) = clock.0.last.get() {
                break *last;
            }
            if matches!(streams.state(), State::Error | State::NotRunning) {
                bail!("{case}: the application stopped in {:?}", streams.state());
            }
            if Instant::now() > deadline {
                let seen = clock.0.seen.load(Ordering::Relaxed);
                bail!(
                    "{case}: stalled at {seen} of {} input records",
                    clock.0.expected
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = first
            .get()
            .map(|s| done.duration_since(*s))
            .context("no record was processed")?;
        if !streams.close(Duration::from_secs(60)) {
            eprintln!("{case}: close timed out");
        }
        Ok(elapsed)
    }

    fn run_kv(&self, input: &str) -> Result<Outcome> {
        let output = self.create_topic("kv-out")?;
        let first = FirstRecord::default();
        let builder = StreamsBuilder::new();
        builder.add_state_store(Stores::key_value(KV_STORE, StringSerde, BytesSerde));
        builder
            .stream(input, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(&first))
            .process_with_stores(|| ReadModifyWrite, &[KV_STORE])
            .to(&output, Produced::with(StringSerde, BytesSerde));
        let n = self.options.records;
        let elapsed = self.measure("kv", builder, &first, &output, n as i64)?;
        Ok(self.outcome("kv", n, elapsed, "get + put of 1 KB per record"))
    }

    /// `group_by_key().count()`, with the record cache (`cached`) or without, timed until
    /// every input record has been counted; the note says how many updates went out.
    fn run_count(&self, input: &str, cached: bool) -> Result<Outcome> {
        let case = if cached { "count" } else { "count-nocache" };
        let first = FirstRecord::default();
        let n = self.options.records;
        let clock = InputClock::new(n);
        let out = Arc::new(AtomicU64::new(0));
        let builder = StreamsBuilder::new();
        builder
            .stream(input, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(&first))
            .peek(clock.peek())
            .group_by_key(Grouped::new())
            .count(Materialized::new().with_caching(cached))
            .to_stream()
            .peek(counter(&out));
        let elapsed = self.measure_input(case, builder, &first, &clock)?;
        let note = format!("{} updates out", out.load(Ordering::Relaxed));
        Ok(self.outcome(case, n, elapsed, &note))
    }

    /// Hopping windowed count, with the record cache (`cached`) or without, timed until
    /// every input record has been counted; the note says how many updates went out.
    fn run_windowed(&self, input: &str, cached: bool) -> Result<Outcome> {
        let case = if cached {
            "windowed"
        } else {
            "windowed-nocache"
        };
        let windows = TimeWindows::of_size_with_no_grace(WINDOW_SIZE).advance_by(WINDOW_ADVANCE);
        let n = self.options.records;
        let first = FirstRecord::default();
        let clock = InputClock::new(n);
        let out = Arc::new(AtomicU64::new(0));
        let builder = StreamsBuilder::new();
        builder
            .stream(input, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(&first))
            .peek(clock.peek())
            .group_by_key(Grouped::new())
            .windowed_by(windows)
            .count(Materialized::new().with_caching(cached))
            .to_stream()
            .peek(counter(&out));
        let elapsed = self.measure_input(case, builder, &first, &clock)?;
        let note = format!("{} window updates out", out.load(Ordering::Relaxed));
        Ok(self.outcome(case, n, elapsed, &note))
    }

    fn table_join_topology(
        &self,
        table: &str,
        input: &str,
        output: &str,
        first: &FirstRecord,
        misses: &Arc<AtomicU64>,
    ) -> StreamsBuilder {
        let builder = StreamsBuilder::new();
        let table = builder.table(
            table,
            Consumed::with(StringSerde, BytesSerde),
            Materialized::as_store(TABLE_STORE),
        );
        let misses = misses.clone();
        builder
            .stream(input, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(first))
            .left_join(&table, move |v: &Vec<u8>, t: Option<&Vec<u8>>| {
                let mut out = v.clone();
                match (out.first_mut(), t.and_then(|t| t.first())) {
                    (Some(o), Some(t)) => *o = *t,
                    _ => {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                }
                out
            })
            .to(output, Produced::with(StringSerde, BytesSerde));
        builder
    }

    /// The table is loaded by a first run of the application while its stream topic is
    /// still empty; the stream records are written once it has closed, and a second run
    /// with the same state directory (table store checkpointed, nothing to restore) is
    /// timed.
    fn run_table_join(&self) -> Result<Outcome> {
        let case = "table-join";
        let table = self.create_topic("table")?;
        self.fill(&table, KEYS, key, |_| self.base_ts)?;
        let input = self.create_topic("table-join-in")?;
        let output = self.create_topic("table-join-out")?;
        let misses = Arc::new(AtomicU64::new(0));

        let app = self.name(case);
        let state_dir = self.state_root.join(case);
        let builder =
            self.table_join_topology(&table, &input, &output, &FirstRecord::default(), &misses);
        let streams = KafkaStreams::new(builder.build()?, self.config(&app, &state_dir))?;
        streams.start()?;
        let changelog = format!("{app}-{TABLE_STORE}-changelog");
        self.wait_for_records(&streams, case, &changelog, KEYS as i64)?;
        if !streams.close(Duration::from_secs(60)) {
            eprintln!("{case}: close of the loading instance timed out");
        }
        drop(streams);

        let n = self.options.records;
        self.fill(&input, n, key, |i| self.ts(i))?;
        let first = FirstRecord::default();
        let builder = self.table_join_topology(&table, &input, &output, &first, &misses);
        let elapsed = self.measure(case, builder, &first, &output, n as i64)?;
        let misses = misses.load(Ordering::Relaxed);
        Ok(self.outcome(
            case,
            n,
            elapsed,
            &format!("{misses} records found no table value"),
        ))
    }

    fn run_stream_join(&self) -> Result<Outcome> {
        let per_side = self.options.records / 2;
        let left = self.create_topic("left")?;
        let right = self.create_topic("right")?;
        self.fill(&left, per_side, key, |i| self.ts(i))?;
        self.fill(&right, per_side, key, |i| self.ts(i))?;
        let output = self.create_topic("stream-join-out")?;
        let first = FirstRecord::default();
        let builder = StreamsBuilder::new();
        let right = builder
            .stream(&right, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(&first));
        builder
            .stream(&left, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(&first))
            .join_stream(
                &right,
                |l: &Vec<u8>, r: &Vec<u8>| {
                    let mut out = l.clone();
                    if let (Some(o), Some(r)) = (out.first_mut(), r.first()) {
                        *o ^= *r;
                    }
                    out
                },
                JoinWindows::of_time_difference_with_no_grace(JOIN_WINDOW),
            )
            .to(&output, Produced::with(StringSerde, BytesSerde));
        let elapsed = self.measure("stream-join", builder, &first, &output, per_side as i64)?;
        Ok(self.outcome(
            "stream-join",
            2 * per_side,
            elapsed,
            &format!("{per_side} per side, {per_side} pairs out"),
        ))
    }

    fn restore_app(
        &self,
        input: &str,
        state_dir: &Path,
        first: &FirstRecord,
    ) -> Result<KafkaStreams> {
        let builder = StreamsBuilder::new();
        builder.add_state_store(Stores::key_value(RESTORE_STORE, StringSerde, BytesSerde));
        let _ = builder
            .stream(input, Consumed::with(StringSerde, BytesSerde))
            .peek(marker(first))
            .process_with_stores::<String, Vec<u8>, _>(|| PutInStore, &[RESTORE_STORE]);
        let app = self.name("restore");
        Ok(KafkaStreams::new(
            builder.build()?,
            self.config(&app, state_dir),
        )?)
    }

    fn run_restore(&self) -> Result<Outcome> {
        let n = self.options.restore_records;
        let input = self.create_topic("restore-in")?;
        println!("producing {n} restore records...");
        self.fill(&input, n, |i| format!("restore-{i}"), |i| self.ts(i))?;
        let changelog = format!("{}-{RESTORE_STORE}-changelog", self.name("restore"));

        // Build the changelog: one write per record, every key distinct.
        let first = FirstRecord::default();
        let builder_dir = self.state_root.join("restore-build");
        let streams = self.restore_app(&input, &builder_dir, &first)?;
        streams.start()?;
        self.wait_for_records(&streams, "restore", &changelog, n as i64)?;
        let built = first.get().map(Instant::elapsed).unwrap_or_default();
        println!(
            "restore: changelog of {n} records built at {:.0} records/s ({built:.2?})",
            n as f64 / built.as_secs_f64()
        );
        if !streams.close(Duration::from_secs(60)) {
            eprintln!("restore: close of the building instance timed out");
        }
        drop(streams);
        let _ = std::fs::remove_dir_all(&builder_dir);
        let watcher: BaseConsumer = self.client().create()?;
        let changelog_records = self.end_offsets(&watcher, &changelog)?;

        // A fresh instance with an empty state directory restores all of it.
        let fresh_dir = self.state_root.join("restore-fresh");
        let streams = self.restore_app(&input, &fresh_dir, &FirstRecord::default())?;
        let clock = RestoreClock::default();
        streams.set_restore_listener(clock.clone());
        let started = Instant::now();
        streams.start()?;
        let deadline = Instant::now() + CASE_TIMEOUT;
        let done = loop {
            let tasks = streams.local_task_states();
            if tasks.len() == self.options.partitions as usize
                && tasks.iter().all(|(_, s)| *s == TaskStatus::Running)
            {
                break Instant::now();
            }
            if matches!(streams.state(), State::Error | State::NotRunning) {
                bail!(
                    "restore: the restoring application stopped in {:?}",
                    streams.state()
                );
            }
            if Instant::now() > deadline {
                bail!("restore: still restoring: {tasks:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let restored = clock.0.restored.load(Ordering::Relaxed);
        let from_start = done.duration_since(started);
        let elapsed = clock
            .0
            .first_start
            .get()
            .map(|s| done.duration_since(*s))
            .context("restoration never started")?;
        streams.close(Duration::from_secs(60));
        if restored != changelog_records as u64 {
            eprintln!(
                "restore: {restored} records restored of {changelog_records} in the changelog"
            );
        }
        Ok(self.outcome(
            "restore",
            restored as usize,
            elapsed,
            &format!("{from_start:.2?} from start() incl. group join"),
        ))
    }

    fn outcome(&self, case: &str, records: usize, elapsed: Duration, note: &str) -> Outcome {
        let outcome = Outcome {
            case: case.to_string(),
            records: records as u64,
            elapsed,
            note: note.to_string(),
        };
        println!(
            "{case:<12} {:>10.0} records/s  {:>9} records in {elapsed:.2?}  ({note})",
            outcome.rate(),
            outcome.records,
        );
        outcome
    }

    fn run(&self, cases: &[String]) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        let needs_input = cases.iter().any(|c| {
            matches!(
                c.as_str(),
                "kv" | "count" | "count-nocache" | "windowed" | "windowed-nocache"
            )
        });
        let input = if needs_input {
            let input = self.create_topic("in")?;
            println!("producing {} input records...", self.options.records);
            self.fill(&input, self.options.records, key, |i| self.ts(i))?;
            input
        } else {
            String::new()
        };
        for case in cases {
            let outcome = match case.as_str() {
                "kv" => self.run_kv(&input)?,
                "count" => self.run_count(&input, true)?,
                "count-nocache" => self.run_count(&input, false)?,
                "windowed" => self.run_windowed(&input, true)?,
                "windowed-nocache" => self.run_windowed(&input, false)?,
                "table-join" => self.run_table_join()?,
                "stream-join" => self.run_stream_join()?,
                "restore" => self.run_restore()?,
                other => bail!("unknown case {other}"),
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Deletes every topic and consumer group named with the run's prefix (inputs,
    /// outputs, changelog and repartition topics) and the state directories.
    fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.state_root);
        let Ok(admin) = self.admin() else {
            return;
        };
        let prefix = self.prefix.as_str();
        if let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(30)) {
            let topics: Vec<&str> = metadata
                .topics()
                .iter()
                .map(|t| t.name())
                .filter(|t| t.starts_with(prefix))
                .collect();
            if !topics.is_empty() {
                match block_on(admin.delete_topics(&topics, &AdminOptions::new())) {
                    Ok(_) => println!("deleted {} topics named {prefix}-*", topics.len()),
                    Err(e) => eprintln!("deleting topics: {e}"),
                }
            }
        }
        if let Ok(groups) = admin
            .inner()
            .fetch_group_list(None, Duration::from_secs(30))
        {
            let groups: Vec<&str> = groups
                .groups()
                .iter()
                .map(|g| g.name())
                .filter(|g| g.starts_with(prefix))
                .collect();
            if !groups.is_empty() {
                let _ = block_on(admin.delete_groups(&groups, &AdminOptions::new()));
            }
        }
    }
}

fn main() -> Result<()> {
    let options = Options::parse();
    for case in &options.cases {
        if !ALL_CASES.contains(&case.as_str()) {
            bail!("unknown case {case}; known: {}", ALL_CASES.join(","));
        }
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("bench-stateful-{}", &run[..12]);
    let span = options.records.max(options.restore_records) as i64 * TIMESTAMP_STEP_MS;
    let bench = Bench {
        state_root: std::env::temp_dir().join(&prefix),
        // Every timestamp in the past, well clear of zero.
        base_ts: now_ms() - span - 120_000,
        prefix,
        options,
    };
    bench
        .admin()
        .and_then(|a| {
            a.inner()
                .fetch_metadata(None, Duration::from_secs(10))
                .map_err(Into::into)
        })
        .context("is the broker up? start it with `dev/kafka start`")?;
    println!(
        "{} records ({} keys, {} byte values, {} partitions), restore {} records; run {}",
        bench.options.records,
        KEYS,
        bench.options.value_size,
        bench.options.partitions,
        bench.options.restore_records,
        bench.prefix
    );
    let cases = bench.options.cases.clone();
    let result = bench.run(&cases);
    bench.clean_up();
    let outcomes = result?;
    println!();
    println!(
        "{:<12} {:>12} {:>10} {:>12}  note",
        "case", "records/s", "records", "elapsed"
    );
    for o in &outcomes {
        println!(
            "{:<12} {:>12.0} {:>10} {:>12}  {}",
            o.case,
            o.rate(),
            o.records,
            format!("{:.2?}", o.elapsed),
            o.note
        );
    }
    Ok(())
}
