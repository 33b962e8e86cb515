//! The inventory check: joins CREATED orders of `orders.v1` with the stock levels of
//! `warehouse-inventory.v1`, reserves stock in `store-of-reserved-stock` and writes one
//! `INVENTORY_CHECK` per order of a stocked product to `order-validations.v1`.
//! Configuration: see `service_kit::ServiceConfig`; `/health` and `/metrics` on port
//! 8002 by default.

use orders_platform::checks::inventory;
use orders_platform::schemas::avsc;
use service_kit::{run_topology_service, ServiceSpec};

fn main() -> anyhow::Result<()> {
    let spec = ServiceSpec {
        name: "inventory-service",
        http_port: 8002,
        topics: |t| {
            vec![
                t.orders.clone(),
                t.order_validations.clone(),
                t.warehouse_inventory.clone(),
            ]
        },
        writes: |t| vec![(t.order_validations.clone(), avsc::ORDER_VALIDATION)],
        serves_queries: false,
    };
    run_topology_service(spec, |serdes, topics, _| {
        inventory::topology(serdes, topics)
    })
}
