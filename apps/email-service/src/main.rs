//! The email service: emails for orders with their payment and customer, one
//! structured log line each (target `email`), and order events routed to the
//! `platinum` / `gold` / `silver` / `bronze` topics by customer level.
//! Configuration: see `service_kit::ServiceConfig`; `/health` and `/metrics` on port
//! 8005 by default.

use std::sync::Arc;

use orders_platform::email::{self, LoggingEmailer};
use orders_platform::schemas::avsc;
use service_kit::{run_topology_service, ServiceSpec};

fn main() -> anyhow::Result<()> {
    let spec = ServiceSpec {
        name: "email-service",
        http_port: 8005,
        topics: |t| {
            let mut topics = vec![t.orders.clone(), t.payments.clone(), t.customers.clone()];
            topics.extend(t.customer_levels.iter().cloned());
            topics
        },
        writes: |t| {
            t.customer_levels
                .iter()
                .map(|level| (level.clone(), avsc::ORDER_ENRICHED))
                .collect()
        },
        serves_queries: false,
    };
    run_topology_service(spec, |serdes, topics, _| {
        email::topology(serdes, topics, Arc::new(LoggingEmailer))
    })
}
