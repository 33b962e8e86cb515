//! The checks and the aggregator together on the real broker and schema registry, as
//! their services run them (Avro values in the registry's wire format, exactly-once,
//! dead-letter topic for records that do not decode): CREATED orders written to
//! `orders.v1` end VALIDATED or FAILED there, as the reference's acceptance scenarios
//! 4 to 8 say (posting through the orders service is the next step; here the orders
//! are produced as it will produce them). Start the broker and registry with
//! `dev/test` (or `dev/kafka start` and `dev/registry start`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orders_platform::records::{Order, OrderState, Product};
use orders_platform::serdes::PlatformSerdes;
use orders_platform::topics::PlatformTopics;
use service_kit::embedded::EmbeddedChecks;
use service_kit::ServiceConfig;
use streams_test_support::{
    bootstrap, consume_to_end, produce_keyed, registry_url, require_broker, require_registry,
    within, Isolation, TestTopic,
};

const PARTITIONS: i32 = 3;

struct Platform {
    topics: PlatformTopics,
    serdes: PlatformSerdes,
    dead_letters: String,
    _checks: EmbeddedChecks,
    _cleanup: Vec<TestTopic>,
    _dir: tempfile::TempDir,
}

impl Platform {
    fn start(prefix: &str) -> Platform {
        let config = ServiceConfig {
            partitions: PARTITIONS,
            ..ServiceConfig::on_cluster(bootstrap(), registry_url(), prefix)
        };
        let dir = tempfile::tempdir().unwrap();
        let checks = EmbeddedChecks::start(&config, dir.path()).expect("the checks start");
        let topics = config.topics();
        let cleanup = [
            &topics.orders,
            &topics.order_validations,
            &topics.warehouse_inventory,
            &checks.dead_letters,
        ]
        .iter()
        .map(|n| TestTopic::adopt(n))
        .collect();
        Platform {
            serdes: checks.serdes.clone(),
            dead_letters: checks.dead_letters.clone(),
            topics,
            _checks: checks,
            _cleanup: cleanup,
            _dir: dir,
        }
    }

    fn stock(&self, product: Product, level: i32) {
        produce_keyed(
            &self.topics.warehouse_inventory,
            [(
                product.name().as_bytes().to_vec(),
                level.to_be_bytes().to_vec(),
            )],
        );
    }

    fn post(&self, orders: &[Order]) {
        let records: Vec<(Vec<u8>, Vec<u8>)> = orders
            .iter()
            .map(|o| {
                let value = self
                    .serdes
                    .order
                    .serialize(&self.topics.orders, o)
                    .unwrap()
                    .unwrap();
                (o.id.clone().into_bytes(), value)
            })
            .collect();
        produce_keyed(&self.topics.orders, records);
    }

    /// Every order event on `orders.v1` (read committed), by order id in offset order.
    fn events(&self) -> BTreeMap<String, Vec<OrderState>> {
        let mut events: BTreeMap<String, Vec<OrderState>> = BTreeMap::new();
        let records = consume_to_end(
            &self.topics.orders,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        );
        for record in records {
            let Ok(order) = self
                .serdes
                .order
                .deserialize(&self.topics.orders, record.value.as_deref())
            else {
                continue; // the garbage records of the bad-input check
            };
            events.entry(order.id).or_default().push(order.state);
        }
        events
    }

