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
//! accepted order, since this library emits every update (no cache), and like Kafka
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

mod common;

use std::time::Duration;

use common::*;
use orders_platform::checks::fraud::{self, FRAUD_LIMIT, FRAUD_SESSIONS, SESSION_GAP_MS};
use orders_platform::records::*;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::*;
use streams_core::dsl::SessionWindows;
use streams_core::serde::{I64Serde, JsonSerde, StringSerde};
use streams_core::state::Windowed;
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};

use OrderValidationResult::{Fail, Pass};

fn driver(topology: Topology, partitions: i32) -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default()
            .with_application_id("fraud-service")
            .with_partitions(ORDERS, partitions)
            .with_partitions(ORDER_VALIDATIONS, partitions),
    )
}

const MINUTE: i64 = 60 * 1000;
const HOUR: i64 = 60 * MINUTE;

struct Fraud<'d> {
    driver: &'d TopologyTestDriver,
}

impl Fraud<'_> {
    /// Pipes an order of `customer` worth `value` at `ts`, returns the results produced.
    fn order(
        &self,
        id: &str,
        customer: i64,
        value: f64,
        ts: i64,
    ) -> Vec<(String, OrderValidationResult)> {
        self.pipe(Order::created(id, customer, Product::Jumpers, 1, value), ts);
        self.results()
    }

    fn pipe(&self, order: Order, ts: i64) {
        self.driver
            .input_topic(ORDERS, StringSerde, order_serde())
            .pipe_input_at(order.id.clone(), order, ts);
    }

    fn results(&self) -> Vec<(String, OrderValidationResult)> {
        let out = self
            .driver
            .output_topic(ORDER_VALIDATIONS, StringSerde, validation_serde())
            .read_key_values();
        for (_, v) in &out {
            assert_eq!(v.check_type, OrderValidationType::FraudCheck);
        }
        results(out)
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn orders_fail_from_the_one_that_takes_the_session_total_to_2000() {
    let driver = driver(
        fraud::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        3,
    );
    let f = Fraud { driver: &driver };
    assert_eq!(f.order("1", 1, 1000.0, 0), [(s("1"), Pass)]);
    assert_eq!(f.order("2", 1, 999.0, 10 * MINUTE), [(s("2"), Pass)]);
    // 1999 + 1 = 2000: the limit itself fails.
    assert_eq!(f.order("3", 1, 1.0, 20 * MINUTE), [(s("3"), Fail)]);
    // Every later order of the session fails, however small.
    assert_eq!(f.order("4", 1, 0.5, 30 * MINUTE), [(s("4"), Fail)]);
    // Quantity times price: 3 x 700.0 alone is over the limit.
    f.pipe(
        Order::created("5", 2, Product::Underpants, 3, 700.0),
        30 * MINUTE,
    );
    assert_eq!(f.results(), [(s("5"), Fail)]);
    // Another customer has its own sessions.
    assert_eq!(f.order("6", 3, 1999.0, 31 * MINUTE), [(s("6"), Pass)]);
}

#[test]
fn only_created_orders_count_and_get_a_result() {
    let driver = driver(
        fraud::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        1,
    );
    let f = Fraud { driver: &driver };
    let big = Order::created("1", 1, Product::Jumpers, 1, 1500.0);
    assert_eq!(f.order("1", 1, 1500.0, 0), [(s("1"), Pass)]);
    // The final states written back to orders.v1 neither count nor get results.
    for state in [
        OrderState::Validated,
        OrderState::Failed,
        OrderState::Shipped,
    ] {
        f.pipe(big.in_state(state), MINUTE);
    }
    assert!(f.results().is_empty());
    assert_eq!(f.order("2", 1, 400.0, 2 * MINUTE), [(s("2"), Pass)]);
}

#[test]
fn a_gap_of_more_than_an_hour_starts_a_new_session_from_zero() {
    let driver = driver(
        fraud::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        1,
    );
    let f = Fraud { driver: &driver };
    assert_eq!(f.order("1", 1, 1500.0, 0), [(s("1"), Pass)]);
    assert_eq!(f.order("2", 1, 600.0, 50 * MINUTE), [(s("2"), Fail)]);
    // One millisecond more than the gap after the session's last order: a new session.
    let t = 50 * MINUTE + HOUR + 1;
    assert_eq!(f.order("3", 1, 1500.0, t), [(s("3"), Pass)]);
    // Exactly one gap later still belongs to the session (the gap is inclusive).
    assert_eq!(f.order("4", 1, 600.0, t + HOUR), [(s("4"), Fail)]);
    let sessions = driver
        .session_store::<i64, f64>(FRAUD_SESSIONS)
        .expect("the sessions store");
    // The first session ended two gaps before stream time: it has expired.
    assert_eq!(
        sessions.fetch(&1),
        [(Windowed::new(1, t, t + HOUR), 2100.0)]
    );
}

#[test]
fn an_order_bridging_two_sessions_is_judged_on_the_merged_total() {
    let driver = driver(
        fraud::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        1,
    );
    let f = Fraud { driver: &driver };
    assert_eq!(f.order("1", 1, 1500.0, 0), [(s("1"), Pass)]);
    // 90 minutes later: a session of its own.
    assert_eq!(f.order("2", 1, 400.0, 90 * MINUTE), [(s("2"), Pass)]);
    // Within an hour of both: one session of 1500 + 400 + 200.
    assert_eq!(f.order("3", 1, 200.0, 45 * MINUTE), [(s("3"), Fail)]);
    let sessions = driver.session_store::<i64, f64>(FRAUD_SESSIONS).unwrap();
    assert_eq!(
        sessions.fetch(&1),
        [(Windowed::new(1, 0, 90 * MINUTE), 2100.0)]
    );
}

/// Two customers whose orders reach the by-customer task slightly out of order.
fn interleaved_customers(f: &Fraud<'_>) -> Vec<(String, OrderValidationResult)> {
    let mut out = f.order("1", 1, 500.0, 10_000);
    out.extend(f.order("2", 2, 500.0, 20_000));
    // Five seconds older than the task's stream time, within customer 1's session.
    out.extend(f.order("3", 1, 1600.0, 15_000));
    out.extend(f.order("4", 1, 10.0, 25_000));
    out
}

#[test]
fn slightly_out_of_order_orders_still_get_exactly_one_result() {
    let driver = driver(
        fraud::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        1,
    );
    let f = Fraud { driver: &driver };
    assert_eq!(
        interleaved_customers(&f),
        [
            (s("1"), Pass),
            (s("2"), Pass),
            (s("3"), Fail),
            (s("4"), Fail)
        ]
    );
}

#[test]
fn every_created_order_gets_exactly_one_result() {
    let driver = driver(
        fraud::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        3,
    );
    let f = Fraud { driver: &driver };
    let mut ids = Vec::new();
    for i in 0..60i64 {
        let id = i.to_string();
        // Six customers, an order every 5 minutes each: their sessions never end and
        // pass the limit after four orders of 600.
        f.pipe(
            Order::created(&id, i % 6, Product::Jumpers, 2, 300.0),
            (i / 6) * 5 * MINUTE,
        );
        ids.push(id);
    }
    let out = f.results();
    let mut seen: Vec<String> = out.iter().map(|(id, _)| id.clone()).collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    for (id, result) in out {
        let round = id.parse::<i64>().unwrap() / 6;
        let expected = if round >= 3 { Fail } else { Pass };
        assert_eq!(result, expected, "order {id}");
    }
}

/// The session aggregate of the DSL alternative: the latest order of the session (none
/// in a fresh aggregate) and the session's total.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct SessionTotal {
    order: Option<Order>,
    value: f64,
}

