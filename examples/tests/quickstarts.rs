//! Each quickstart binary, run as its README line says (`--sample`, against the
//! broker), produces the output its module documents. Start the broker with `dev/test`.

use std::time::{Duration, Instant};

use streams_test_support::{bootstrap, free_port, require_broker, within, ChaosProcess, TestTopic};

/// The quickstart `binary` with its sample input, on topics behind a fresh prefix;
/// the topics are deleted when the returned guard drops.
fn quickstart(
    name: &str,
    binary: &str,
    topics: &[&str],
    args: &[String],
) -> (ChaosProcess, Vec<TestTopic>) {
    require_broker();
    let prefix = format!("qs-{}-", uuid::Uuid::new_v4().simple());
    let state = std::env::temp_dir().join(format!("{prefix}state"));
    let mut process = ChaosProcess::new(name, binary)
        .arg("--sample")
        .arg("--prefix")
        .arg(prefix.clone())
        .arg("--state-dir")
        .arg(state.display().to_string())
        .env("KAFKA_BOOTSTRAP", bootstrap());
    for arg in args {
        process = process.arg(arg.clone());
    }
    process.start();
    let cleanup = topics
        .iter()
        .map(|t| TestTopic::adopt(&format!("{prefix}{t}")))
        .collect();
    (process, cleanup)
}

fn stop(mut process: ChaosProcess) {
    let status = process.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", process.log_tail(20));
}

#[test]
fn word_count_counts_the_sample_words() {
    within(Duration::from_secs(120), || {
        let (mut process, _topics) = quickstart(
            "word-count",
            env!("CARGO_BIN_EXE_word-count"),
            &["streams-plaintext-input", "streams-wordcount-output"],
            &[],
        );
        process.wait_for_line("COUNT kafka -> 3", Duration::from_secs(60));
        process.wait_for_line("COUNT streams -> 2", Duration::from_secs(10));
        stop(process);
    });
}

#[test]
fn purchase_enrichment_joins_the_catalogue_and_drops_unknown_products() {
    within(Duration::from_secs(120), || {
        let (mut process, _topics) = quickstart(
            "purchase-enrichment",
            env!("CARGO_BIN_EXE_purchase-enrichment"),
            &["products", "purchases", "enriched-purchases"],
            &[],
        );
        process.wait_for_line(
            r#""product":"Notebook","quantity":10,"total":32.0"#,
            Duration::from_secs(60),
        );
        process.wait_for_line(
            r#""product":"Desk lamp","quantity":2,"total":49.0"#,
            Duration::from_secs(10),
        );
        process.wait_for_line(r#""product":"Fountain pen""#, Duration::from_secs(10));
        let enriched = process
            .lines()
            .iter()
            .filter(|l| l.starts_with("ENRICHED"))
            .count();
        assert_eq!(
            enriched,
            3,
            "p9 is not in the catalogue: {:#?}",
            process.lines()
        );
        stop(process);
    });
}

#[test]
fn anomaly_detector_reports_alice_once_her_window_closes() {
    within(Duration::from_secs(120), || {
        let (mut process, _topics) = quickstart(
            "anomaly-detector",
            env!("CARGO_BIN_EXE_anomaly-detector"),
            &["clicks", "anomalous-users"],
            &[],
        );
        let line = process.wait_for_line(" -> 4 clicks", Duration::from_secs(60));
        let report = &process.lines()[line];
        assert!(report.starts_with("ANOMALY alice@"), "{report}");
        std::thread::sleep(Duration::from_secs(1));
        let anomalies: Vec<String> = process
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("ANOMALY"))
            .collect();
        assert_eq!(
            anomalies.len(),
            1,
            "bob and carol stay under three: {anomalies:?}"
        );
        stop(process);
    });
}

#[test]
fn both_query_service_instances_answer_every_page() {
    // (The two instances split the three partitions, so each page's count lives on one.)
    within(Duration::from_secs(150), || {
        let http = [free_port(), free_port()];
        let query = [free_port(), free_port()];
        let list = |ports: [u16; 2]| format!("{},{}", ports[0], ports[1]);
        let (mut process, _topics) = quickstart(
            "query-service",
            env!("CARGO_BIN_EXE_query-service"),
            &["page-views"],
            &[
                "--http-ports".into(),
                list(http),
                "--query-ports".into(),
                list(query),
            ],
        );
        process.wait_for_line("SERVING", Duration::from_secs(60));
        let client = reqwest::blocking::Client::new();
        let views = |port: u16, page: &str| -> Option<serde_json::Value> {
            let response = client
                .get(format!("http://127.0.0.1:{port}/views/{page}"))
                .send()
                .ok()?;
            response
                .status()
                .is_success()
                .then(|| response.json().ok())?
        };
        // Each instance answers for every page, its own or the other's.
        let deadline = Instant::now() + Duration::from_secs(60);
        for port in http {
            loop {
                let answer = views(port, "home");
                if answer.as_ref().is_some_and(|a| a["views"] == 4) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "home never reached 4 views on {port}: {answer:?}"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            assert_eq!(views(port, "docs").unwrap()["views"], 2);
            assert_eq!(views(port, "pricing").unwrap()["views"], 1);
            assert!(views(port, "never-viewed").is_none());
        }
        stop(process);
    });
}
