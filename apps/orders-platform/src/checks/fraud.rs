//! The fraud check: per customer, the running total of `quantity * price` over CREATED
//! orders in a session with a 1-hour inactivity gap, the current order included. A total
//! of 2000 or more fails the order, anything less passes it; once a session is over the
//! limit every later order in it fails; after more than an hour without orders a new
//! session starts from zero. Every CREATED order gets exactly one FRAUD_CHECK result.
//!
//! Design choice: a processor with a session store, not the DSL's session aggregate.
//!
//! The DSL route (`windowed_by_session(..).aggregate(..)` carrying the latest order in
//! an `OrderValue`, then re-keying the updates by order id) gives one update per
//! accepted order only with the store's record cache off, and like Kafka
//! Streams it keeps sessions open until the stream time it has observed passes their end
//! plus the gap, so small reorderings across customers are absorbed
//! (`the_dsl_session_aggregate_keeps_slightly_out_of_order_orders`). But an order later
//! than that is dropped and never gets a result, so it never leaves CREATED; and with a
//! record cache in front of the store, updates between commits are merged away.
//!
//! The processor below merges sessions exactly as the session aggregate does (sessions
//! of the customer within one gap of the order, inclusive) and always emits one result
//! per CREATED order. "No grace" is kept in the sense that sessions are not held open
//! longer: the store keeps sessions only as long as an order may still join them.

use std::time::Duration;

use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::serde::{F64Serde, I64Serde, StringSerde};
use streams_core::state::{Stores, Windowed};
use streams_core::{Consumed, Produced, Record, Repartitioned, StreamsBuilder, Topology};

use crate::records::{
    Order, OrderState, OrderValidation, OrderValidationResult, OrderValidationType,
};
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

use OrderValidationResult::{Fail, Pass};

/// A session total at or above this fails the order.
pub const FRAUD_LIMIT: f64 = 2000.0;
/// The inactivity gap of a customer's session, in ms.
pub const SESSION_GAP_MS: i64 = 60 * 60 * 1000;
/// The store of session totals per customer.
pub const FRAUD_SESSIONS: &str = "fraud-sessions";

/// The service core: orders in, one FRAUD_CHECK per CREATED order out.
pub fn topology(serdes: &PlatformSerdes, topics: &PlatformTopics) -> Topology {
    let builder = StreamsBuilder::new();
    // An order may join a session ending up to one gap before it, and stream time may
    // be up to one gap past that order: keep sessions two gaps after their end.
    builder.add_state_store(Stores::session(
        FRAUD_SESSIONS,
        I64Serde,
        F64Serde,
        Duration::from_millis(2 * SESSION_GAP_MS as u64 + 1),
    ));
    builder
        .stream(
            &topics.orders,
            Consumed::with(StringSerde, serdes.order.clone()),
        )
        .filter(|_, order| order.state == OrderState::Created)
        .select_key(|_, order| order.customer_id)
        .repartition(
            Repartitioned::with(I64Serde, serdes.order.clone()).with_name("orders-by-customer"),
        )
        .process_with_stores(|| SessionTotals, &[FRAUD_SESSIONS])
        .to(
            &topics.order_validations,
            Produced::with(StringSerde, serdes.validation.clone()),
        );
    builder.build().expect("fraud topology")
}

/// Adds each order to its customer's session (merging the sessions it bridges) and
/// judges the order by the session total; keyed by customer in, by order id out.
struct SessionTotals;

impl Processor<i64, Order, String, OrderValidation> for SessionTotals {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, OrderValidation>,
        record: Record<i64, Order>,
    ) -> Result<(), ProcessError> {
        let sessions = ctx.session_store::<i64, f64>(FRAUD_SESSIONS)?;
        let ts = record.timestamp;
        let nearby = sessions.find_sessions(
            &record.key,
            ts.saturating_sub(SESSION_GAP_MS),
            ts.saturating_add(SESSION_GAP_MS),
        )?;
        let mut merged = Windowed::new(record.key, ts, ts);
        let mut total = record.value.value();
        for (session, session_total) in &nearby {
            merged.window.start = merged.window.start.min(session.window.start);
            merged.window.end = merged.window.end.max(session.window.end);
            total += session_total;
        }
        for (session, _) in nearby {
            if session.window != merged.window {
                sessions.remove(&session)?;
            }
        }
        sessions.put(&merged, &total)?;
        let result = if total >= FRAUD_LIMIT { Fail } else { Pass };
        let order = record.value;
        let validation = OrderValidation::new(&order.id, OrderValidationType::FraudCheck, result);
        ctx.forward(Record::new(order.id, validation, ts).with_headers(record.headers))
    }
}