/// The DSL alternative the design note above rejects: the session aggregate with no
/// grace, re-keyed by the order it last saw.
fn fraud_check_with_session_aggregate(orders_topic: &str, validations_topic: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(orders_topic, Consumed::with(StringSerde, order_serde()))
        .filter(|_, order| order.state == OrderState::Created)
        .group_by(
            |_, order| order.customer_id,
            Grouped::with(I64Serde, order_serde()).with_name("orders-by-customer"),
        )
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(
            Duration::from_millis(SESSION_GAP_MS as u64),
        ))
        .aggregate(
            || SessionTotal {
                order: None,
                value: 0.0,
            },
            |_, order: Order, total: SessionTotal| SessionTotal {
                value: total.value + order.value(),
                order: Some(order),
            },
            |_, a: SessionTotal, b: SessionTotal| SessionTotal {
                order: b.order.or(a.order),
                value: a.value + b.value,
            },
            Materialized::as_store("fraud-session-totals")
                .with_value_serde(JsonSerde::<SessionTotal>::new()),
        )
        .to_stream()
        // Sessions merged away arrive as deletes (None) and are skipped.
        .flat_map(|_: Windowed<i64>, total: Option<SessionTotal>| {
            total.and_then(|total| {
                let order = total.order?;
                let result = if total.value >= FRAUD_LIMIT {
                    Fail
                } else {
                    Pass
                };
                let validation =
                    OrderValidation::new(&order.id, OrderValidationType::FraudCheck, result);
                Some((order.id, validation))
            })
        })
        .to(
            validations_topic,
            Produced::with(StringSerde, validation_serde()),
        );
    builder
        .build()
        .expect("fraud topology on the session aggregate")
}

#[test]
fn the_dsl_session_aggregate_keeps_slightly_out_of_order_orders() {
    let driver = driver(
        fraud_check_with_session_aggregate(ORDERS, ORDER_VALIDATIONS),
        1,
    );
    let f = Fraud { driver: &driver };
    // In order, the aggregate gives the same results as the processor.
    assert_eq!(f.order("0", 9, 2500.0, 0), [(s("0"), Fail)]);
    // Order 3 (15 000) merges into customer 1's session [10 000, 15 000], which ends
    // before stream time 20 000 but within one gap of it: the session is still open.
    assert_eq!(
        interleaved_customers(&f),
        [
            (s("1"), Pass),
            (s("2"), Pass),
            (s("3"), Fail),
            (s("4"), Fail)
        ]
    );
}