    /// Waits until each of `ids` has a final state; returns every order's events.
    fn wait_final(&self, ids: &[String]) -> BTreeMap<String, Vec<OrderState>> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let events = self.events();
            let pending: Vec<&String> = ids
                .iter()
                .filter(|id| {
                    !events.get(*id).is_some_and(|states| {
                        states
                            .iter()
                            .any(|s| matches!(s, OrderState::Validated | OrderState::Failed))
                    })
                })
                .collect();
            if pending.is_empty() {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "orders without a final state: {pending:?}; events: {events:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn final_state(events: &BTreeMap<String, Vec<OrderState>>, id: &str) -> OrderState {
    let states = &events[id];
    assert_eq!(states[0], OrderState::Created, "{id}: {states:?}");
    assert_eq!(
        states.len(),
        2,
        "order {id} has one CREATED and one final event: {states:?}"
    );
    states[1]
}

#[test]
fn created_orders_end_validated_or_failed_by_the_rules() {
    within(Duration::from_secs(240), || {
        require_broker();
        require_registry();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let platform = Platform::start(&format!("it-{run}-"));
        // Scenario 4/5: stock UNDERPANTS 75 and JUMPERS 10; ten orders for one JUMPERS
        // each all end VALIDATED.
        platform.stock(Product::Underpants, 75);
        platform.stock(Product::Jumpers, 10);
        std::thread::sleep(Duration::from_millis(500));
        let ids: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
        let orders: Vec<Order> = ids
            .iter()
            .map(|id| Order::created(id, 2, Product::Jumpers, 1, 1.0))
            .collect();
        platform.post(&orders);
        let events = platform.wait_final(&ids);
        for id in &ids {
            assert_eq!(final_state(&events, id), OrderState::Validated, "{id}");
        }

        // Scenario 6: JUMPERS are all reserved now; the next JUMPERS order fails.
        // Scenario 7: quantity −1 fails; quantity 3 at 5.0 (UNDERPANTS) passes.
        // A record that does not decode goes to the dead-letter topic, and the good
        // orders around it still flow.
        platform.post(&[Order::created("sold-out", 2, Product::Jumpers, 1, 1.0)]);
        produce_keyed(
            &platform.topics.orders,
            [
                // Magic byte 0, then a schema id the registry never gave.
                (
                    b"garbage".to_vec(),
                    b"\x00\x7f\xff\xff\x07not avro".to_vec(),
                ),
                // Not the registry's wire format at all.
                (b"wrong-magic".to_vec(), b"{\"id\":\"json\"}".to_vec()),
            ],
        );
        // A truncated validation (magic byte, no schema id) among the checks' results.
        produce_keyed(
            &platform.topics.order_validations,
            [(b"truncated".to_vec(), b"\x00\x00".to_vec())],
        );
        platform.post(&[
            Order::created("negative", 3, Product::Underpants, -1, 1.0),
            Order::created("three", 4, Product::Underpants, 3, 5.0),
        ]);
        // Fraud: customer 5 reaches 2000 in one session.
        platform.post(&[
            Order::created("big-1", 5, Product::Underpants, 10, 150.0),
            Order::created("big-2", 5, Product::Underpants, 4, 150.0),
        ]);
        let later: Vec<String> = ["sold-out", "negative", "three", "big-1", "big-2"]
            .map(String::from)
            .to_vec();
        let events = platform.wait_final(&later);
        assert_eq!(final_state(&events, "sold-out"), OrderState::Failed);
        assert_eq!(final_state(&events, "negative"), OrderState::Failed);
        assert_eq!(final_state(&events, "three"), OrderState::Validated);
        assert_eq!(
            final_state(&events, "big-1"),
            OrderState::Validated,
            "1500 is under the limit"
        );
        assert_eq!(
            final_state(&events, "big-2"),
            OrderState::Failed,
            "2100 in the session"
        );
        let dead = consume_to_end(
            &platform.dead_letters,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        );
        assert!(
            dead.iter()
                .any(|r| r.key.as_deref() == Some(b"garbage".as_slice())),
            "the undecodable order is dead-lettered (by each service reading orders): {} records",
            dead.len()
        );
        assert!(
            dead.iter()
                .any(|r| r.key.as_deref() == Some(b"wrong-magic".as_slice())),
            "an order without the wire format's magic byte is dead-lettered"
        );
        assert!(
            dead.iter()
                .any(|r| r.key.as_deref() == Some(b"truncated".as_slice())),
            "the undecodable validation is dead-lettered by the aggregator"
        );
        // Scenario 8: the topic holds exactly one CREATED and one final record per order.
        assert_eq!(events.len(), ids.len() + later.len());
    });
}
