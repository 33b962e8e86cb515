//! The validations aggregator: writes each order's final state back to `orders.v1`.
//!
//! - VALIDATED when the PASS results for an order within a session of 5-minute
//!   inactivity reach 3 (any check types), joined with the order's CREATED record
//!   within ±5 minutes.
//! - FAILED when any FAIL result joins the CREATED record within ±5 minutes; several
//!   FAILs for one order give one FAILED record.
//! - ERROR results are ignored; one FAIL and two PASSes end FAILED only.
//!
//! Both paths use inner stream-stream joins (`join_stream`), which emit each matching
//! pair once, whichever side arrives first; left and outer joins would emit unmatched
//! records eagerly. The original services deduplicated FAILs with a cached `reduce`,
//! which merges only the updates between two commits (a FAIL arriving after a commit
//! is forwarded again); here the first FAILED per order is kept explicitly in a store. The PASS sessions get a grace of one gap: the three checks answer at
//! different speeds, so an order's last PASS often arrives after later orders'
//! results have moved the task's stream time on; with no grace it would be dropped and
//! the order would never be VALIDATED.

use std::time::Duration;

use streams_core::dsl::{JoinWindows, SessionWindows};
use streams_core::processor::{FixedKeyContext, FixedKeyProcessor, FixedKeyRecord, ProcessError};
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::state::{Stores, Windowed};
use streams_core::{
    Consumed, Grouped, Materialized, Produced, Repartitioned, StreamsBuilder, Topology,
};

use crate::records::{Order, OrderState, OrderValidationResult};
use crate::serdes::PlatformSerdes;
use crate::topics::PlatformTopics;

use OrderValidationResult::{Fail, Pass};

/// PASS results that validate an order.
pub const CHECKS: i64 = 3;
/// The session gap of PASS results and the join window with the CREATED order.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// The store of orders already failed (one FAILED record each).
pub const FAILED_ORDERS: &str = "failed-orders";

/// The service core: orders and validation results in, final order states out (to the
/// orders topic, which it also reads).
///
/// `partitions` is the partition count of both (co-partitioned) topics, given to the
/// internal topic of fully passed orders. With `None` the library should derive it from
/// the source topics, but cannot: the sub-topology writing that topic also reads it
/// (see `the_internal_topic_count_is_derived_from_the_source_topics`).
pub fn topology(
    serdes: &PlatformSerdes,
    topics: &PlatformTopics,
    partitions: Option<i32>,
) -> Topology {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value(FAILED_ORDERS, StringSerde, I64Serde));
    let created = builder
        .stream(
            &topics.orders,
            Consumed::with(StringSerde, serdes.order.clone()),
        )
        .filter(|_, order| order.state == OrderState::Created);
    let validations = builder.stream(
        &topics.order_validations,
        Consumed::with(StringSerde, serdes.validation.clone()),
    );
    let within_five_minutes = JoinWindows::of_time_difference_with_no_grace(WINDOW);

    validations
        .filter(|_, v| v.validation_result == Pass)
        .group_by_key(Grouped::new())
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(
            WINDOW, WINDOW,
        ))
        .count(Materialized::as_store("passes-per-order"))
        .to_stream()
        // Exactly the update that reaches the number of checks, keyed by order id again.
        // The key bytes do not change, but a new key type marks the stream for
        // repartitioning (as `toStream(mapper)` does in Kafka Streams).
        .flat_map(|session: Windowed<String>, passes: Option<i64>| {
            (passes == Some(CHECKS)).then_some((session.key, CHECKS))
        })
        .repartition(all_passed_topic(partitions))
        .join_stream(
            &created,
            |_, order| order.in_state(OrderState::Validated),
            within_five_minutes,
        )
        .to(
            &topics.orders,
            Produced::with(StringSerde, serdes.order.clone()),
        );

    validations
        .filter(|_, v| v.validation_result == Fail)
        .join_stream(
            &created,
            |_, order| order.in_state(OrderState::Failed),
            within_five_minutes,
        )
        .process_values_with_stores(|| FirstFailure, &[FAILED_ORDERS])
        .to(
            &topics.orders,
            Produced::with(StringSerde, serdes.order.clone()),
        );

    builder.build().expect("validations aggregator topology")
}

fn all_passed_topic(partitions: Option<i32>) -> Repartitioned<String, i64> {
    let topic = Repartitioned::with(StringSerde, I64Serde).with_name("orders-all-passed");
    match partitions {
        Some(n) => topic.with_partitions(n),
        None => topic,
    }
}

/// Passes on the first FAILED order per order id and drops the others, counting the
/// failures it has seen.
struct FirstFailure;

impl FixedKeyProcessor<String, Order, Order> for FirstFailure {
    fn process(
        &mut self,
        ctx: &mut FixedKeyContext<'_, String, Order>,
        record: FixedKeyRecord<String, Order>,
    ) -> Result<(), ProcessError> {
        let failed = ctx.key_value_store::<String, i64>(FAILED_ORDERS)?;
        let seen = failed.get(record.key())?.unwrap_or(0);
        failed.put(record.key(), &(seen + 1))?;
        if seen == 0 {
            ctx.forward(record)?;
        }
        Ok(())
    }
}
