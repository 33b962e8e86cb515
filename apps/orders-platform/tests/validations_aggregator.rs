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
//! records eagerly. The original services deduplicated FAILs with a cached `reduce`;
//! this library emits every update, so the first FAILED per order is kept explicitly in
//! a store. The PASS sessions get a grace of one gap: the three checks answer at
//! different speeds, so an order's last PASS often arrives after later orders'
//! results have moved the task's stream time on; with no grace it would be dropped and
//! the order would never be VALIDATED.

mod common;

use common::*;
use orders_platform::records::*;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::*;
use orders_platform::validations_aggregator::{self};
use streams_core::serde::StringSerde;
use streams_core::state::Windowed;
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::Topology;

use OrderValidationResult::{Error, Fail, Pass};
use OrderValidationType::{FraudCheck, InventoryCheck, OrderDetailsCheck};

fn driver(partitions: i32) -> TopologyTestDriver {
    driver_for(
        validations_aggregator::topology(
            &PlatformSerdes::json(),
            &PlatformTopics::default(),
            Some(partitions),
        ),
        partitions,
    )
}

fn driver_for(topology: Topology, partitions: i32) -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default()
            .with_application_id("validations-aggregator")
            .with_partitions(ORDERS, partitions)
            .with_partitions(ORDER_VALIDATIONS, partitions),
    )
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;

struct Aggregator<'d> {
    driver: &'d TopologyTestDriver,
}

impl Aggregator<'_> {
    fn order(&self, order: &Order, ts: i64) {
        self.driver
            .input_topic(ORDERS, StringSerde, order_serde())
            .pipe_input_at(order.id.clone(), order.clone(), ts);
    }

    fn result(
        &self,
        order: &Order,
        check: OrderValidationType,
        result: OrderValidationResult,
        ts: i64,
    ) {
        self.driver
            .input_topic(ORDER_VALIDATIONS, StringSerde, validation_serde())
            .pipe_input_at(
                order.id.clone(),
                OrderValidation::new(&order.id, check, result),
                ts,
            );
    }

    /// What the aggregator wrote to the orders topic since the last call.
    fn written(&self) -> Vec<(String, OrderState)> {
        self.driver
            .output_topic(ORDERS, StringSerde, order_serde())
            .read_key_values()
            .into_iter()
            .map(|(key, order)| {
                assert_eq!(key, order.id, "orders are keyed by id");
                (key, order.state)
            })
            .collect()
    }
}

fn order(id: &str) -> Order {
    Order::created(id, 2, Product::Jumpers, 1, 1.0)
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn three_passes_validate_and_pass_fail_pass_fails_the_order() {
    // Acceptance scenario 8.
    let driver = driver(3);
    let a = Aggregator { driver: &driver };
    let (o0, o1) = (order("0"), order("1"));
    a.order(&o0, 0);
    a.order(&o1, 0);
    a.result(&o0, InventoryCheck, Pass, SECOND);
    a.result(&o0, FraudCheck, Pass, 2 * SECOND);
    assert!(a.written().is_empty());
    a.result(&o0, OrderDetailsCheck, Pass, 3 * SECOND);
    assert_eq!(a.written(), [(s("0"), OrderState::Validated)]);

    a.result(&o1, InventoryCheck, Pass, SECOND);
    a.result(&o1, FraudCheck, Fail, 2 * SECOND);
    assert_eq!(a.written(), [(s("1"), OrderState::Failed)]);
    a.result(&o1, OrderDetailsCheck, Pass, 3 * SECOND);
    // Together with the two CREATED records, orders.v1 holds four records for them.
    assert!(a.written().is_empty());
}

#[test]
fn the_validated_order_is_the_created_one_in_state_validated() {
    let driver = driver(1);
    let a = Aggregator { driver: &driver };
    let o = Order::created("7", 5, Product::Underpants, 3, 12.5);
    a.order(&o, 0);
    // Any three PASSes count, even of one check type.
    for i in 1..=3 {
        a.result(&o, FraudCheck, Pass, i * SECOND);
    }
    let out = driver
        .output_topic(ORDERS, StringSerde, order_serde())
        .read_records();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].value, o.in_state(OrderState::Validated));
    // The pair is emitted with the later of the two timestamps.
    assert_eq!(out[0].timestamp, 3 * SECOND);
}

#[test]
fn several_fails_give_one_failed_record() {
    let driver = driver(3);
    let a = Aggregator { driver: &driver };
    let o = order("1");
    // FAILs before the CREATED record reaches the aggregator join it when it comes.
    a.result(&o, InventoryCheck, Fail, SECOND);
    a.result(&o, FraudCheck, Fail, 2 * SECOND);
    assert!(a.written().is_empty());
    a.order(&o, 0);
    assert_eq!(a.written(), [(s("1"), OrderState::Failed)]);
    a.result(&o, OrderDetailsCheck, Fail, 3 * SECOND);
    assert!(a.written().is_empty());
    // The CREATED record written again (a retried POST) does not fail it twice either.
    a.order(&o, 4 * SECOND);
    assert!(a.written().is_empty());
}

