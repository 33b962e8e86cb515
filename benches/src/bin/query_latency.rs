//! Interactive query latency: lookups per second and p50/p99 latency of local gets,
//! forwarded gets (one gRPC hop on loopback) and fan-out range queries, at a fixed
//! offered load, while the application keeps processing input.
//!
//! ```text
//! dev/kafka start
//! cargo run --release -p streams-benches --bin query-latency -- --rate 5000 --secs 10
//! ```
//!
//! Two instances of one application (a count over `--keys` keys on 6 partitions, each
//! instance serving queries on loopback) run in this process; a producer keeps feeding
//! `--input-rate` records/s. Queries are issued open-loop through instance A's router:
//! request `i` is due at `start + i / rate`, and its latency counts from when it was due,
//! so a stall shows in the tail instead of slowing the load down. Local gets ask keys
//! whose task runs on A; forwarded gets keys whose task runs on B; range queries ask
//! both instances for the keys between `key-NN` and `key-NN~` (111 keys) and merge.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::producer::{BaseRecord, Producer};
use streams_benches::{
    create_topic, delete_topics, fill_topic, open_loop, percentile_ms, producer, send_blocking,
};
use streams_core::query::QueryRouter;
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Grouped, Materialized, StreamsBuilder};

#[derive(Parser, Debug)]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Distinct keys in the counted table.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Offered load of key lookups, per second.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// Offered load of fan-out range queries, per second.
    #[arg(long, default_value_t = 200)]
    range_rate: u64,
    /// Seconds each kind of query is measured.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Input records per second fed to the application meanwhile.
    #[arg(long, default_value_t = 2_000)]
    input_rate: u64,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn key(i: usize) -> String {
    format!("key-{i}")
}

fn instance(
    options: &Options,
    app: &str,
    input: &str,
    dir: &std::path::Path,
) -> Result<KafkaStreams> {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("counts"));
    let config = StreamsConfig::new(app, &options.bootstrap)
        .with_application_server(format!("127.0.0.1:{}", free_port()?))
        .with_commit_interval(Duration::from_millis(500))
        .with_state_dir(dir);
    let streams = KafkaStreams::new(builder.build()?, config)?;
    streams.start()?;
    Ok(streams)
}

/// Latencies of one kind of query.
struct Measured {
    name: &'static str,
    offered: u64,
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Measured {
    fn print(&self) {
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {} |",
            self.name,
            self.offered,
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            percentile_ms(&self.latencies, 0.50),
            percentile_ms(&self.latencies, 0.99),
            self.latencies
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3,
            self.errors,
        );
    }
}

/// Issues `query(i)` open-loop at `rate` per second for `secs` seconds on `rt`.
fn measure<F, Fut>(
    rt: &tokio::runtime::Runtime,
    name: &'static str,
    rate: u64,
    secs: u64,
    query: F,
) -> Measured
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let (outputs, elapsed) = open_loop(rt, rate, secs, |i, due| {
        let request = query(i);
        async move { (request.await, due.elapsed()) }
    });
    let mut latencies: Vec<Duration> = outputs
        .iter()
        .filter_map(|o| o.and_then(|(ok, latency)| ok.then_some(latency)))
        .collect();
    let errors = outputs.len() - latencies.len();
    latencies.sort();
    Measured {
        name,
        offered: rate,
        latencies,
        errors,
        elapsed,
    }
}

fn main() -> Result<()> {
    let options = Options::parse();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let app = format!("query-latency-{run}");
    let input = format!("query-latency-input-{run}");
    create_topic(&options.bootstrap, &input, 6)?;
    eprintln!("filling {input} with {} keys", options.keys);
    fill_topic(&options.bootstrap, &input, options.keys, options.keys, 10)?;

    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let a = instance(&options, &app, &input, dirs[0].path())?;
    let b = instance(&options, &app, &input, dirs[1].path())?;
    for streams in [&a, &b] {
        if !streams.wait_for_state(State::Running, Duration::from_secs(60)) {
            bail!("an instance did not reach Running");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let router: QueryRouter = a.router();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = rt.block_on(router.all::<String, i64>("counts"));
        if all
            .as_ref()
            .is_ok_and(|all| all.value.len() == options.keys)
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the counts never covered every key: {:?}",
                all.map(|a| a.value.len())
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Keys by where their task runs.
    let a_process = a
        .metadata_for_all_instances()?
        .into_iter()
        .find(|m| {
            m.instance.host.as_ref().map(|h| h.port) == a.query_server_address().map(|s| s.port())
        })
        .context("instance A is not in the metadata")?
        .instance;
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for i in 0..options.keys {
        let metadata = a.query_metadata_for_key("counts", &key(i), &StringSerde)?;
        if metadata.active == a_process {
            local.push(key(i));
        } else {
            remote.push(key(i));
        }
    }
    eprintln!("{} keys on A, {} on B", local.len(), remote.len());

    // Input keeps flowing while queries run.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, bootstrap, input, keys, rate) = (
            stop.clone(),
            options.bootstrap.clone(),
            input.clone(),
            options.keys,
            options.input_rate,
        );
        std::thread::spawn(move || -> Result<()> {
            let p = producer(&bootstrap)?;
            let start = Instant::now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Acquire) {
                let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let k = key((sent as usize * 7919) % keys);
                send_blocking(
                    &p,
                    BaseRecord::to(&input).key(k.as_bytes()).payload(&b"x"[..]),
                );
                sent += 1;
            }
            p.flush(Duration::from_secs(30))?;
            Ok(())
        })
    };

    let local = Arc::new(local);
    let remote = Arc::new(remote);
    let measure_get = |name: &'static str, keys: Arc<Vec<String>>| {
        let router = router.clone();
        measure(&rt, name, options.rate, options.secs, move |i| {
            let router = router.clone();
            let key = keys[i as usize % keys.len()].clone();
            async move {
                matches!(router.get::<String, i64>("counts", &key).await, Ok(a) if a.value.is_some())
            }
        })
    };
    let warm = measure_get("warm-up", remote.clone());
    drop(warm);
    let results = [
        measure_get("local get", local.clone()),
        measure_get("forwarded get", remote.clone()),
        {
            let router = router.clone();
            measure(
                &rt,
                "fan-out range",
                options.range_rate,
                options.secs,
                move |i| {
                    let router = router.clone();
                    // Keys sort as strings: `key-NN` to `key-NN~` holds key-NN, key-NN0..9
                    // and key-NN00..99, 111 keys of the default 10,000.
                    let from = format!("key-{}", 10 + i % 90);
                    let to = format!("{from}~");
                    async move {
                        router
                            .range::<String, i64>("counts", Some(&from), Some(&to))
                            .await
                            .is_ok_and(|r| !r.value.is_empty())
                    }
                },
            )
        },
    ];
    stop.store(true, Ordering::Release);
    feeder.join().expect("the feeder thread")?;

    println!("| query | offered/s | answered/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|");
    for measured in &results {
        measured.print();
    }
    a.close(Duration::from_secs(30));
    b.close(Duration::from_secs(30));
    delete_topics(&options.bootstrap, &[input]);
    Ok(())
}
