//! Load on the order platform through its REST API: orders posted open-loop at fixed
//! rates; for each rate, POST latency and POST→VALIDATED latency (p50, p95, p99), and
//! the highest rate at which p99 POST→VALIDATED stays under one second (`--search`
//! finds it by doubling, then bisection).
//!
//! ```text
//! dev/demo --release --no-populator        # the platform, optimized, without the populator
//! cargo run --release -p streams-benches --bin order-load -- --rates 50,100,200,400
//! cargo run --release -p streams-benches --bin order-load -- --rates 100,1000 --search --secs 20
//! ```
//!
//! Before loading it stocks JUMPERS and UNDERPANTS with a billion each (an absolute
//! level, so earlier reservations do not matter); orders spread over 10,000 customers
//! so that none nears the fraud limit. Order `i` at rate `r` is due at `start + i / r`;
//! both latencies count from when it was due, so a stalled platform shows in the tail
//! instead of slowing the load down. POST→VALIDATED is the time until
//! `GET /v1/orders/{id}/validated` answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::producer::{BaseRecord, Producer};
use streams_benches::{open_loop, percentile_ms, producer, send_blocking};

#[derive(Parser, Debug)]
struct Options {
    /// Kafka bootstrap servers (for the stock levels).
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// The orders service.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    orders_url: String,
    /// Offered rates, orders per second, tried in this order.
    #[arg(long, value_delimiter = ',', default_values_t = [50u64, 100, 200, 400, 800, 1000])]
    rates: Vec<u64>,
    /// After the offered rates, search for the highest sustained one: doubling the best
    /// rate until one is not sustained, then bisecting to within 10%.
    #[arg(long)]
    search: bool,
    /// The highest rate the search tries.
    #[arg(long, default_value_t = 4000)]
    max_rate: u64,
    /// Seconds of load per rate.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// The platform's topic prefix, if it runs with one.
    #[arg(long, env = "PLATFORM_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
}

/// Latencies of one rate, sorted.
struct Measured {
    rate: u64,
    post: Vec<Duration>,
    validated: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Measured {
    /// Whether the platform kept up: every order validated, p99 POST→VALIDATED under
    /// one second (latencies count from when an order was due, so a backlog shows here).
    fn sustained(&self) -> bool {
        self.errors == 0 && percentile_ms(&self.validated, 0.99) < 1000.0
    }

    fn print(&self) {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            self.rate,
            self.validated.len() as f64 / self.elapsed.as_secs_f64(),
            percentile_ms(&self.post, 0.50),
            percentile_ms(&self.post, 0.95),
            percentile_ms(&self.post, 0.99),
            percentile_ms(&self.validated, 0.50),
            percentile_ms(&self.validated, 0.95),
            percentile_ms(&self.validated, 0.99),
            self.errors,
        );
    }
}

/// The highest rate that was sustained and the lowest that was not, so far.
#[derive(Default)]
struct RateSearch {
    kept: Option<u64>,
    lost: Option<u64>,
}

impl RateSearch {
    fn note(&mut self, rate: u64, sustained: bool) {
        if sustained {
            self.kept = self.kept.max(Some(rate));
        } else {
            self.lost = Some(self.lost.map_or(rate, |l| l.min(rate)));
        }
    }

    /// The next rate to try: the best one doubled until one is lost (up to `ceiling`),
    /// then bisection until the two are within 10% of each other.
    fn next(&self, ceiling: u64) -> Option<u64> {
        match (self.kept, self.lost) {
            (Some(k), None) if k * 2 <= ceiling => Some(k * 2),
            (Some(k), Some(l)) if l > k + k / 10 => Some((k + l) / 2),
            (None, Some(l)) if l > 10 => Some(l / 2),
            _ => None,
        }
    }
}

/// Posts one order and waits for its final state; returns both latencies from `due`.
async fn one_order(
    client: reqwest::Client,
    base: Arc<String>,
    id: String,
    customer: u64,
    due: Instant,
) -> Option<(Duration, Duration)> {
    let product = if customer.is_multiple_of(2) {
        "JUMPERS"
    } else {
        "UNDERPANTS"
    };
    let body = serde_json::json!({"id": id, "customerId": customer, "product": product, "quantity": 1, "price": 1.0});
    let posted = client
        .post(format!("{base}/v1/orders"))
        .json(&body)
        .send()
        .await
        .ok()?;
    if !posted.status().is_success() {
        return None;
    }
    let post = due.elapsed();
    let answer = client
        .get(format!("{base}/v1/orders/{id}/validated?timeout=30000"))
        .send()
        .await
        .ok()?;
    let order: serde_json::Value = answer.json().await.ok()?;
    (order["state"] == "VALIDATED").then(|| (post, due.elapsed()))
}

fn run_rate(rt: &tokio::runtime::Runtime, options: &Options, rate: u64, run: &str) -> Measured {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        // Beyond the 30 s long-poll: a platform that stopped answering counts as errors.
        .timeout(Duration::from_secs(40))
        .build()
        .expect("HTTP client");
    let base = Arc::new(options.orders_url.trim_end_matches('/').to_string());
    let (outputs, elapsed) = open_loop(rt, rate, options.secs, |i, due| {
        let id = format!("load-{run}-{rate}-{i}");
        one_order(client.clone(), base.clone(), id, i % 10_000, due)
    });
    let (mut post, mut validated): (Vec<Duration>, Vec<Duration>) =
        outputs.iter().flatten().flatten().copied().unzip();
    let errors = outputs.len() - post.len();
    post.sort();
    validated.sort();
    Measured {
        rate,
        post,
        validated,
        errors,
        elapsed,
    }
}

fn main() -> Result<()> {
    let options = Options::parse();
    let health = reqwest::blocking::get(format!(
        "{}/health",
        options.orders_url.trim_end_matches('/')
    ));
    if !health.as_ref().is_ok_and(|r| r.status().is_success()) {
        bail!("the orders service does not answer at {}: start the platform with `dev/demo --release --no-populator`", options.orders_url);
    }
    let stock = producer(&options.bootstrap)?;
    let topic = format!("{}warehouse-inventory.v1", options.topic_prefix);
    let level = 1_000_000_000i32.to_be_bytes();
    for product in ["JUMPERS", "UNDERPANTS"] {
        send_blocking(
            &stock,
            BaseRecord::to(&topic)
                .key(product.as_bytes())
                .payload(&level[..]),
        );
    }
    stock
        .flush(Duration::from_secs(30))
        .context("stocking the warehouse")?;
    std::thread::sleep(Duration::from_secs(1));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    println!("| offered/s | validated/s | POST p50 ms | p95 | p99 | POST→VALIDATED p50 ms | p95 | p99 | errors |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let measure = |rate: u64| {
        let measured = run_rate(&rt, &options, rate, &run);
        measured.print();
        measured.sustained()
    };
    let mut search = RateSearch::default();
    for &rate in &options.rates {
        search.note(rate, measure(rate));
    }
    if options.search {
        while let Some(rate) = search.next(options.max_rate) {
            search.note(rate, measure(rate));
        }
    }
    match search.kept {
        Some(rate) => println!(
            "highest offered rate sustained (every order validated, p99 POST→VALIDATED under 1 s): {rate} orders/s"
        ),
        None => println!("no offered rate kept p99 POST→VALIDATED under 1 s"),
    }
    Ok(())
}
