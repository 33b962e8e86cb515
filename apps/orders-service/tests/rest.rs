//! The orders service's HTTP contract, with real service processes against the real
//! broker and registry (the checks and the aggregator run inside the test): the
//! acceptance scenarios 1 to 6 of the reference through REST, bad requests, two
//! instances answering for each other's orders, and an instance killed with SIGKILL.
//! Start the broker and registry with `dev/test`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orders_platform::records::{Order, OrderState, Product};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use service_kit::embedded::EmbeddedChecks;
use service_kit::ServiceConfig;
use streams_test_support::{
    bootstrap, consume_to_end, free_port, produce_keyed, registry_url, require_broker,
    require_registry, within, ChaosProcess, Isolation, TestTopic,
};

/// One orders-service process.
struct Instance {
    process: ChaosProcess,
    port: u16,
    _state: tempfile::TempDir,
}

impl Instance {
    fn start(name: &str, prefix: &str) -> Instance {
        let port = free_port();
        let state = tempfile::tempdir().unwrap();
        let mut process = ChaosProcess::platform_service(
            name,
            env!("CARGO_BIN_EXE_orders-service"),
            prefix,
            port,
            state.path(),
        )
        .env(
            "PLATFORM_APPLICATION_SERVER",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("PLATFORM_SESSION_TIMEOUT_MS", "6000");
        process.start();
        let instance = Instance {
            process,
            port,
            _state: state,
        };
        instance.wait_healthy();
        instance
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn wait_healthy(&self) {
        let client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = client
                .get(self.url("/health"))
                .send()
                .ok()
                .and_then(|r| r.text().ok())
                .is_some_and(|body| body.contains("\"Running\""));
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "instance never healthy:\n{}",
                self.process.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn order_json(id: &str, customer: i64, product: &str, quantity: i32, price: f64) -> Value {
    json!({"id": id, "customerId": customer, "product": product, "quantity": quantity, "price": price})
}

fn post(client: &Client, instance: &Instance, body: &Value) -> reqwest::blocking::Response {
    client
        .post(instance.url("/v1/orders"))
        .json(body)
        .send()
        .unwrap()
}

fn get(client: &Client, instance: &Instance, path: &str) -> (StatusCode, Value) {
    let response = client.get(instance.url(path)).send().unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

struct Setup {
    prefix: String,
    config: ServiceConfig,
    _cleanup: Vec<TestTopic>,
}

fn setup() -> Setup {
    require_broker();
    require_registry();
    let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
    let config = ServiceConfig {
        session_timeout_ms: Some(6000),
        ..ServiceConfig::on_cluster(bootstrap(), registry_url(), &prefix)
    };
    let topics = config.topics();
    let cleanup = [
        topics.orders.clone(),
        topics.order_validations.clone(),
        topics.warehouse_inventory.clone(),
        format!("{prefix}orders-service-dead-letters"),
        format!("{prefix}checks-dead-letters"),
    ]
    .iter()
    .map(|t| TestTopic::adopt(t))
    .collect();
    Setup {
        prefix,
        config,
        _cleanup: cleanup,
    }
}

#[test]
fn the_rest_contract_holds_on_either_instance_and_bad_requests_write_nothing() {
    within(Duration::from_secs(180), || {
        let setup = setup();
        let a = Instance::start("orders-a", &setup.prefix);
        let b = Instance::start("orders-b", &setup.prefix);
        let client = Client::new();

        // Scenario 1 and 2: posted on one instance, the same order from both.
        let response = post(&client, &a, &order_json("1", 2, "JUMPERS", 10, 100.0));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["location"], "/v1/orders/1");
        let expected =
            serde_json::to_value(Order::created("1", 2, Product::Jumpers, 10, 100.0)).unwrap();
        for instance in [&a, &b] {
            let (status, body) = get(&client, instance, "/v1/orders/1?timeout=10000");
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body, expected);
        }
        // A trailing slash is accepted too.
        let response = client
            .post(b.url("/v1/orders/"))
            .json(&order_json("2", 3, "UNDERPANTS", 1, 1.0))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);

        // Scenario 3: an id never posted times out with a message.
        let started = Instant::now();
        let (status, body) = get(&client, &a, "/v1/orders/never?timeout=100");
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(
            body["error"].as_str().unwrap().contains("timed out"),
            "{body}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));

        // Bad requests: 4xx with a JSON error naming the field, nothing written.
        let before = consume_to_end(
            &setup.config.topics().orders,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        )
        .len();
        let bad: Vec<(&str, String, Option<&str>)> = vec![
            ("malformed JSON", "{\"id\":".into(), Some("id")),
            ("wrong type", json!({"id":"9","customerId":"two","product":"JUMPERS","quantity":1,"price":1.0}).to_string(), Some("customerId")),
            ("unknown product", json!({"id":"9","customerId":2,"product":"SOCKS","quantity":1,"price":1.0}).to_string(), Some("product")),
            ("unknown state", json!({"id":"9","customerId":2,"state":"LOST","product":"JUMPERS","quantity":1,"price":1.0}).to_string(), Some("state")),
            ("negative id", json!({"id":"-1","customerId":2,"product":"JUMPERS","quantity":1,"price":1.0}).to_string(), Some("id")),
            ("missing id", json!({"customerId":2,"product":"JUMPERS","quantity":1,"price":1.0}).to_string(), None),
        ];
        for (what, body, field) in bad {
            let response = client
                .post(a.url("/v1/orders"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
            let error: Value = response.json().unwrap();
            assert!(
                !error["error"].as_str().unwrap().is_empty(),
                "{what}: {error}"
            );
            if let Some(field) = field {
                assert_eq!(error["field"], field, "{what}: {error}");
            } else {
                assert!(
                    error["error"].as_str().unwrap().contains("id"),
                    "{what}: {error}"
                );
            }
        }
        let huge = json!({"id":"9","customerId":2,"product":"JUMPERS","quantity":1,"price":1.0,"pad":"x".repeat(100_000)});
        // The server answers before reading the whole body and closes that connection:
        // a client of its own keeps it out of the shared pool.
        let response = post(&Client::new(), &a, &huge);
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let (status, body) = get(&client, &a, "/v1/orders/1?timeout=soon");
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("timeout"))
        );
        let after = consume_to_end(
            &setup.config.topics().orders,
            Isolation::ReadCommitted,
            Duration::from_secs(30),
        )
        .len();
        assert_eq!(before, after, "bad requests wrote nothing");
    });
}

#[test]
fn orders_posted_to_two_instances_validate_and_stay_readable_when_one_is_killed() {
    within(Duration::from_secs(300), || {
        const ORDERS: usize = 200;
        let setup = setup();
        let state = tempfile::tempdir().unwrap();
        let _checks = EmbeddedChecks::start(&setup.config, state.path()).expect("the checks start");
        let a = Instance::start("orders-a", &setup.prefix);
        let mut b = Instance::start("orders-b", &setup.prefix);
        let inventory = setup.config.topics().warehouse_inventory;
        let client = Client::new();

        // Scenario 6 first: no JUMPERS in stock, a JUMPERS order ends FAILED.
        produce_keyed(
            &inventory,
            [(b"JUMPERS".to_vec(), 0i32.to_be_bytes().to_vec())],
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            post(&client, &a, &order_json("no-stock", 1, "JUMPERS", 1, 1.0)).status(),
            StatusCode::CREATED
        );
        let (status, body) = get(&client, &b, "/v1/orders/no-stock/validated?timeout=60000");
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::OK, Some("FAILED")),
            "{body}"
        );

        // Scenario 4 and 5 at scale: stock, then 200 orders round-robin over both
        // instances, each /validated answered VALIDATED (by the other instance too).
        produce_keyed(
            &inventory,
            [
                (b"JUMPERS".to_vec(), 1000i32.to_be_bytes().to_vec()),
                (b"UNDERPANTS".to_vec(), 1000i32.to_be_bytes().to_vec()),
            ],
        );
        std::thread::sleep(Duration::from_millis(500));
        let instances = Arc::new([a.port, b.port]);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (instances, next) = (instances.clone(), next.clone());
                std::thread::spawn(move || {
                    let client = Client::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ORDERS {
                            return;
                        }
                        let (to, from) = (instances[i % 2], instances[(i + 1) % 2]);
                        let product = if i % 2 == 0 { "JUMPERS" } else { "UNDERPANTS" };
                        let body =
                            order_json(&format!("o{i}"), 10 + (i % 7) as i64, product, 1, 1.0);
                        let response = client
                            .post(format!("http://127.0.0.1:{to}/v1/orders"))
                            .json(&body)
                            .send()
                            .unwrap();
                        assert_eq!(response.status(), StatusCode::CREATED, "order {i}");
                        let url = format!(
                            "http://127.0.0.1:{from}/v1/orders/o{i}/validated?timeout=60000"
                        );
                        let answer: Value = client.get(url).send().unwrap().json().unwrap();
                        assert_eq!(answer["state"], "VALIDATED", "order {i}: {answer}");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("every order validated");
        }
        eprintln!(
            "{ORDERS} orders posted and validated through two instances in {:.1?}",
            started.elapsed()
        );
        for i in (0..ORDERS).step_by(13) {
            for instance in [&a, &b] {
                let (status, body) =
                    get(&client, instance, &format!("/v1/orders/o{i}?timeout=10000"));
                assert_eq!(
                    (status, body["state"].as_str()),
                    (StatusCode::OK, Some("VALIDATED"))
                );
            }
        }

        // b dies; a answers for every order once it took b's partitions over.
        b.process.kill();
        let killed = Instant::now();
        for i in 0..ORDERS {
            let (status, body) = get(&client, &a, &format!("/v1/orders/o{i}?timeout=60000"));
            assert_eq!(status, StatusCode::OK, "order {i} after the kill: {body}");
            assert_eq!(
                serde_json::from_value::<Order>(body).unwrap().state,
                OrderState::Validated
            );
        }
        eprintln!(
            "every order readable from the survivor {:.1?} after SIGKILL",
            killed.elapsed()
        );
    });
}
