//! The inventory check: CREATED orders are re-keyed by product and inner-joined with the
//! warehouse-inventory table, whose value is the product's absolute stock level (a new
//! row replaces the old one, it is not added to it). The store `store-of-reserved-stock`
//! (product → reserved count, 8-byte longs, changelog-backed) holds reservations: an
//! order passes when `stock - reserved - quantity >= 0` and then reserves its quantity;
//! otherwise it fails and reserves nothing. An order for a product without a stock row
//! gets no result. Results are keyed by order id.

mod common;

use common::*;
use orders_platform::checks::inventory::{self, RESERVED_STOCK};
use orders_platform::records::*;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::*;

const APP: &str = "inventory-service";
use streams_core::serde::{I32Serde, Nullable, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};

use OrderValidationResult::{Fail, Pass};

fn driver(partitions: i32) -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        inventory::topology(&PlatformSerdes::json(), &PlatformTopics::default()),
        TestDriverConfig::default()
            .with_application_id(APP)
            .with_partitions(ORDERS, partitions)
            .with_partitions(WAREHOUSE_INVENTORY, partitions)
            .with_partitions(ORDER_VALIDATIONS, partitions),
    )
}

struct Inventory<'d> {
    driver: &'d TopologyTestDriver,
}

impl Inventory<'_> {
    fn stock(&self, product: Product, level: i32) {
        self.driver
            .input_topic(WAREHOUSE_INVENTORY, StringSerde, I32Serde)
            .pipe_input(product.name().to_string(), level);
    }

    /// Pipes an order and returns the results it produced.
    fn order(&self, order: Order) -> Vec<(String, OrderValidationResult)> {
        self.driver
            .input_topic(ORDERS, StringSerde, order_serde())
            .pipe_input(order.id.clone(), order);
        self.results()
    }

    fn results(&self) -> Vec<(String, OrderValidationResult)> {
        let out = self
            .driver
            .output_topic(ORDER_VALIDATIONS, StringSerde, validation_serde())
            .read_key_values();
        for (_, v) in &out {
            assert_eq!(v.check_type, OrderValidationType::InventoryCheck);
        }
        results(out)
    }

    fn reserved(&self, product: Product) -> Option<i64> {
        self.driver
            .key_value_store::<String, i64>(RESERVED_STOCK)
            .expect("the reservations store")
            .get(&product.name().to_string())
    }
}

fn jumpers(id: &str, quantity: i32) -> Order {
    Order::created(id, 1, Product::Jumpers, quantity, 1.0)
}

fn s(v: &str) -> String {
    v.to_string()
}

fn exhaust_then_restock(partitions: i32) {
    let driver = driver(partitions);
    let inv = Inventory { driver: &driver };
    inv.stock(Product::Jumpers, 10);
    inv.stock(Product::Underpants, 20);

    assert_eq!(inv.order(jumpers("1", 4)), [(s("1"), Pass)]);
    assert_eq!(inv.order(jumpers("2", 5)), [(s("2"), Pass)]);
    assert_eq!(inv.reserved(Product::Jumpers), Some(9));
    // 10 - 9 - 2 < 0: fails and reserves nothing.
    assert_eq!(inv.order(jumpers("3", 2)), [(s("3"), Fail)]);
    assert_eq!(inv.reserved(Product::Jumpers), Some(9));
    // 10 - 9 - 1 = 0 still passes.
    assert_eq!(inv.order(jumpers("4", 1)), [(s("4"), Pass)]);
    assert_eq!(inv.order(jumpers("5", 1)), [(s("5"), Fail)]);
    assert_eq!(inv.reserved(Product::Jumpers), Some(10));
    // Other products keep their own stock and reservations.
    assert_eq!(
        inv.order(Order::created("6", 2, Product::Underpants, 20, 1.0)),
        [(s("6"), Pass)]
    );
    assert_eq!(inv.reserved(Product::Underpants), Some(20));

    // The new row is the absolute level 12, not 10 + 12: two more jumpers are free.
    inv.stock(Product::Jumpers, 12);
    assert_eq!(inv.order(jumpers("7", 2)), [(s("7"), Pass)]);
    assert_eq!(inv.order(jumpers("8", 1)), [(s("8"), Fail)]);
    assert_eq!(inv.reserved(Product::Jumpers), Some(12));

    // A lower level than what is reserved fails everything; reservations stay.
    inv.stock(Product::Jumpers, 5);
    assert_eq!(inv.order(jumpers("9", 1)), [(s("9"), Fail)]);
    assert_eq!(inv.reserved(Product::Jumpers), Some(12));
}

