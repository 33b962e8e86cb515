//! The platform's topics (see `shared/reference/orders-platform.md`, "Topics").

/// Orders, keyed by order id: written by the orders service (CREATED) and by the
/// validations aggregator (VALIDATED, FAILED).
pub const ORDERS: &str = "orders.v1";
/// Results of the inventory, fraud and order-details checks, keyed by order id.
pub const ORDER_VALIDATIONS: &str = "order-validations.v1";
/// Absolute stock level per product: product name (UTF-8) → 4-byte big-endian int.
pub const WAREHOUSE_INVENTORY: &str = "warehouse-inventory.v1";
/// Payments, keyed by payment id.
pub const PAYMENTS: &str = "payments.v1";
/// Customers, keyed by id as an 8-byte big-endian long.
pub const CUSTOMERS: &str = "customers";
/// Orders with their customer's columns, keyed by order id.
pub const ORDERS_ENRICHED: &str = "orders-enriched.v1";
/// `OrderEnriched` records, one topic per customer level.
pub const CUSTOMER_LEVELS: [&str; 4] = ["platinum", "gold", "silver", "bronze"];