#[test]
fn errors_are_ignored() {
    let driver = driver(1);
    let a = Aggregator { driver: &driver };
    let (o1, o2) = (order("1"), order("2"));
    a.order(&o1, 0);
    a.order(&o2, 0);
    a.result(&o1, InventoryCheck, Pass, SECOND);
    a.result(&o1, FraudCheck, Error, 2 * SECOND);
    a.result(&o1, OrderDetailsCheck, Pass, 3 * SECOND);
    // An ERROR neither counts as a PASS nor fails the order.
    assert!(a.written().is_empty());
    a.result(&o1, FraudCheck, Pass, 4 * SECOND);
    assert_eq!(a.written(), [(s("1"), OrderState::Validated)]);

    for check in [InventoryCheck, FraudCheck, OrderDetailsCheck] {
        a.result(&o2, check, Error, 5 * SECOND);
    }
    assert!(a.written().is_empty());
}

#[test]
fn passes_count_within_a_five_minute_session_only() {
    let driver = driver(1);
    let a = Aggregator { driver: &driver };
    let o = order("1");
    a.order(&o, 0);
    a.result(&o, InventoryCheck, Pass, 0);
    a.result(&o, FraudCheck, Pass, MINUTE);
    // More than five minutes after the last PASS: a new session, counting from one.
    a.result(&o, OrderDetailsCheck, Pass, 6 * MINUTE + 1);
    assert!(a.written().is_empty());
    let sessions = driver
        .session_store::<String, i64>("passes-per-order")
        .unwrap();
    assert_eq!(
        sessions.fetch(&s("1")),
        [
            (Windowed::new(s("1"), 0, MINUTE), 2),
            (Windowed::new(s("1"), 6 * MINUTE + 1, 6 * MINUTE + 1), 1),
        ]
    );
}

#[test]
fn a_pass_bridging_two_sessions_completes_the_count() {
    let driver = driver(1);
    let a = Aggregator { driver: &driver };
    let o = order("1");
    a.order(&o, 4 * MINUTE);
    a.result(&o, InventoryCheck, Pass, 0);
    a.result(&o, FraudCheck, Pass, 8 * MINUTE);
    assert!(a.written().is_empty());
    // Within five minutes of both: one session of three PASSes.
    a.result(&o, OrderDetailsCheck, Pass, 4 * MINUTE);
    assert_eq!(a.written(), [(s("1"), OrderState::Validated)]);
}

#[test]
fn results_outside_five_minutes_of_the_created_record_do_not_join() {
    let driver = driver(1);
    let a = Aggregator { driver: &driver };
    let (o1, o2) = (order("1"), order("2"));
    a.order(&o1, 0);
    a.order(&o2, 0);
    // A FAIL 5 minutes and 1 ms after the order finds no CREATED record.
    a.result(&o1, FraudCheck, Fail, 5 * MINUTE + 1);
    // Three PASSes whose third is 5 minutes and 1 ms after the order.
    a.result(&o2, InventoryCheck, Pass, 4 * MINUTE);
    a.result(&o2, FraudCheck, Pass, 5 * MINUTE);
    a.result(&o2, OrderDetailsCheck, Pass, 5 * MINUTE + 1);
    assert!(a.written().is_empty());

    // Exactly five minutes is within the window.
    let o3 = order("3");
    a.order(&o3, 5 * MINUTE);
    a.result(&o3, FraudCheck, Fail, 10 * MINUTE);
    assert_eq!(a.written(), [(s("3"), OrderState::Failed)]);
}

#[test]
fn interleaved_results_of_many_orders_each_end_once() {
    // Three checks answering at different speeds: an order's results arrive after
    // later orders' results, behind the task's stream time.
    let driver = driver(3);
    let a = Aggregator { driver: &driver };
    let orders: Vec<Order> = (0..10).map(|i| order(&i.to_string())).collect();
    for (i, o) in orders.iter().enumerate() {
        a.order(o, i as i64 * SECOND);
    }
    let at = |i: usize, delay: i64| i as i64 * SECOND + delay;
    for (i, o) in orders.iter().enumerate() {
        a.result(o, OrderDetailsCheck, Pass, at(i, 10));
    }
    for (i, o) in orders.iter().enumerate() {
        let result = if i == 4 { Fail } else { Pass };
        a.result(o, InventoryCheck, result, at(i, 50));
    }
    for (i, o) in orders.iter().enumerate().rev() {
        a.result(o, FraudCheck, Pass, at(i, 200));
    }
    let mut written = a.written();
    written.sort();
    let mut expected: Vec<(String, OrderState)> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let state = if i == 4 {
                OrderState::Failed
            } else {
                OrderState::Validated
            };
            (o.id.clone(), state)
        })
        .collect();
    expected.sort();
    assert_eq!(written, expected);
}

#[test]
fn the_internal_topic_count_is_derived_from_the_source_topics() {
    // The same topology without a declared count for "orders-all-passed": Kafka Streams
    // sizes it from the writing sub-topology's other source topics (3 here).
    let driver = driver_for(
        validations_aggregator::topology(&PlatformSerdes::json(), &PlatformTopics::default(), None),
        3,
    );
    let a = Aggregator { driver: &driver };
    let orders: Vec<Order> = (0..6).map(|i| order(&i.to_string())).collect();
    for o in &orders {
        a.order(o, 0);
        for check in [InventoryCheck, FraudCheck, OrderDetailsCheck] {
            a.result(o, check, Pass, SECOND);
        }
    }
    let mut written = a.written();
    written.sort();
    let expected: Vec<(String, OrderState)> = orders
        .iter()
        .map(|o| (o.id.clone(), OrderState::Validated))
        .collect();
    assert_eq!(written, expected);
}
