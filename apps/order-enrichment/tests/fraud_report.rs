//! The order-enrichment binary on the broker and registry, two instances of it: four
//! orders of one customer within 30 seconds appear as one alert with count 4 in the
//! fraud report, two orders of another customer do not, and both instances answer the
//! same report (each holds part of the windows; the router fans out). Orders are
//! enriched with their customer on `orders-enriched.v1`. Start the services with
//! `dev/test`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use orders_platform::records::{Customer, EnrichedOrder, Order, Product};
use orders_platform::serdes::PlatformSerdes;
use serde_json::Value;
use service_kit::service::registry;
use service_kit::ServiceConfig;
use streams_core::serde::Serde;
use streams_test_support::{
    bootstrap, consume_to_end, free_port, produce_keyed, registry_url, require_broker,
    require_registry, within, ChaosProcess, Isolation, TestTopic,
};

fn customer(id: i64) -> Customer {
    Customer {
        id,
        first_name: format!("First{id}"),
        last_name: format!("Last{id}"),
        email: format!("customer{id}@example.com"),
        address: format!("{id} Main Street"),
        level: "silver".into(),
    }
}

/// Sleeps past the next 30-second boundary if one is less than 3 s away, so that
/// orders produced now share one window.
fn away_from_a_window_boundary() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let into_window = now % 30_000;
    if into_window > 27_000 {
        std::thread::sleep(Duration::from_millis(30_000 - into_window + 100));
    }
}

#[test]
fn both_instances_report_four_orders_in_a_window_as_one_alert() {
    within(Duration::from_secs(240), || {
        require_broker();
        require_registry();
        let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
        let config = ServiceConfig::on_cluster(bootstrap(), registry_url(), &prefix);
        let topics = config.topics();
        let _cleanup: Vec<TestTopic> = [
            topics.orders.clone(),
            topics.customers.clone(),
            topics.orders_enriched.clone(),
            format!("{prefix}order-enrichment-dead-letters"),
        ]
        .iter()
        .map(|t| TestTopic::adopt(t))
        .collect();
        let states: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
        let mut instances: Vec<ChaosProcess> = (0..2)
            .map(|i| {
                let mut instance = ChaosProcess::platform_service(
                    &format!("enrichment-{i}"),
                    env!("CARGO_BIN_EXE_order-enrichment"),
                    &prefix,
                    ports[i],
                    states[i].path(),
                )
                .env(
                    "PLATFORM_APPLICATION_SERVER",
                    format!("127.0.0.1:{}", free_port()),
                )
                .env("PLATFORM_SESSION_TIMEOUT_MS", "6000");
                instance.start();
                instance
            })
            .collect();

        let serdes = PlatformSerdes::avro(registry(&config, &[]).unwrap()).unwrap();
        produce_keyed(
            &topics.customers,
            [customer(1), customer(2)].iter().map(|c| {
                let value = serdes.customer.serialize(&topics.customers, c).unwrap();
                (c.id.to_be_bytes().to_vec(), value.unwrap())
            }),
        );
        // Both instances have joined and read the customers once the report answers.
        let client = reqwest::blocking::Client::new();
        let report = |port: u16, query: &str| {
            client
                .get(format!("http://127.0.0.1:{port}/fraud{query}"))
                .send()
                .and_then(|r| Ok((r.status().as_u16(), r.text()?)))
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ports.iter().all(|p| matches!(report(*p, ""), Ok((200, _)))) {
            assert!(
                Instant::now() < deadline,
                "the reports never answered: {:?}",
                ports.iter().map(|p| report(*p, "")).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        std::thread::sleep(Duration::from_secs(1));

        away_from_a_window_boundary();
        let orders: Vec<Order> = (0..4)
            .map(|i| Order::created(&format!("c1-{i}"), 1, Product::Jumpers, 1, 1.0))
            .chain((0..2).map(|i| Order::created(&format!("c2-{i}"), 2, Product::Jumpers, 1, 1.0)))
            .collect();
        produce_keyed(
            &topics.orders,
            orders.iter().map(|o| {
                let value = serdes.order.serialize(&topics.orders, o).unwrap();
                (o.id.clone().into_bytes(), value.unwrap())
            }),
        );

        let deadline = Instant::now() + Duration::from_secs(60);
        let answers = loop {
            let answers: Vec<Value> = ports
                .iter()
                .filter_map(|p| match report(*p, "?limit=5") {
                    Ok((200, body)) => serde_json::from_str(&body).ok(),
                    _ => None,
                })
                .collect();
            let complete = answers.len() == 2
                && answers
                    .iter()
                    .all(|a| a.as_array().is_some_and(|alerts| !alerts.is_empty()));
            if complete {
                break answers;
            }
            assert!(Instant::now() < deadline, "no alert in time: {answers:?}");
            std::thread::sleep(Duration::from_millis(300));
        };
        assert_eq!(
            answers[0], answers[1],
            "both instances answer the same report"
        );
        let alerts = answers[0].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "two orders are no alert: {alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert["customerId"], 1);
        assert_eq!(alert["lastName"], "Last1");
        assert_eq!(alert["firstName"], "First1");
        assert_eq!(alert["counts"], 4);
        let start = alert["windowStart"].as_str().unwrap();
        let end = alert["windowEnd"].as_str().unwrap();
        let parse = |t: &str| humantime::parse_rfc3339(t).unwrap();
        assert_eq!(
            parse(end).duration_since(parse(start)).unwrap(),
            Duration::from_secs(30)
        );

        let (status, body) = report(ports[1], "?limit=zero").unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("limit"), "{body}");

        let enriched = consume_to_end(
            &topics.orders_enriched,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        );
        let enriched: Vec<EnrichedOrder> = enriched
            .iter()
            .map(|r| {
                serdes
                    .enriched_order
                    .deserialize(&topics.orders_enriched, r.value.as_deref())
                    .unwrap()
            })
            .collect();
        assert_eq!(enriched.len(), orders.len());
        assert!(enriched
            .iter()
            .all(|e| e.last_name.as_deref() == Some(&format!("Last{}", e.customer_id))));

        for instance in &mut instances {
            let status = instance.terminate(Duration::from_secs(30));
            assert!(status.success(), "{}", instance.log_tail(20));
        }
    });
}
