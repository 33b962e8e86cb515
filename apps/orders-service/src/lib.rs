//! The orders service: the REST front of the order platform (port 8000). Orders are
//! written to `orders.v1`; reads come from `orders-store`, a table over that topic
//! spread over the instances by partition, found through interactive queries, so any
//! instance reads its own writes.
//!
//! * [`api`]: the HTTP contract of `shared/reference/orders-platform.md`;
//! * [`order_body`]: reading posted orders, with errors naming the field;
//! * [`waiters`]: long-polling readers woken by the view.

#![warn(missing_docs)]

pub mod api;
pub mod order_body;
pub mod waiters;

use std::sync::Arc;

use anyhow::{Context, Result};
use orders_platform::orders_view;
use orders_platform::schemas::avsc;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use service_kit::{ServiceConfig, ServiceContext, ServiceSpec};

use crate::api::OrdersApi;
use crate::waiters::Waiters;

/// The service: its name (application id), port and topics.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "orders-service",
        http_port: 8000,
        topics: |t| vec![t.orders.clone()],
        writes: |t| vec![(t.orders.clone(), avsc::ORDER)],
        serves_queries: true,
    }
}

/// The producer of posted orders: acknowledged by all replicas, idempotent,
/// partitioned as Java clients do.
pub fn producer(config: &ServiceConfig) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "1")
        .create()
        .context("creating the orders producer")
}

/// Runs the service until SIGTERM or Ctrl-C.
pub fn run() -> Result<()> {
    let waiters = Arc::new(Waiters::default());
    let notify = waiters.clone();
    service_kit::run_service(
        spec(),
        move |serdes, topics, _| {
            orders_view::topology(serdes, topics, move |id, order| notify.notify(id, order))
        },
        move |context: ServiceContext| {
            let api = OrdersApi {
                router: context.streams.router(),
                producer: producer(&context.config)?,
                streams: context.streams,
                serdes: context.serdes,
                topics: context.topics,
                waiters,
            };
            Ok(api::routes(api))
        },
    )
}
