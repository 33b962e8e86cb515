//! The order platform as library code: its records and their Avro schemas, its topics,
//! and the topology of each service, so that one topology runs on the test driver, in a
//! broker test and in its service binary alike.
//!
//! The rules are those of `shared/reference/orders-platform.md`:
//!
//! * [`checks::order_details`], [`checks::inventory`] and [`checks::fraud`] each write
//!   one `OrderValidation` per CREATED order of `orders.v1` to `order-validations.v1`;
//! * [`validations_aggregator`] writes each order's final state (VALIDATED or FAILED)
//!   back to `orders.v1`;
//! * [`orders_view`] is the orders service's table of the latest event per order;
//! * [`email`] joins orders, payments and customers into emails and routes orders to
//!   the topic of their customer's level;
//! * [`enrichment`] writes `orders-enriched.v1` and counts orders per customer for the
//!   fraud report.
//!
//! ```
//! use orders_platform::checks::order_details;
//! use orders_platform::serdes::PlatformSerdes;
//! use orders_platform::topics::PlatformTopics;
//!
//! // JSON serdes for the test driver; services use `PlatformSerdes::avro(registry)`.
//! let topology = order_details::topology(&PlatformSerdes::json(), &PlatformTopics::default());
//! assert!(topology.describe().to_string().contains("orders.v1"));
//! ```

#![warn(missing_docs)]

pub mod checks;
pub mod email;
pub mod enrichment;
pub mod orders_view;
pub mod records;
pub mod schemas;
pub mod serdes;
pub mod topics;
pub mod validations_aggregator;
