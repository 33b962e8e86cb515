//! The inventory check: CREATED orders are re-keyed by product and inner-joined with the
//! warehouse-inventory table, whose value is the product's absolute stock level (a new
//! row replaces the old one, it is not added to it). The store `store-of-reserved-stock`
//! (product → reserved count, 8-byte longs, changelog-backed) holds reservations: an
//! order passes when `stock - reserved - quantity >= 0` and then reserves its quantity;
//! otherwise it fails and reserves nothing. An order for a product without a stock row
//! gets no result. Results are keyed by order id.

use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::serde::{I32Serde, I64Serde, StringSerde};
use streams_core::state::Stores;
use streams_core::{
    Consumed, Materialized, Produced, Record, Repartitioned, StreamsBuilder, Topology,
};

use crate::records::{
    Order, OrderState, OrderValidation, OrderValidationResult, OrderValidationType,
};
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

use OrderValidationResult::{Fail, Pass};

/// The store of reservations: product name → reserved count.
pub const RESERVED_STOCK: &str = "store-of-reserved-stock";

/// The service core: orders and stock levels in, one INVENTORY_CHECK per CREATED order
/// of a stocked product out.
pub fn topology(serdes: &PlatformSerdes, topics: &PlatformTopics) -> Topology {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value(RESERVED_STOCK, StringSerde, I64Serde));
    let stock = builder.table(
        &topics.warehouse_inventory,
        Consumed::with(StringSerde, I32Serde),
        Materialized::as_store("warehouse-stock"),
    );
    builder
        .stream(
            &topics.orders,
            Consumed::with(StringSerde, serdes.order.clone()),
        )
        .filter(|_, order| order.state == OrderState::Created)
        .select_key(|_, order: &Order| order.product.name().to_string())
        .repartition(
            Repartitioned::with(StringSerde, serdes.order.clone()).with_name("orders-by-product"),
        )
        .join(&stock, |order, stock| (order.clone(), *stock))
        .process_with_stores(|| ReserveStock, &[RESERVED_STOCK])
        .to(
            &topics.order_validations,
            Produced::with(StringSerde, serdes.validation.clone()),
        );
    builder.build().expect("inventory topology")
}

/// Decides one order against its product's stock and the reservations so far, keyed by
/// product on the way in and by order id on the way out.
struct ReserveStock;

impl Processor<String, (Order, i32), String, OrderValidation> for ReserveStock {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, OrderValidation>,
        record: Record<String, (Order, i32)>,
    ) -> Result<(), ProcessError> {
        let reservations = ctx.key_value_store::<String, i64>(RESERVED_STOCK)?;
        let (order, stock) = record.value.clone();
        let reserved = reservations.get(&record.key)?.unwrap_or(0);
        let quantity = i64::from(order.quantity);
        let result = if i64::from(stock) - reserved - quantity >= 0 {
            // Reservations never decrease: a negative quantity (which the order-details
            // check fails) reserves nothing.
            if quantity > 0 {
                reservations.put(&record.key, &(reserved + quantity))?;
            }
            Pass
        } else {
            Fail
        };
        let validation =
            OrderValidation::new(&order.id, OrderValidationType::InventoryCheck, result);
        ctx.forward(record.with_key(order.id).with_value(validation))
    }
}
