//! The order platform's records and topics, as the business-rule tests use them.
//!
//! Field and enum names follow the platform reference: structs serialize with camelCase
//! fields, enums with their upper-case names, so an order reads as on the REST API:
//! `{"id":"1","customerId":2,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1.0}`.
//! The tests use `JsonSerde`; the services will carry the same records as Avro.

use serde::{Deserialize, Serialize};
use streams_core::serde::JsonSerde;

/// Orders, keyed by order id: written by the orders service (CREATED) and by the
/// validations aggregator (VALIDATED, FAILED).
pub const ORDERS: &str = "orders.v1";
/// Results of the inventory, fraud and order-details checks, keyed by order id.
pub const ORDER_VALIDATIONS: &str = "order-validations.v1";
/// Absolute stock level per product: product name (UTF-8) → 4-byte big-endian int.
pub const WAREHOUSE_INVENTORY: &str = "warehouse-inventory.v1";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderState {
    Created,
    Validated,
    Failed,
    Shipped,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Product {
    Jumpers,
    Underpants,
    Stockings,
}

impl Product {
    /// The name the product has on the wire, also the key of `warehouse-inventory.v1`.
    pub fn name(self) -> &'static str {
        match self {
            Product::Jumpers => "JUMPERS",
            Product::Underpants => "UNDERPANTS",
            Product::Stockings => "STOCKINGS",
        }
    }
}

/// An order. `product` is optional because the order-details check must fail an order
/// without one (a JSON order may lack the field; the Avro schema will not allow it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub customer_id: i64,
    pub state: OrderState,
    pub product: Option<Product>,
    pub quantity: i32,
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
            product: Some(product),
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

/// The fraud check's session aggregate in the original services: the latest order of
/// the session and the session's total value. `order` is empty in a fresh aggregate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderValue {
    pub order: Option<Order>,
    pub value: f64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
// The names are the platform's enum symbols.
#[allow(clippy::enum_variant_names)]
pub enum OrderValidationType {
    InventoryCheck,
    FraudCheck,
    OrderDetailsCheck,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderValidationResult {
    Pass,
    Fail,
    Error,
}

/// One check's verdict on one order, keyed by the order id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderValidation {
    pub order_id: String,
    pub check_type: OrderValidationType,
    pub validation_result: OrderValidationResult,
}

impl OrderValidation {
    pub fn new(
        order_id: &str,
        check_type: OrderValidationType,
        validation_result: OrderValidationResult,
    ) -> Self {
        OrderValidation {
            order_id: order_id.to_string(),
            check_type,
            validation_result,
        }
    }
}

pub fn order_serde() -> JsonSerde<Order> {
    JsonSerde::new()
}

pub fn validation_serde() -> JsonSerde<OrderValidation> {
    JsonSerde::new()
}

/// `(order id, result)` pairs of validation records, for compact assertions.
pub fn results(records: Vec<(String, OrderValidation)>) -> Vec<(String, OrderValidationResult)> {
    records
        .into_iter()
        .map(|(key, v)| {
            assert_eq!(key, v.order_id, "validations are keyed by order id");
            (key, v.validation_result)
        })
        .collect()
}
