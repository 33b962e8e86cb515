//! The validations aggregator: reads `order-validations.v1` and the CREATED orders of
//! `orders.v1`, writes VALIDATED (three PASS results) or FAILED (any FAIL) back to
//! `orders.v1`. Configuration: see `service_kit::ServiceConfig`; `/health` and
//! `/metrics` on port 8004 by default.

use orders_platform::schemas::avsc;
use orders_platform::validations_aggregator;
use service_kit::{run_topology_service, ServiceSpec};

fn main() -> anyhow::Result<()> {
    let spec = ServiceSpec {
        name: "validations-aggregator",
        http_port: 8004,
        topics: |t| vec![t.orders.clone(), t.order_validations.clone()],
        writes: |t| vec![(t.orders.clone(), avsc::ORDER)],
        serves_queries: false,
    };
    run_topology_service(spec, |serdes, topics, config| {
        validations_aggregator::topology(serdes, topics, Some(config.partitions))
    })
}
