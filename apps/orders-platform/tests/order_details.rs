//! The order-details check: every CREATED order gets one ORDER_DETAILS_CHECK result,
//! FAIL when the quantity or the price is negative or the product is missing, PASS
//! otherwise (zero passes). Orders in other states are not validated.
//!
//! Restart behaviour (committed offsets: no second result for an order checked before a
//! restart) belongs to the runtime and is not covered here.

mod common;

use common::*;
use orders_platform::checks::order_details;
use orders_platform::records::*;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::*;
use streams_core::serde::StringSerde;
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};

use OrderValidationResult::{Fail, Pass};

fn driver() -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        order_details::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        TestDriverConfig::default()
            .with_application_id("order-details")
            .with_partitions(ORDERS, 3)
            .with_partitions(ORDER_VALIDATIONS, 3),
    )
}

fn pipe(driver: &TopologyTestDriver, orders: &[Order]) {
    let input = driver.input_topic(ORDERS, StringSerde, order_serde());
    for order in orders {
        input.pipe_input(order.id.clone(), order.clone());
    }
}

fn read_results(driver: &TopologyTestDriver) -> Vec<(String, OrderValidationResult)> {
    let out = driver
        .output_topic(ORDER_VALIDATIONS, StringSerde, validation_serde())
        .read_key_values();
    for (_, v) in &out {
        assert_eq!(v.check_type, OrderValidationType::OrderDetailsCheck);
    }
    let mut out = results(out);
    // Results come from three partitions; compare them by order id.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn valid_orders_pass_and_zero_quantity_or_price_is_valid() {
    let driver = driver();
    pipe(
        &driver,
        &[
            Order::created("1", 2, Product::Jumpers, 3, 5.0),
            Order::created("2", 2, Product::Underpants, 0, 1.0),
            Order::created("3", 2, Product::Stockings, 1, 0.0),
        ],
    );
    assert_eq!(
        read_results(&driver),
        [(s("1"), Pass), (s("2"), Pass), (s("3"), Pass)]
    );
}

#[test]
fn negative_quantity_or_negative_price_fail() {
    let driver = driver();
    pipe(
        &driver,
        &[
            Order::created("1", 1, Product::Jumpers, -1, 1.0),
            Order::created("2", 1, Product::Jumpers, 1, -0.5),
            Order::created("4", 1, Product::Jumpers, -3, -3.0),
        ],
    );
    assert_eq!(
        read_results(&driver),
        [(s("1"), Fail), (s("2"), Fail), (s("4"), Fail)]
    );
}

/// The `Order` schema requires a product (the orders service refuses an order without
/// one), so a record without it does not decode: it goes to the deserialization
/// handler (failing by default), it is never checked.
#[test]
fn an_order_record_without_a_product_does_not_decode() {
    let driver = driver();
    let input = driver.input_topic(ORDERS, StringSerde, order_serde());
    input
        .pipe_raw(
            Some(b"9".to_vec()),
            Some(
                br#"{"id":"9","customerId":1,"state":"CREATED","quantity":1,"price":1.0}"#.to_vec(),
            ),
            0,
        )
        .expect_err("an order without a product does not decode");
    assert!(read_results(&driver).is_empty());
}

#[test]
fn orders_in_other_states_are_not_validated() {
    let driver = driver();
    let order = Order::created("1", 1, Product::Jumpers, -1, 1.0);
    pipe(
        &driver,
        &[
            order.in_state(OrderState::Validated),
            order.in_state(OrderState::Failed),
            order.in_state(OrderState::Shipped),
        ],
    );
    assert!(read_results(&driver).is_empty());
    // The CREATED event of the same order is checked once.
    pipe(&driver, &[order]);
    assert_eq!(read_results(&driver), [(s("1"), Fail)]);
}

#[test]
fn every_created_order_gets_exactly_one_result_keyed_by_its_id() {
    let driver = driver();
    let orders: Vec<Order> = (0..30i32)
        .map(|i| {
            Order::created(
                &i.to_string(),
                i64::from(i % 6),
                Product::Jumpers,
                (i % 3) - 1,
                1.0,
            )
        })
        .collect();
    pipe(&driver, &orders);
    let mut expected: Vec<(String, OrderValidationResult)> = orders
        .iter()
        .map(|o| (o.id.clone(), if o.quantity < 0 { Fail } else { Pass }))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(read_results(&driver), expected);
}

#[test]
fn orders_are_json_as_on_the_rest_api() {
    use streams_core::serde::Serde;
    let bytes = order_serde()
        .serialize(ORDERS, &Order::created("1", 2, Product::Jumpers, 1, 1.0))
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"id":"1","customerId":2,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1.0}"#
    );
    let validation = OrderValidation::new("1", OrderValidationType::OrderDetailsCheck, Pass);
    let bytes = validation_serde()
        .serialize(ORDER_VALIDATIONS, &validation)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"orderId":"1","checkType":"ORDER_DETAILS_CHECK","validationResult":"PASS"}"#
    );
}
