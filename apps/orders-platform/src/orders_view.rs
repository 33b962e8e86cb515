//! The orders service's view: `orders-store`, a table over `orders.v1` (the latest
//! event of each order), queried through interactive queries. Every update is handed
//! to `on_update` after the store has it, so that waiting readers are woken without a
//! lost update (see the orders service's waiters).

use streams_core::serde::StringSerde;
use streams_core::{Consumed, Materialized, StreamsBuilder, Topology};

use crate::records::Order;
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

/// The store of the latest event of each order, by order id.
pub const ORDERS_STORE: &str = "orders-store";

/// The table of orders, calling `on_update` with every new event of an order.
pub fn topology(
    serdes: &PlatformSerdes,
    topics: &PlatformTopics,
    on_update: impl Fn(&str, &Order) + Send + Sync + 'static,
) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .table(
            &topics.orders,
            Consumed::with(StringSerde, serdes.order.clone()),
            // No record cache: a reader waits for each event, not for the next commit.
            Materialized::as_store(ORDERS_STORE).with_caching(false),
        )
        .to_stream()
        .foreach(move |id: &String, order: &Option<Order>| {
            if let Some(order) = order {
                on_update(id, order);
            }
        });
    builder.build().expect("orders view topology")
}
