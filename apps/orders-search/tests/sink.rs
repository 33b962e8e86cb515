//! The indexing sink against the real broker, registry and engine: every order event
//! becomes one document per (id, state), replays add none, offsets are committed once
//! indexed, and a record that does not decode is dead-lettered without stopping its
//! partition. Start the broker, registry and engine with `dev/test` (or
//! `dev/kafka start`, `dev/registry start`, `dev/opensearch start`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::link::Link;
use common::{engine_url, read_dead_letters, wait_until, Platform};
use orders_platform::records::{Order, OrderState, Product};
use serde_json::Value;
use streams_core::runtime::error_handling::{HEADER_EXCEPTION, HEADER_OFFSET, HEADER_TOPIC};
use streams_test_support::within;

#[test]
fn every_event_is_indexed_once_per_order_and_state_and_replays_add_nothing() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let service = platform.start();
        let mut events = Vec::new();
        for i in 1..=6 {
            let order = Order::created(&format!("o{i}"), i, Product::ALL[i as usize % 3], 1, 10.0);
            events.push(order.clone());
            match i {
                1..=3 => events.push(order.in_state(OrderState::Validated)),
                4 => events.push(order.in_state(OrderState::Failed)),
                _ => {}
            }
        }
        assert_eq!(events.len(), 10);
        let delivered = platform.produce(&events);
        wait_until(Duration::from_secs(60), "10 documents are indexed", || {
            (service.count() == 10).then_some(())
        });

        // One document per (id, state), carrying the order, its time and its place.
        let (status, body) = service.get("/api/orders?limit=100");
        assert_eq!(status, 200, "{body}");
        let documents = body["orders"].as_array().unwrap();
        let keys: BTreeSet<(String, String)> = documents
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap().into(),
                    d["state"].as_str().unwrap().into(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> = events
            .iter()
            .map(|o| {
                (
                    o.id.clone(),
                    serde_json::to_value(o.state)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .into(),
                )
            })
            .collect();
        assert_eq!(keys, expected);
        let first = documents
            .iter()
            .find(|d| d["id"] == "o1" && d["state"] == "CREATED")
            .unwrap();
        assert_eq!(first["customerId"], 1);
        assert_eq!(first["product"], "UNDERPANTS");
        assert_eq!(first["quantity"], 1);
        assert_eq!(first["price"], 10.0);
        assert_eq!(first["partition"], i64::from(delivered[0].partition));
        assert_eq!(first["offset"], delivered[0].offset);
        assert!(first["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        assert!(
            first["@timestamp"].as_str().unwrap().ends_with('Z'),
            "{first}"
        );

        // The same records delivered again: documents overwritten, none added.
        wait_until(
            Duration::from_secs(10),
            "the sink counts 10 documents",
            || (service.status().snapshot().indexed == 10).then_some(()),
        );
        platform.produce(&events);
        wait_until(
            Duration::from_secs(60),
            "the replayed records are indexed",
            || (service.status().snapshot().indexed >= 20).then_some(()),
        );
        assert_eq!(service.count(), 10, "a replay must not add documents");
        platform.wait_committed_to_end();
        let snapshot = service.status().snapshot();
        assert!(snapshot.running);
        assert_eq!(snapshot.dead_lettered, 0);
    });
}

#[test]
fn a_record_that_does_not_decode_is_dead_lettered_and_the_good_ones_are_indexed() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let service = platform.start();
        let good_1 = Order::created("g1", 7, Product::Jumpers, 2, 5.0);
        let good_2 = Order::created("g2", 7, Product::Stockings, 1, 3.0);
        // One key, so one partition: the garbage sits between the good records.
        let key = b"same-partition".to_vec();
        let not_avro = b"this is not avro".to_vec();
        // The wire format's magic byte, then a schema id no registry knows.
        let unknown_schema = vec![0, 0x7f, 0xff, 0xff, 0x01, 2, 4, 6];
        let delivered = platform.produce_raw(vec![
            (key.clone(), platform.encode(&good_1)),
            (key.clone(), not_avro.clone()),
            (key.clone(), unknown_schema.clone()),
            (key.clone(), platform.encode(&good_2)),
        ]);
        assert!(delivered
            .iter()
            .all(|d| d.partition == delivered[0].partition));

        wait_until(
            Duration::from_secs(60),
            "the two good orders are indexed",
            || (service.count() == 2).then_some(()),
        );
        let letters = read_dead_letters(&platform.dead_letter_topic(), 2);
        assert_eq!(letters[0].value.as_deref(), Some(not_avro.as_slice()));
        assert_eq!(letters[1].value.as_deref(), Some(unknown_schema.as_slice()));
        for (letter, original) in letters.iter().zip(&delivered[1..3]) {
            assert_eq!(letter.key.as_deref(), Some(key.as_slice()));
            assert_eq!(letter.headers[HEADER_EXCEPTION], "deserialization");
            assert_eq!(letter.headers[HEADER_TOPIC], platform.orders_topic());
            assert_eq!(letter.headers[HEADER_OFFSET], original.offset.to_string());
        }
        let (_, body) = service.get("/api/orders");
        let ids: BTreeSet<&str> = body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["id"].as_str())
            .collect();
        assert_eq!(ids, BTreeSet::from(["g1", "g2"]));
        // The partition moved past the garbage: everything is committed.
        platform.wait_committed_to_end();
        let snapshot = service.status().snapshot();
        assert_eq!(snapshot.dead_lettered, 2);
        assert!(snapshot.running, "{snapshot:?}");
        let (status, health) = service.get("/health");
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["consumer"]["deadLettered"], Value::from(2));
    });
}

#[test]
fn nothing_is_committed_while_the_engine_does_not_acknowledge() {
    within(Duration::from_secs(180), || {
        let mut platform = Platform::new();
        let link = Link::to(engine_url().trim_start_matches("http://"));
        platform.search.engine_url = link.url();
        // Short, so the test also sees the sink give a batch up and start over.
        platform.search.retry_timeout_ms = 1500;
        let service = platform.start();
        platform.produce(&[Order::created("before", 1, Product::Jumpers, 1, 1.0)]);
        wait_until(
            Duration::from_secs(60),
            "the first order is indexed",
            || (service.count() == 1).then_some(()),
        );
        platform.wait_committed_to_end();
        let committed_before = platform.committed(&platform.group());

        link.cut();
        let during: Vec<Order> = (1..=3)
            .map(|i| Order::created(&format!("during-{i}"), i, Product::Underpants, 1, 1.0))
            .collect();
        platform.produce(&during);
        wait_until(Duration::from_secs(30), "the sink gives a batch up", || {
            (service.status().snapshot().restarts >= 1).then_some(())
        });
        assert_eq!(
            platform.committed(&platform.group()),
            committed_before,
            "offsets were committed for documents the engine never acknowledged"
        );
        assert_eq!(service.count(), 1);
        let (status, health) = service.get("/health");
        assert_eq!(status, 503, "{health}");
        assert_eq!(health["engine"]["reachable"], false, "{health}");

        link.restore();
        wait_until(
            Duration::from_secs(60),
            "the orders are indexed once the engine is back",
            || (service.count() == 4).then_some(()),
        );
        platform.wait_committed_to_end();
        let (status, health) = service.get("/health");
        assert_eq!(status, 200, "{health}");
    });
}
