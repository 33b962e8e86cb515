//! Join application: re-keys orders by order id through a repartition topic and joins
//! them with payments (keyed by order id) within one minute, writing each joined pair to
//! an output topic. It is the process `examples/tests/eos_join_kills.rs` starts, kills
//! with SIGKILL and starts again, under exactly_once_v2.
//!
//! ```text
//! ORDERS_TOPIC (customer id → "<order id>:<amount>")
//!   └─select_key(order id)─repartition("orders-by-id")─┐
//! PAYMENTS_TOPIC (order id → payment) ───────────────────join_stream(1 min)─> OUTPUT_TOPIC
//!                                                          (order id → "<order>|<payment>")
//! ```
//!
//! Configuration comes from the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `APP_ID` | application id (consumer group, internal topic prefix); required |
//! | `ORDERS_TOPIC`, `PAYMENTS_TOPIC`, `OUTPUT_TOPIC` | topics; required, must exist, the two inputs with equal partition counts |
//! | `STATE_DIR` | directory of the state stores; required |
//! | `KAFKA_BOOTSTRAP` | bootstrap servers; default `127.0.0.1:9092` |
//! | `COMMIT_INTERVAL_MS` | commit interval; default 1000 |
//! | `SESSION_TIMEOUT_MS` | consumer `session.timeout.ms`; default 6000, so a killed instance is evicted quickly |
//! | `HEARTBEAT_INTERVAL_MS` | consumer `heartbeat.interval.ms`; default a sixth of the session timeout (100 to 3000) |
//! | `STREAMS_*` | any override `StreamsConfig::with_env_overrides` knows |
//!
//! Its stdout lines are those of `counting_app`: `RUNNING`, `STATE <state> tasks=[..]`,
//! `RESTORE-START`/`RESTORE-END`, `CLOSED`. It runs until SIGTERM or Ctrl-C (and, when
//! `EXIT_WHEN_STDIN_CLOSES=1`, until its stdin closes), then closes gracefully.

use std::time::Duration;

use anyhow::Result;
use streams_core::dsl::JoinWindows;
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Produced, Repartitioned, StreamsBuilder, Topology};
use streams_examples::required;

/// Name of the repartition topic's base: `<APP_ID>-orders-by-id-repartition`.
const REPARTITION: &str = "orders-by-id";

/// How far apart in time an order and its payment may be.
const JOIN_WINDOW: Duration = Duration::from_secs(60);

/// Orders re-keyed by order id (the part of the value before `:`) and repartitioned,
/// joined with payments by order id.
fn topology(orders: &str, payments: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    let by_id = builder
        .stream(orders, Consumed::with(StringSerde, StringSerde))
        .select_key(|_customer: &String, order: &String| {
            order.split(':').next().unwrap_or_default().to_string()
        })
        .repartition(Repartitioned::with(StringSerde, StringSerde).with_name(REPARTITION));
    let payments = builder.stream(payments, Consumed::with(StringSerde, StringSerde));
    by_id
        .join_stream(
            &payments,
            |order: &String, payment: &String| format!("{order}|{payment}"),
            JoinWindows::of_time_difference_with_no_grace(JOIN_WINDOW),
        )
        .to(output, Produced::with(StringSerde, StringSerde));
    builder.build().expect("the join topology is valid")
}

fn main() -> Result<()> {
    let topology = topology(
        &required("ORDERS_TOPIC")?,
        &required("PAYMENTS_TOPIC")?,
        &required("OUTPUT_TOPIC")?,
    );
    streams_examples::run(topology, streams_examples::config_from_env()?)
}