#[test]
fn orders_reserve_stock_until_it_is_exhausted_and_a_new_absolute_level_frees_more() {
    exhaust_then_restock(1);
}

#[test]
fn reservations_are_per_product_across_three_partitions() {
    // Orders keyed by order id land on any partition; re-keyed by product they meet the
    // product's stock row and reservations in one task.
    exhaust_then_restock(3);
}

#[test]
fn orders_for_unstocked_products_get_no_result() {
    let driver = driver(3);
    let inv = Inventory { driver: &driver };
    inv.stock(Product::Jumpers, 10);
    // The populator never stocks STOCKINGS: its orders stay unvalidated.
    assert!(inv
        .order(Order::created("1", 1, Product::Stockings, 1, 1.0))
        .is_empty());
    assert_eq!(inv.reserved(Product::Stockings), None);
    // A later stock row does not revisit earlier orders; new orders are checked.
    inv.stock(Product::Stockings, 1);
    assert!(inv.results().is_empty());
    assert_eq!(
        inv.order(Order::created("2", 1, Product::Stockings, 1, 1.0)),
        [(s("2"), Pass)]
    );
    // A deleted stock row (tombstone) makes the product unstocked again.
    driver
        .input_topic(WAREHOUSE_INVENTORY, StringSerde, Nullable(I32Serde))
        .pipe_input(s("STOCKINGS"), None);
    assert!(inv
        .order(Order::created("3", 1, Product::Stockings, 1, 1.0))
        .is_empty());
}

#[test]
fn only_created_orders_are_checked_and_reserve() {
    let driver = driver(1);
    let inv = Inventory { driver: &driver };
    inv.stock(Product::Jumpers, 3);
    let order = jumpers("1", 2);
    assert_eq!(inv.order(order.clone()), [(s("1"), Pass)]);
    // The aggregator writes the final state back to orders.v1; it must not reserve again.
    for state in [
        OrderState::Validated,
        OrderState::Failed,
        OrderState::Shipped,
    ] {
        assert!(inv.order(order.in_state(state)).is_empty());
    }
    assert_eq!(inv.reserved(Product::Jumpers), Some(2));
    assert_eq!(inv.order(jumpers("2", 1)), [(s("2"), Pass)]);
}

#[test]
fn negative_quantities_pass_the_formula_but_never_decrease_reservations() {
    let driver = driver(1);
    let inv = Inventory { driver: &driver };
    inv.stock(Product::Jumpers, 2);
    assert_eq!(inv.order(jumpers("1", 2)), [(s("1"), Pass)]);
    assert_eq!(inv.order(jumpers("2", -5)), [(s("2"), Pass)]);
    assert_eq!(inv.reserved(Product::Jumpers), Some(2));
    assert_eq!(inv.order(jumpers("3", 1)), [(s("3"), Fail)]);
}

#[test]
fn reservations_are_logged_as_eight_byte_longs_keyed_by_product_name() {
    let driver = driver(1);
    let inv = Inventory { driver: &driver };
    inv.stock(Product::Jumpers, 10);
    inv.order(jumpers("1", 4));
    inv.order(jumpers("2", 7)); // fails: nothing logged
    inv.order(jumpers("3", 6));
    let logged: Vec<(Vec<u8>, Option<Vec<u8>>)> = driver
        .output_topic(
            &format!("{APP}-{RESERVED_STOCK}-changelog"),
            streams_core::serde::BytesSerde,
            Nullable(streams_core::serde::BytesSerde),
        )
        .read_key_values();
    assert_eq!(
        logged,
        [
            (b"JUMPERS".to_vec(), Some(4i64.to_be_bytes().to_vec())),
            (b"JUMPERS".to_vec(), Some(10i64.to_be_bytes().to_vec())),
        ]
    );
    // Stock levels are read as Java's IntegerSerializer writes them.
    driver
        .input_topic(
            WAREHOUSE_INVENTORY,
            StringSerde,
            streams_core::serde::BytesSerde,
        )
        .pipe_input(s("UNDERPANTS"), 75i32.to_be_bytes().to_vec());
    assert_eq!(
        inv.order(Order::created("4", 1, Product::Underpants, 75, 1.0)),
        [(s("4"), Pass)]
    );
}
