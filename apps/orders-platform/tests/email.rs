//! The email service on the test driver: emails for an order, its payment within a
//! minute and its customer (acceptance scenario 9), none without a customer row, and
//! `OrderEnriched` records routed to the topic of the customer's level.

use std::sync::{Arc, Mutex};

use orders_platform::email::{self, Email, Emailer};
use orders_platform::records::*;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::*;
use streams_core::serde::{I64Serde, JsonSerde, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;

/// Keeps the emails it is given.
#[derive(Default)]
struct Outbox(Mutex<Vec<Email>>);

impl Emailer for Outbox {
    fn send(&self, email: &Email) {
        self.0.lock().unwrap().push(email.clone());
    }
}

impl Outbox {
    fn take(&self) -> Vec<Email> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct Service {
    driver: TopologyTestDriver,
    outbox: Arc<Outbox>,
}

fn service() -> Service {
    let outbox = Arc::new(Outbox::default());
    let topology = email::topology(
        &PlatformSerdes::json(),
        &PlatformTopics::default(),
        outbox.clone(),
    );
    let driver = TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::default()
            .with_application_id("email-service")
            .with_partitions(ORDERS, 3)
            .with_partitions(PAYMENTS, 3),
    );
    Service { driver, outbox }
}

fn customer(id: i64, level: &str) -> Customer {
    Customer {
        id,
        first_name: format!("First{id}"),
        last_name: format!("Last{id}"),
        email: format!("customer{id}@example.com"),
        address: format!("{id} Main Street"),
        level: level.to_string(),
    }
}

fn payment(order_id: &str) -> Payment {
    Payment {
        // The populator's one payment id for every payment.
        id: "Payment:1234".into(),
        order_id: order_id.into(),
        ccy: "CZK".into(),
        amount: 1000.0,
    }
}

impl Service {
    fn customer(&self, customer: &Customer) {
        self.driver
            .input_topic(CUSTOMERS, I64Serde, JsonSerde::<Customer>::new())
            .pipe_input_at(customer.id, customer.clone(), 0);
    }

    fn order(&self, order: &Order, ts: i64) {
        self.driver
            .input_topic(ORDERS, StringSerde, JsonSerde::<Order>::new())
            .pipe_input_at(order.id.clone(), order.clone(), ts);
    }

    fn payment(&self, payment: &Payment, ts: i64) {
        self.driver
            .input_topic(PAYMENTS, StringSerde, JsonSerde::<Payment>::new())
            .pipe_input_at(payment.id.clone(), payment.clone(), ts);
    }

    /// `(topic, order id, level)` of every record routed since the last call.
    fn routed(&self) -> Vec<(&'static str, String, String)> {
        CUSTOMER_LEVELS
            .iter()
            .flat_map(|topic| {
                self.driver
                    .output_topic(topic, StringSerde, JsonSerde::<OrderEnriched>::new())
                    .read_key_values()
                    .into_iter()
                    .map(move |(key, enriched)| {
                        assert_eq!(key, enriched.id, "keyed by order id");
                        (*topic, key, enriched.customer_level)
                    })
            })
            .collect()
    }
}

#[test]
fn a_customer_an_order_and_its_payment_within_a_minute_give_one_email() {
    // Acceptance scenario 9.
    let s = service();
    let jana = customer(2, "platinum");
    s.customer(&jana);
    let order = Order::created("1", 2, Product::Jumpers, 1, 1.0);
    s.order(&order, 10 * SECOND);
    assert!(s.outbox.take().is_empty(), "no payment yet");
    s.payment(&payment("1"), 10 * SECOND + 59 * SECOND);
    assert_eq!(
        s.outbox.take(),
        vec![Email {
            order: order.clone(),
            payment: payment("1"),
            customer: jana,
        }],
        "one email carrying all three records"
    );
    // The payment of another order does not mail this one.
    s.payment(&payment("2"), 20 * SECOND);
    assert!(s.outbox.take().is_empty());
}

#[test]
fn a_payment_more_than_a_minute_from_the_order_sends_nothing() {
    let s = service();
    s.customer(&customer(3, "gold"));
    s.order(&Order::created("1", 3, Product::Jumpers, 1, 1.0), MINUTE);
    s.payment(&payment("1"), 2 * MINUTE + 1);
    assert!(s.outbox.take().is_empty());
    // Payment first, order within the minute: joined as well.
    s.payment(&payment("2"), 3 * MINUTE);
    s.order(
        &Order::created("2", 3, Product::Jumpers, 1, 1.0),
        3 * MINUTE + 30 * SECOND,
    );
    let emails = s.outbox.take();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].order.id, "2");
}

#[test]
fn an_order_of_a_customer_without_a_row_is_neither_mailed_nor_routed() {
    let s = service();
    s.customer(&customer(1, "platinum"));
    s.order(&Order::created("7", 0, Product::Stockings, 1, 1.0), SECOND);
    s.payment(&payment("7"), 2 * SECOND);
    assert!(s.outbox.take().is_empty(), "customer 0 has no row");
    assert!(s.routed().is_empty());
}

#[test]
fn every_order_event_is_routed_to_the_topic_of_its_customers_level() {
    let s = service();
    for (id, level) in [(1, "platinum"), (4, "bronze"), (5, "gold"), (6, "silver")] {
        s.customer(&customer(id, level));
    }
    let order = Order::created("5-1", 5, Product::Underpants, 2, 3.0);
    s.order(&order, SECOND);
    s.order(&order.in_state(OrderState::Validated), 2 * SECOND);
    s.order(
        &Order::created("6-1", 6, Product::Jumpers, 1, 1.0),
        3 * SECOND,
    );
    s.order(
        &Order::created("1-1", 1, Product::Jumpers, 1, 1.0),
        4 * SECOND,
    );
    s.order(
        &Order::created("4-1", 4, Product::Jumpers, 1, 1.0),
        5 * SECOND,
    );
    let mut routed = s.routed();
    routed.sort();
    let expected =
        |topic: &'static str, id: &str, level: &str| (topic, id.to_string(), level.to_string());
    assert_eq!(
        routed,
        vec![
            expected("bronze", "4-1", "bronze"),
            expected("gold", "5-1", "gold"),
            expected("gold", "5-1", "gold"),
            expected("platinum", "1-1", "platinum"),
            expected("silver", "6-1", "silver"),
        ],
        "customer 5 lands in gold, once per order event"
    );
}

#[test]
fn a_customers_new_level_routes_their_next_orders() {
    let s = service();
    s.customer(&customer(8, "silver"));
    s.order(&Order::created("a", 8, Product::Jumpers, 1, 1.0), SECOND);
    s.customer(&customer(8, "gold"));
    s.order(
        &Order::created("b", 8, Product::Jumpers, 1, 1.0),
        2 * SECOND,
    );
    let routed: Vec<_> = s.routed().into_iter().map(|(t, id, _)| (t, id)).collect();
    assert!(routed.contains(&("silver", "a".to_string())));
    assert!(routed.contains(&("gold", "b".to_string())));
    assert_eq!(routed.len(), 2);
}
