//! The order-details check: every CREATED order gets one ORDER_DETAILS_CHECK result,
//! FAIL when the quantity or the price is negative, PASS
//! otherwise (zero passes). Orders in other states are not validated.
//!
//! Restart behaviour (committed offsets: no second result for an order checked before a
//! restart) comes from the runtime.

use streams_core::serde::StringSerde;
use streams_core::{Consumed, Produced, StreamsBuilder, Topology};

use crate::records::{
    Order, OrderState, OrderValidation, OrderValidationResult, OrderValidationType,
};
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

use OrderValidationResult::{Fail, Pass};

/// The service core: orders in, one validation per CREATED order out.
pub fn topology(serdes: &PlatformSerdes, topics: &PlatformTopics) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            &topics.orders,
            Consumed::with(StringSerde, serdes.order.clone()),
        )
        .filter(|_, order| order.state == OrderState::Created)
        .map_values(|order| {
            let result = if order_details_valid(&order) {
                Pass
            } else {
                Fail
            };
            OrderValidation::new(&order.id, OrderValidationType::OrderDetailsCheck, result)
        })
        .to(
            &topics.order_validations,
            Produced::with(StringSerde, serdes.validation.clone()),
        );
    builder.build().expect("order details topology")
}

/// Whether an order's details are valid: no negative quantity or price (zero passes).
/// The product cannot be missing: the `Order` schema requires one, and the orders
/// service refuses an order without it.
pub fn order_details_valid(order: &Order) -> bool {
    order.quantity >= 0 && order.price >= 0.0
}
