//! The populator: stocks the warehouse (`UNDERPANTS` = 20, `JUMPERS` = 10 on
//! `warehouse-inventory.v1`), then, at `--rate` orders per second (default 1), posts
//! orders 1, 2, 3… to the orders service (customer 0–5 at random, 0 having no
//! customer row; a random product; quantity 1; price 1.0) and sends each one's
//! `Payment` (one constant payment id, `"CZK"`, 1000.0) to `payments.v1`. A progress
//! line (orders sent, acknowledged, errors) updates in place on a terminal and is
//! printed as plain lines otherwise. Broker, registry and topic prefix come from the
//! platform's configuration (`service_kit::ServiceConfig`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use orders_platform::records::{Payment, Product};
use orders_platform::schemas::avsc;
use orders_platform::serdes::PlatformSerdes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use service_kit::ServiceConfig;

/// The payment id the originals' generator uses for every payment.
const PAYMENT_ID: &str = "Payment:1234";

#[derive(Parser, Debug)]
#[command(about = "Feeds the order platform with stock, orders and payments")]
struct Options {
    /// The orders service.
    #[arg(
        long,
        env = "POPULATOR_ORDERS_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    orders_url: String,
    /// Orders per second.
    #[arg(long, env = "POPULATOR_RATE", default_value_t = 1.0)]
    rate: f64,
    /// Stop after this many orders (default: run until stopped).
    #[arg(long, env = "POPULATOR_COUNT")]
    count: Option<u64>,
    /// The first order id.
    #[arg(long, default_value_t = 1)]
    first_id: u64,
    /// Seed of the random choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

/// Counts shown on the progress line.
#[derive(Default)]
struct Progress {
    sent: u64,
    acknowledged: u64,
    errors: u64,
}

impl Progress {
    fn line(&self) -> String {
        format!(
            "orders sent {}, acknowledged {}, errors {}",
            self.sent, self.acknowledged, self.errors
        )
    }
}

fn main() -> Result<()> {
    let options = Options::parse();
    anyhow::ensure!(options.rate > 0.0, "--rate must be above 0");
    let config = ServiceConfig::load(0)?;
    service_kit::telemetry::init(config.log_format);
    let topics = config.topics();
    service_kit::topics::ensure_topics(
        &config,
        &[
            topics.orders.clone(),
            topics.payments.clone(),
            topics.warehouse_inventory.clone(),
        ],
    )?;
    let registry =
        service_kit::service::registry(&config, &[(topics.payments.clone(), avsc::PAYMENT)])?;
    let serdes = PlatformSerdes::avro(registry)?;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()
        .context("creating the producer")?;

    for (product, level) in [(Product::Underpants, 20i32), (Product::Jumpers, 10)] {
        let level = level.to_be_bytes();
        producer
            .send(
                BaseRecord::to(&topics.warehouse_inventory)
                    .key(product.name())
                    .payload(&level[..]),
            )
            .map_err(|(e, _)| e)
            .context("stocking the warehouse")?;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("stocking the warehouse")?;
    eprintln!("stocked UNDERPANTS = 20, JUMPERS = 10");

    let mut random = fastrand::Rng::with_seed(options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}/v1/orders", options.orders_url.trim_end_matches('/'));
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut progress = Progress::default();
    let mut last_line = Instant::now();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / options.rate);
    let mut n = 0u64;
    while options.count.is_none_or(|count| n < count) {
        let due = start + interval.mul_f64(n as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let id = (options.first_id + n).to_string();
        n += 1;
        let product = Product::ALL[random.usize(..Product::ALL.len())];
        let body = serde_json::json!({
            "id": id,
            "customerId": random.i64(0..=5),
            "state": "CREATED",
            "product": product.name(),
            "quantity": 1,
            "price": 1.0,
        });
        progress.sent += 1;
        match client.post(&url).json(&body).send() {
            Ok(response) if response.status().is_success() => progress.acknowledged += 1,
            Ok(response) => {
                progress.errors += 1;
                let status = response.status();
                let body = response.text().unwrap_or_default();
                tracing::warn!(order = id, %status, "the orders service refused an order: {body}");
            }
            Err(e) => {
                progress.errors += 1;
                tracing::warn!(order = id, "posting an order failed: {e}");
            }
        }
        let payment = Payment {
            id: PAYMENT_ID.into(),
            order_id: id.clone(),
            ccy: "CZK".into(),
            amount: 1000.0,
        };
        let value = serdes
            .payment
            .serialize(&topics.payments, &payment)?
            .context("a payment is never null")?;
        if let Err((e, _)) = producer.send(
            BaseRecord::to(&topics.payments)
                .key(PAYMENT_ID)
                .payload(&value),
        ) {
            progress.errors += 1;
            tracing::warn!(order = id, "sending the payment failed: {e}");
        }
        match &bar {
            Some(bar) => bar.set_message(progress.line()),
            None if last_line.elapsed() >= Duration::from_secs(5) => {
                eprintln!("{}", progress.line());
                last_line = Instant::now();
            }
            None => {}
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("sending the last payments")?;
    if let Some(bar) = bar {
        bar.finish_with_message(progress.line());
    }
    eprintln!("done: {}", progress.line());
    Ok(())
}
