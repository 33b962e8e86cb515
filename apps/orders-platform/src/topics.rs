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

/// The names of the platform's topics as one value: the reference names by default, or
/// with a prefix (tests on a shared broker, several platforms on one cluster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformTopics {
    /// `orders.v1`.
    pub orders: String,
    /// `order-validations.v1`.
    pub order_validations: String,
    /// `warehouse-inventory.v1`.
    pub warehouse_inventory: String,
    /// `payments.v1`.
    pub payments: String,
    /// `customers`.
    pub customers: String,
    /// `orders-enriched.v1`.
    pub orders_enriched: String,
    /// `platinum`, `gold`, `silver` and `bronze`, in [`CUSTOMER_LEVELS`]' order.
    pub customer_levels: [String; 4],
}

impl Default for PlatformTopics {
    fn default() -> Self {
        PlatformTopics::with_prefix("")
    }
}

impl PlatformTopics {
    /// The reference names behind `prefix`.
    pub fn with_prefix(prefix: &str) -> Self {
        let name = |topic: &str| format!("{prefix}{topic}");
        PlatformTopics {
            orders: name(ORDERS),
            order_validations: name(ORDER_VALIDATIONS),
            warehouse_inventory: name(WAREHOUSE_INVENTORY),
            payments: name(PAYMENTS),
            customers: name(CUSTOMERS),
            orders_enriched: name(ORDERS_ENRICHED),
            customer_levels: CUSTOMER_LEVELS.map(name),
        }
    }

    /// The topic of customers at `level`, compared ignoring case. A level outside the
    /// four goes to `bronze`, the schema's default level.
    pub fn customer_level(&self, level: &str) -> &str {
        let index = CUSTOMER_LEVELS
            .iter()
            .position(|known| known.eq_ignore_ascii_case(level.trim()))
            .unwrap_or(CUSTOMER_LEVELS.len() - 1);
        &self.customer_levels[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_levels_have_their_topics_behind_the_prefix() {
        let topics = PlatformTopics::with_prefix("t-");
        assert_eq!(topics.customer_level("gold"), "t-gold");
        assert_eq!(topics.customer_level("Platinum"), "t-platinum");
        assert_eq!(topics.customer_level("unheard-of"), "t-bronze");
    }
}
