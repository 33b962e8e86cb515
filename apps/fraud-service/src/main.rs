//! The fraud check: per customer, the total value of CREATED orders in a session with
//! a 1-hour gap; writes one `FRAUD_CHECK` per order to `order-validations.v1` (FAIL at
//! 2000 or more). Configuration: see `service_kit::ServiceConfig`; `/health` and
//! `/metrics` on port 8003 by default.

use orders_platform::checks::fraud;
use orders_platform::schemas::avsc;
use service_kit::{run_topology_service, ServiceSpec};

fn main() -> anyhow::Result<()> {
    let spec = ServiceSpec {
        name: "fraud-service",
        http_port: 8003,
        topics: |t| vec![t.orders.clone(), t.order_validations.clone()],
        writes: |t| vec![(t.order_validations.clone(), avsc::ORDER_VALIDATION)],
        serves_queries: false,
    };
    run_topology_service(spec, |serdes, topics, _| fraud::topology(serdes, topics))
}
