//! Order enrichment and the fraud count on the test driver: every order event
//! left-joined with its customer on `orders-enriched.v1`; CREATED orders counted per
//! customer in 30-second windows; more than two in a window is an alert.

use orders_platform::enrichment::{self, fraud_alerts, CustomerKey, FraudAlert, FRAUD_COUNTS};
use orders_platform::records::*;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::*;
use streams_core::serde::{I64Serde, JsonSerde, StringSerde};
use streams_core::state::Windowed;
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};

const SECOND: i64 = 1000;

fn driver() -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        enrichment::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        TestDriverConfig::default()
            .with_application_id("order-enrichment")
            .with_partitions(ORDERS, 3),
    )
}

fn customer(id: i64) -> Customer {
    Customer {
        id,
        first_name: format!("First{id}"),
        last_name: format!("Last{id}"),
        email: format!("customer{id}@example.com"),
        address: format!("{id} Main Street"),
        level: "gold".into(),
    }
}

fn add_customer(driver: &TopologyTestDriver, customer: &Customer) {
    driver
        .input_topic(CUSTOMERS, I64Serde, JsonSerde::<Customer>::new())
        .pipe_input_at(customer.id, customer.clone(), 0);
}

fn order(driver: &TopologyTestDriver, order: &Order, ts: i64) {
    driver
        .input_topic(ORDERS, StringSerde, JsonSerde::<Order>::new())
        .pipe_input_at(order.id.clone(), order.clone(), ts);
}

fn alerts(driver: &TopologyTestDriver) -> Vec<FraudAlert> {
    let counts = driver
        .window_store::<CustomerKey, i64>(FRAUD_COUNTS)
        .expect("the fraud count store")
        .fetch_all(0, i64::MAX);
    fraud_alerts(counts, 100)
}

#[test]
fn every_order_event_is_enriched_with_its_customer_or_left_without() {
    let d = driver();
    add_customer(&d, &customer(5));
    let created = Order::created("o1", 5, Product::Jumpers, 2, 10.0);
    order(&d, &created, SECOND);
    order(&d, &created.in_state(OrderState::Validated), 2 * SECOND);
    order(
        &d,
        &Order::created("o2", 0, Product::Stockings, 1, 1.0),
        3 * SECOND,
    );
    let enriched = d
        .output_topic(
            ORDERS_ENRICHED,
            StringSerde,
            JsonSerde::<EnrichedOrder>::new(),
        )
        .read_key_values();
    let c = customer(5);
    assert_eq!(
        enriched,
        vec![
            ("o1".into(), EnrichedOrder::new(&created, Some(&c))),
            (
                "o1".into(),
                EnrichedOrder::new(&created.in_state(OrderState::Validated), Some(&c))
            ),
            (
                "o2".into(),
                EnrichedOrder::new(&Order::created("o2", 0, Product::Stockings, 1, 1.0), None)
            ),
        ]
    );
    assert_eq!(enriched[0].1.last_name.as_deref(), Some("Last5"));
    assert_eq!(enriched[2].1.level, None, "customer 0 has no row");
}

#[test]
fn four_orders_of_a_customer_within_thirty_seconds_are_one_alert_of_four() {
    let d = driver();
    add_customer(&d, &customer(1));
    add_customer(&d, &customer(2));
    // Window [30 s, 60 s): four orders of customer 1, two of customer 2.
    for (i, ts) in [31, 35, 50, 59].into_iter().enumerate() {
        let o = Order::created(&format!("c1-{i}"), 1, Product::Jumpers, 1, 1.0);
        order(&d, &o, ts * SECOND);
        // Their later states do not count again.
        order(&d, &o.in_state(OrderState::Validated), ts * SECOND + 100);
    }
    for (i, ts) in [40, 41].into_iter().enumerate() {
        order(
            &d,
            &Order::created(&format!("c2-{i}"), 2, Product::Jumpers, 1, 1.0),
            ts * SECOND,
        );
    }
    assert_eq!(
        alerts(&d),
        vec![FraudAlert {
            customer_id: 1,
            last_name: "Last1".into(),
            first_name: "First1".into(),
            counts: 4,
            window_start: 30 * SECOND,
            window_end: 60 * SECOND,
        }],
        "two orders are no alert"
    );
}

#[test]
fn orders_in_different_windows_are_counted_apart() {
    let d = driver();
    add_customer(&d, &customer(3));
    // Three orders either side of 60 s: two windows of three, both alerts.
    for (i, ts) in [45, 50, 55, 61, 62, 70].into_iter().enumerate() {
        order(
            &d,
            &Order::created(&format!("o{i}"), 3, Product::Underpants, 1, 1.0),
            ts * SECOND,
        );
    }
    // Customer 0 has no row: never counted.
    for i in 0..5 {
        order(
            &d,
            &Order::created(&format!("x{i}"), 0, Product::Underpants, 1, 1.0),
            71 * SECOND,
        );
    }
    let alerts = alerts(&d);
    let windows: Vec<(i64, i64)> = alerts.iter().map(|a| (a.window_start, a.counts)).collect();
    assert_eq!(
        windows,
        vec![(60 * SECOND, 3), (30 * SECOND, 3)],
        "newest window first"
    );
}

#[test]
fn the_report_sorts_newest_first_and_keeps_at_most_the_limit() {
    let key = |id: i64| CustomerKey {
        customer_id: id,
        last_name: format!("L{id}"),
        first_name: format!("F{id}"),
    };
    let window = |id: i64, start: i64| Windowed::new(key(id), start, start + 30 * SECOND);
    let counts = vec![
        (window(1, 0), 3),
        (window(2, 30 * SECOND), 5),
        (window(3, 30 * SECOND), 7),
        (window(4, 60 * SECOND), 2),
        (window(5, 90 * SECOND), 4),
    ];
    let report: Vec<(i64, i64)> = fraud_alerts(counts.clone(), 10)
        .iter()
        .map(|a| (a.customer_id, a.counts))
        .collect();
    assert_eq!(report, vec![(5, 4), (3, 7), (2, 5), (1, 3)]);
    assert_eq!(fraud_alerts(counts, 2).len(), 2);
}
