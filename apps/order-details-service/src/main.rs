//! The order-details check: reads `orders.v1`, writes one `ORDER_DETAILS_CHECK` per
//! CREATED order to `order-validations.v1` (FAIL on a negative quantity or price).
//! Configuration: see `service_kit::ServiceConfig`; `/health` and `/metrics` on port
//! 8001 by default.

use orders_platform::checks::order_details;
use orders_platform::schemas::avsc;
use service_kit::{run_topology_service, ServiceSpec};

fn main() -> anyhow::Result<()> {
    let spec = ServiceSpec {
        name: "order-details-service",
        http_port: 8001,
        topics: |t| vec![t.orders.clone(), t.order_validations.clone()],
        writes: |t| vec![(t.order_validations.clone(), avsc::ORDER_VALIDATION)],
        serves_queries: false,
    };
    run_topology_service(spec, |serdes, topics, _| {
        order_details::topology(serdes, topics)
    })
}
