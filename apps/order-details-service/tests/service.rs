//! The service binary as deployments run it (the plumbing every platform service
//! shares): it creates its topics, answers `/health` with its state and `/metrics` in
//! Prometheus format, and stops gracefully on SIGTERM. Needs the broker and registry
//! (`dev/test`).

use std::time::{Duration, Instant};

use streams_test_support::{
    free_port, require_broker, require_registry, within, ChaosProcess, TestTopic,
};

#[test]
fn serves_health_and_metrics_and_stops_on_sigterm() {
    within(Duration::from_secs(120), || {
        require_broker();
        require_registry();
        let prefix = format!("it-{}-", uuid::Uuid::new_v4().simple());
        let port = free_port();
        let state = tempfile::tempdir().unwrap();
        let mut service = ChaosProcess::platform_service(
            "order-details",
            env!("CARGO_BIN_EXE_order-details-service"),
            &prefix,
            port,
            state.path(),
        );
        service.start();
        let _cleanup: Vec<TestTopic> = [
            "orders.v1",
            "order-validations.v1",
            "order-details-service-dead-letters",
        ]
        .iter()
        .map(|t| TestTopic::adopt(&format!("{prefix}{t}")))
        .collect();

        let client = reqwest::blocking::Client::new();
        let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let health = loop {
            let answer = client
                .get(url("/health"))
                .send()
                .and_then(|r| Ok((r.status(), r.text()?)));
            if let Ok((status, body)) = &answer {
                if status.is_success() && body.contains("\"Running\"") {
                    break body.clone();
                }
            }
            assert!(Instant::now() < deadline, "never healthy: {answer:?}");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(health.contains("order-details-service"), "{health}");
        // The runtime's metrics appear with its first commits.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = client.get(url("/metrics")).send().unwrap();
            assert!(response.status().is_success());
            let metrics = response.text().unwrap();
            if metrics.contains("streams_commit_latency_seconds") {
                break;
            }
            assert!(Instant::now() < deadline, "no runtime metrics: {metrics}");
            std::thread::sleep(Duration::from_millis(200));
        }

        let status = service.terminate(Duration::from_secs(30));
        assert!(
            status.success(),
            "exit status {status:?}; log:\n{}",
            service.log_tail(20)
        );
        assert!(
            client.get(url("/health")).send().is_err(),
            "the port is closed after the stop"
        );
    });
}
