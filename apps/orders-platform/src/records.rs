//! The platform's records, as `schemas/avro/*.avsc` declare them (namespace
//! `io.streams.orders`). Structs serialize with camelCase fields and enums with their
//! upper-case symbols, so the same types carry the Avro values on the topics and the
//! JSON of the REST API: `{"id":"1","customerId":2,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1.0}`.
//! `schemas.rs` proves each type and its schema agree.

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderState {
    /// Posted, not validated yet.
    Created,
    /// Every check passed.
    Validated,
    /// A check failed.
    Failed,
    /// Shipped (no service of the platform sets it).
    Shipped,
}

/// What can be ordered.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Product {
    /// Jumpers.
    Jumpers,
    /// Underpants.
    Underpants,
    /// Stockings (never stocked by the populator).
    Stockings,
}

impl Product {
    /// Every product.
    pub const ALL: [Product; 3] = [Product::Jumpers, Product::Underpants, Product::Stockings];

    /// The product's symbol, also its key on `warehouse-inventory.v1`.
    pub fn name(self) -> &'static str {
        match self {
            Product::Jumpers => "JUMPERS",
            Product::Underpants => "UNDERPANTS",
            Product::Stockings => "STOCKINGS",
        }
    }
}

/// An order: the value of `orders.v1`, keyed by its id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order id (the record key).
    pub id: String,
    /// The customer (key of `customers`).
    pub customer_id: i64,
    /// Where the order is.
    pub state: OrderState,
    /// What is ordered.
    pub product: Product,
    /// How many.
    pub quantity: i32,
    /// Price of one.
    pub price: f64,
}

impl Order {
    /// A new (CREATED) order.
    pub fn created(
        id: &str,
        customer_id: i64,
        product: Product,
        quantity: i32,
        price: f64,
    ) -> Self {
        Order {
            id: id.to_string(),
            customer_id,
            state: OrderState::Created,
            product,
            quantity,
            price,
        }
    }

    /// This order in another state.
    pub fn in_state(&self, state: OrderState) -> Self {
        Order {
            state,
            ..self.clone()
        }
    }

    /// What the order is worth: quantity times price.
    pub fn value(&self) -> f64 {
        f64::from(self.quantity) * self.price
    }
}

/// The fraud check's session aggregate in the original services: the latest order of a
/// customer's session and the session's total value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderValue {
    /// The latest order of the session.
    pub order: Order,
    /// The session's total value.
    pub value: f64,
}

/// Which check a validation comes from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
// The names are the platform's enum symbols.
#[allow(clippy::enum_variant_names)]
pub enum OrderValidationType {
    /// The inventory check.
    InventoryCheck,
    /// The fraud check.
    FraudCheck,
    /// The order-details check.
    OrderDetailsCheck,
}

/// A check's verdict.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderValidationResult {
    /// The order passes the check.
    Pass,
    /// The order fails it.
    Fail,
    /// The check could not decide (ignored by the aggregator).
    Error,
}

/// One check's verdict on one order: the value of `order-validations.v1`, keyed by the
/// order id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderValidation {
    /// The order checked.
    pub order_id: String,
    /// The check.
    pub check_type: OrderValidationType,
    /// Its verdict.
    pub validation_result: OrderValidationResult,
}

impl OrderValidation {
    /// The verdict `result` of check `check_type` on order `order_id`.
    pub fn new(
        order_id: &str,
        check_type: OrderValidationType,
        result: OrderValidationResult,
    ) -> Self {
        OrderValidation {
            order_id: order_id.to_string(),
            check_type,
            validation_result: result,
        }
    }
}

/// A payment for an order: the value of `payments.v1`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// The payment id (the record key; the populator uses one for all payments).
    pub id: String,
    /// The order paid.
    pub order_id: String,
    /// Currency code.
    pub ccy: String,
    /// Amount.
    pub amount: f64,
}

/// A customer: the value of `customers`, keyed by its id (8-byte big-endian long).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// The customer id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// E-mail address.
    pub email: String,
    /// Postal address.
    pub address: String,
    /// `platinum`, `gold`, `silver` or `bronze` (the default).
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "bronze".to_string()
}

/// An order with its customer's level: the value of the `platinum`, `gold`, `silver`
/// and `bronze` topics.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderEnriched {
    /// The order id.
    pub id: String,
    /// The customer.
    pub customer_id: i64,
    /// The customer's level.
    pub customer_level: String,
}

/// An order event left-joined with its customer: the value of `orders-enriched.v1`,
/// keyed by the order id. The customer columns are `None` when no customer row exists.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnrichedOrder {
    /// The order id.
    pub id: String,
    /// The customer.
    pub customer_id: i64,
    /// The customer's first name.
    pub first_name: Option<String>,
    /// The customer's last name.
    pub last_name: Option<String>,
    /// The customer's level.
    pub level: Option<String>,
    /// The order's state in this event.
    pub state: OrderState,
    /// What is ordered.
    pub product: Product,
    /// How many.
    pub quantity: i32,
    /// Price of one.
    pub price: f64,
}

impl EnrichedOrder {
    /// `order` with the columns of `customer`, if there is one.
    pub fn new(order: &Order, customer: Option<&Customer>) -> Self {
        EnrichedOrder {
            id: order.id.clone(),
            customer_id: order.customer_id,
            first_name: customer.map(|c| c.first_name.clone()),
            last_name: customer.map(|c| c.last_name.clone()),
            level: customer.map(|c| c.level.clone()),
            state: order.state,
            product: order.product,
            quantity: order.quantity,
            price: order.price,
        }
    }
}
