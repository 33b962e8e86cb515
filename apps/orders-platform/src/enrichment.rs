//! Order enrichment and the fraud report (ksqlDB statements in the originals):
//!
//! - every order event, left-joined with its customer (a global table over
//!   `customers`), becomes an [`EnrichedOrder`] on `orders-enriched.v1`;
//! - orders are counted per (customer id, last name, first name) in 30-second tumbling
//!   windows of event time, in the window store [`FRAUD_COUNTS`]; a window holding more
//!   than [`FRAUD_ALERT_ABOVE`] orders is a fraud alert ([`FraudAlert`], served by the
//!   order-enrichment service through interactive queries).
//!
//! Choices where the originals are loose: only CREATED events are counted, so an order
//! counts once however many states it goes through (counting every event, as the ksqlDB
//! query did, turned two validated orders into an alert of four); orders without a
//! customer row are not counted (ksqlDB drops rows whose GROUP BY columns are null).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use streams_core::dsl::TimeWindows;
use streams_core::serde::{I64Serde, JsonSerde, StringSerde};
use streams_core::state::Windowed;
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};

use crate::records::{Customer, EnrichedOrder, Order, OrderState};
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

/// The window of the fraud count.
pub const FRAUD_WINDOW: Duration = Duration::from_secs(30);
/// A window with more orders than this is an alert.
pub const FRAUD_ALERT_ABOVE: i64 = 2;
/// How long windows stay in the report. The store's default (as in Kafka Streams) is
/// the window size plus its grace, which would keep only the current window.
pub const FRAUD_REPORT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// The window store of order counts per customer and window.
pub const FRAUD_COUNTS: &str = "fraud-order-counts";
/// The enrichment's copy of the `customers` table.
pub const CUSTOMERS_STORE: &str = "enrichment-customers";

/// Who is counted: the fraud count's grouping key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct CustomerKey {
    /// The customer.
    pub customer_id: i64,
    /// Their last name.
    pub last_name: String,
    /// Their first name.
    pub first_name: String,
}

/// One alert of the fraud report: a customer with more than [`FRAUD_ALERT_ABOVE`]
/// orders in one window. Window bounds are ms since the epoch; the HTTP report writes
/// them as RFC 3339 times.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FraudAlert {
    /// The customer.
    pub customer_id: i64,
    /// Their last name.
    pub last_name: String,
    /// Their first name.
    pub first_name: String,
    /// Orders in the window.
    pub counts: i64,
    /// Start of the window (inclusive), ms since the epoch.
    pub window_start: i64,
    /// End of the window (exclusive), ms since the epoch.
    pub window_end: i64,
}

/// The serde of the fraud count's keys (shared by the topology and its queries).
pub fn customer_key_serde() -> JsonSerde<CustomerKey> {
    JsonSerde::new()
}

/// The service core: orders and customers in; enriched orders out, fraud counts in
/// the queryable window store [`FRAUD_COUNTS`].
pub fn topology(serdes: &PlatformSerdes, topics: &PlatformTopics) -> Topology {
    let builder = StreamsBuilder::new();
    let customers = builder.global_table(
        &topics.customers,
        Consumed::with(I64Serde, serdes.customer.clone()),
        Materialized::as_store(CUSTOMERS_STORE),
    );
    let enriched = builder
        .stream(
            &topics.orders,
            Consumed::with(StringSerde, serdes.order.clone()),
        )
        .left_join_global(
            &customers,
            |_, order: &Order| order.customer_id,
            |order: &Order, customer: Option<&Customer>| EnrichedOrder::new(order, customer),
        );
    enriched.to(
        &topics.orders_enriched,
        Produced::with(StringSerde, serdes.enriched_order.clone()),
    );
    enriched
        .flat_map(|id: String, order: EnrichedOrder| {
            let key = match (order.state, order.last_name, order.first_name) {
                (OrderState::Created, Some(last_name), Some(first_name)) => Some(CustomerKey {
                    customer_id: order.customer_id,
                    last_name,
                    first_name,
                }),
                _ => None,
            };
            key.map(|key| (key, id))
        })
        .group_by_key(
            Grouped::with(customer_key_serde(), StringSerde).with_name("orders-by-customer"),
        )
        .windowed_by(TimeWindows::of_size_with_no_grace(FRAUD_WINDOW))
        .count(Materialized::as_store(FRAUD_COUNTS).with_retention(FRAUD_REPORT_RETENTION));
    builder.build().expect("enrichment topology")
}

/// The alerts among `counts` (windowed counts from every instance), newest windows
/// first (then the highest count, then the customer), at most `limit`.
pub fn fraud_alerts(counts: Vec<(Windowed<CustomerKey>, i64)>, limit: usize) -> Vec<FraudAlert> {
    let mut alerts: Vec<FraudAlert> = counts
        .into_iter()
        .filter(|(_, count)| *count > FRAUD_ALERT_ABOVE)
        .map(|(window, counts)| FraudAlert {
            customer_id: window.key.customer_id,
            last_name: window.key.last_name,
            first_name: window.key.first_name,
            counts,
            window_start: window.window.start,
            window_end: window.window.end,
        })
        .collect();
    alerts.sort_by(|a, b| {
        b.window_start
            .cmp(&a.window_start)
            .then(b.counts.cmp(&a.counts))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    alerts.truncate(limit);
    alerts
}
