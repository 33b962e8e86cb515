//! The order-enrichment service: the topology of [`orders_platform::enrichment`]
//! (every order event with its customer on `orders-enriched.v1`, orders counted per
//! customer in 30-second windows) and the fraud report over those counts
//! ([`report`]), served on port 8010.

#![warn(missing_docs)]

pub mod report;

use anyhow::Result;
use orders_platform::enrichment;
use orders_platform::schemas::avsc;
use service_kit::{ServiceContext, ServiceSpec};

/// The service: its name (application id), port and topics.
pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "order-enrichment",
        http_port: 8010,
        topics: |t| {
            vec![
                t.orders.clone(),
                t.customers.clone(),
                t.orders_enriched.clone(),
            ]
        },
        writes: |t| vec![(t.orders_enriched.clone(), avsc::ENRICHED_ORDER)],
        serves_queries: true,
    }
}

/// Runs the service until SIGTERM or Ctrl-C.
pub fn run() -> Result<()> {
    service_kit::run_service(
        spec(),
        |serdes, topics, _| enrichment::topology(serdes, topics),
        |context: ServiceContext| Ok(report::routes(context.streams.router())),
    )
}
