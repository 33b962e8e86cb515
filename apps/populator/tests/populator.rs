//! The populator against the real orders service, broker and registry: it stocks the
//! warehouse, posts its orders through REST (each then readable from the service) and
//! sends one payment per order, printing plain progress lines when not on a terminal.
//! Needs the broker and registry (`dev/test`) and the orders-service binary, which
//! `cargo test --workspace` builds beside this one.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use orders_platform::records::Payment;
use orders_platform::serdes::PlatformSerdes;
use service_kit::ServiceConfig;
use streams_core::serde::{CachedSchemaRegistry, SchemaRegistryConfig};
use streams_test_support::{
    bootstrap, consume_to_end, free_port, registry_url, require_broker, require_registry, within,
    ChaosProcess, Isolation, TestTopic,
};

/// The orders-service binary built beside the populator.
fn orders_service_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_populator")).with_file_name("orders-service");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p orders-service` (dev/test builds the workspace)",
        path.display()
    );
    path
}

#[test]
fn stocks_posts_orders_and_sends_their_payments() {
    within(Duration::from_secs(180), || {
        require_broker();
        require_registry();
        let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
        let config = ServiceConfig::on_cluster(bootstrap(), registry_url(), &prefix);
        let topics = config.topics();
        let _cleanup: Vec<TestTopic> = [
            topics.orders.clone(),
            topics.payments.clone(),
            topics.warehouse_inventory.clone(),
            format!("{prefix}orders-service-dead-letters"),
        ]
        .iter()
        .map(|t| TestTopic::adopt(t))
        .collect();
        let port = free_port();
        let state = tempfile::tempdir().unwrap();
        let mut service = ChaosProcess::platform_service(
            "orders-service",
            orders_service_binary(),
            &prefix,
            port,
            state.path(),
        )
        .env(
            "PLATFORM_APPLICATION_SERVER",
            format!("127.0.0.1:{}", free_port()),
        );
        service.start();
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .ok()
            .and_then(|r| r.text().ok())
            .is_some_and(|b| b.contains("\"Running\""))
        {
            assert!(
                Instant::now() < deadline,
                "the orders service never ran:\n{}",
                service.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        let output = Command::new(env!("CARGO_BIN_EXE_populator"))
            .args(["--rate", "20", "--count", "10", "--seed", "7"])
            .args(["--orders-url", &format!("http://127.0.0.1:{port}")])
            .env("KAFKA_BOOTSTRAP", bootstrap())
            .env("SCHEMA_REGISTRY_URL", registry_url())
            .env("PLATFORM_TOPIC_PREFIX", &prefix)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("done: orders sent 10, acknowledged 10, errors 0"),
            "{stderr}"
        );

        for id in 1..=10 {
            let order: serde_json::Value = client
                .get(format!(
                    "http://127.0.0.1:{port}/v1/orders/{id}?timeout=10000"
                ))
                .send()
                .unwrap()
                .json()
                .unwrap();
            assert_eq!(order["id"], id.to_string());
            assert_eq!(order["quantity"], 1);
            let customer = order["customerId"].as_i64().unwrap();
            assert!((0..=5).contains(&customer), "{order}");
        }
        let registry =
            CachedSchemaRegistry::new(&SchemaRegistryConfig::new(registry_url())).unwrap();
        let serdes = PlatformSerdes::avro(registry).unwrap();
        let payments: Vec<Payment> = consume_to_end(
            &topics.payments,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        )
        .iter()
        .map(|r| {
            serdes
                .payment
                .deserialize(&topics.payments, r.value.as_deref())
                .unwrap()
        })
        .collect();
        let mut paid: Vec<u64> = payments
            .iter()
            .map(|p| p.order_id.parse().unwrap())
            .collect();
        paid.sort();
        assert_eq!(paid, (1..=10).collect::<Vec<_>>());
        assert!(payments
            .iter()
            .all(|p| p.ccy == "CZK" && p.amount == 1000.0 && p.id == "Payment:1234"));
        let stock: Vec<(String, i32)> = consume_to_end(
            &topics.warehouse_inventory,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        )
        .iter()
        .map(|r| {
            (
                r.key_str().to_string(),
                i32::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap()),
            )
        })
        .collect();
        assert!(
            stock.contains(&("UNDERPANTS".to_string(), 20))
                && stock.contains(&("JUMPERS".to_string(), 10)),
            "{stock:?}"
        );
        service.terminate(Duration::from_secs(30));
    });
}
