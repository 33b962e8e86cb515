//! Broker plumbing shared by the benchmark binaries: clients, throw-away topics, filling
//! an input topic with keyed records, end offsets, and medians of repeated rounds; and
//! the pieces of the side-by-side comparison with Java Kafka Streams.

pub mod chart;
pub mod report;
pub mod workload;

use std::time::Duration;

use anyhow::Result;
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A client configuration for `bootstrap`.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Creates `name` with `partitions` partitions.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create()?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for result in block_on(admin.create_topics([&topic], &AdminOptions::new()))? {
        result.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

/// Deletes `names`, best effort.
pub fn delete_topics(bootstrap: &str, names: &[String]) {
    if let Ok(admin) = client(bootstrap).create::<AdminClient<DefaultClientContext>>() {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let _ = block_on(admin.delete_topics(&refs, &AdminOptions::new()));
    }
}

/// A producer partitioning like Java clients, batching a little.
pub fn producer(bootstrap: &str) -> Result<ThreadedProducer<DefaultProducerContext>> {
    Ok(client(bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()?)
}

/// Sends `record` with `send`, waiting while the producer's queue is full.
pub fn send_blocking<'a>(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'a, [u8], [u8]>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Writes `records` records of `value_size` bytes to `topic`, keys `key-0` ..
/// `key-<keys - 1>` in turn, and waits until all are acknowledged.
pub fn fill_topic(
    bootstrap: &str,
    topic: &str,
    records: usize,
    keys: usize,
    value_size: usize,
) -> Result<()> {
    let p = producer(bootstrap)?;
    let value = vec![b'x'; value_size];
    for i in 0..records {
        let key = format!("key-{}", i % keys);
        send_blocking(
            &p,
            BaseRecord::to(topic)
                .key(key.as_bytes())
                .payload(&value[..]),
        );
    }
    p.flush(Duration::from_secs(120))?;
    Ok(())
}

/// End offsets (high watermarks) of partitions `0..partitions` of `topic`.
pub fn end_offsets(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Result<Vec<i64>> {
    (0..partitions)
        .map(|p| {
            Ok(consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))?
                .1)
        })
        .collect()
}

/// The median of `xs` (the upper one for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// The `p` quantile (0 to 1) of `sorted` latencies, in milliseconds; NaN when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

/// Runs `task(i, due)` on `rt` for `i` in `0..rate * secs`, each started when due
/// (`start + i / rate`): an open-loop load, so a stall shows in the latencies counted
/// from `due` instead of slowing the load down. The pacing runs on this thread with
/// the OS sleep (tokio's timer has a 1 ms granularity, which would add up to a
/// millisecond to every latency). Returns the outputs in order (`None` for a task that
/// panicked) and how long it all took.
pub fn open_loop<T, F, Fut>(
    rt: &tokio::runtime::Runtime,
    rate: u64,
    secs: u64,
    mut task: F,
) -> (Vec<Option<T>>, Duration)
where
    F: FnMut(u64, std::time::Instant) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let total = rate * secs;
    let start = std::time::Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
        handles.push(rt.spawn(task(i, due)));
    }
    let outputs = handles
        .into_iter()
        .map(|handle| rt.block_on(handle).ok())
        .collect();
    (outputs, start.elapsed())
}
