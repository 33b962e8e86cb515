//! Where an order's time goes on its way through the platform: watches `orders.v1` and
//! `order-validations.v1` with a read-uncommitted and a read-committed consumer and,
//! per order id, notes when each of its records was written (seen uncommitted) and
//! when it became readable (seen committed). Run it beside `order-load`:
//!
//! ```text
//! dev/demo --release --no-populator
//! cargo run --release -p streams-benches --bin order-hops -- --secs 20 &
//! cargo run --release -p streams-benches --bin order-load -- --rates 100 --secs 10
//! ```
//!
//! It prints, over the orders whose records all arrived, the p50 / p99 of each step:
//! CREATED written → the three validations written (the checks) → readable (their
//! transactions' commits) → the final state written (the aggregator) → readable.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use streams_benches::{client, percentile_ms};

#[derive(Parser, Debug)]
struct Options {
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Seconds to watch.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// The platform's topic prefix, if it runs with one.
    #[arg(long, env = "PLATFORM_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
}

/// One record seen: its topic, key, and whether the consumer reads committed only.
struct Seen {
    orders_topic: bool,
    key: String,
    committed: bool,
    at: Instant,
}

fn watch(
    options: &Options,
    committed: bool,
    until: Instant,
    seen: mpsc::Sender<Seen>,
) -> Result<()> {
    let isolation = if committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let consumer: BaseConsumer = client(&options.bootstrap)
        .set("group.id", "order-hops")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "5")
        .set("fetch.queue.backoff.ms", "1")
        .create()
        .context("creating the consumer")?;
    let orders = format!("{}orders.v1", options.topic_prefix);
    let validations = format!("{}order-validations.v1", options.topic_prefix);
    let mut assignment = TopicPartitionList::new();
    for topic in [&orders, &validations] {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .context("reading topic metadata")?;
        for partition in metadata.topics()[0].partitions() {
            assignment.add_partition_offset(topic, partition.id(), Offset::End)?;
        }
    }
    consumer.assign(&assignment)?;
    while Instant::now() < until {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(10)) else {
            continue;
        };
        let at = Instant::now();
        let Some(key) = message.key() else { continue };
        let _ = seen.send(Seen {
            orders_topic: message.topic() == orders,
            key: String::from_utf8_lossy(key).into_owned(),
            committed,
            at,
        });
    }
    Ok(())
}

/// When each of an order's records was written and became readable.
#[derive(Default)]
struct Timeline {
    orders: [Vec<Instant>; 2],
    validations: [Vec<Instant>; 2],
}

fn main() -> Result<()> {
    let options = Options::parse();
    let until = Instant::now() + Duration::from_secs(options.secs);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| -> Result<()> {
        let watchers: Vec<_> = [false, true]
            .into_iter()
            .map(|committed| {
                let tx = tx.clone();
                let options = &options;
                s.spawn(move || watch(options, committed, until, tx))
            })
            .collect();
        drop(tx);
        let mut timelines: HashMap<String, Timeline> = HashMap::new();
        for seen in rx {
            let t = timelines.entry(seen.key).or_default();
            let list = if seen.orders_topic {
                &mut t.orders
            } else {
                &mut t.validations
            };
            list[usize::from(seen.committed)].push(seen.at);
        }
        for w in watchers {
            w.join().expect("watcher")?;
        }
        report(&timelines);
        Ok(())
    })
}

fn report(timelines: &HashMap<String, Timeline>) {
    let steps = [
        "CREATED written → CREATED readable",
        "CREATED readable → first validation written",
        "CREATED readable → last validation written",
        "last validation written → readable",
        "last validation readable → final state written",
        "final state written → readable",
        "CREATED written → final state readable",
    ];
    let mut deltas: Vec<Vec<Duration>> = vec![Vec::new(); steps.len()];
    let mut complete = 0;
    for t in timelines.values() {
        let [ou, oc] = &t.orders;
        let [vu, vc] = &t.validations;
        if ou.len() != 2 || oc.len() != 2 || vu.len() != 3 || vc.len() != 3 {
            continue;
        }
        complete += 1;
        let (first_v, last_v) = (vu.iter().min().unwrap(), vu.iter().max().unwrap());
        let last_vc = vc.iter().max().unwrap();
        let points = [
            (ou[0], oc[0]),
            (oc[0], *first_v),
            (oc[0], *last_v),
            (*last_v, *last_vc),
            (*last_vc, ou[1]),
            (ou[1], oc[1]),
            (ou[0], oc[1]),
        ];
        for (i, (from, to)) in points.into_iter().enumerate() {
            deltas[i].push(to.saturating_duration_since(from));
        }
    }
    println!("{complete} orders with every record seen");
    println!("| step | p50 ms | p99 ms |\n|---|---|---|");
    for (step, mut d) in steps.iter().zip(deltas) {
        d.sort();
        println!(
            "| {step} | {:.1} | {:.1} |",
            percentile_ms(&d, 0.5),
            percentile_ms(&d, 0.99)
        );
    }
}
