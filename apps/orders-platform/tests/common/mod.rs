//! What the topology tests share: JSON serdes of the records (the driver runs without a
//! registry) and compact views of validation results.
#![allow(dead_code)]

use orders_platform::records::{Order, OrderValidation, OrderValidationResult};
use streams_core::serde::JsonSerde;

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
