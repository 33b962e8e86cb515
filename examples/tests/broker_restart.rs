//! The counting application (`counting_app`, exactly_once_v2) while the broker itself
//! goes away: the test stops the broker with `dev/kafka stop` in the middle of the
//! input, waits 10 s, starts it again with `dev/kafka start` and keeps feeding. The stop
//! must land while the application still has input to count (checked just before it;
//! it waits a while for a transaction with records to be open too, and reports whether
//! one was, since the record cache writes output only at commits). The application must recover by itself (the same
//! process, never restarted) and a read-committed reader must see, per key, counts that
//! only go up (the record cache merges updates between commits) and end at exactly N.
//!
//! The test stops and starts the broker, so it needs the one `dev/kafka` manages, on the
//! port the tests use (`KAFKA_BOOTSTRAP`, default 127.0.0.1:9092): start it with
//! `dev/kafka start`. It fails at once if `dev/kafka status` does not report that broker
//! running. Whatever happens, the broker is started again when the test ends. Other tests
//! using the broker at the same time would see it disappear: run this one alone.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_exact_sequences, counting_instance, rounds, wait_converged, Guarantee};
use streams_test_support::{
    bootstrap, produce_keyed, require_broker, within, InFlight, Isolation, TestTopic,
};

const KEYS: usize = 1_000;
/// Rounds (one record per key each) fed at most before the broker stops, and after it
/// is back.
const ROUNDS_BEFORE: usize = 300;
const ROUNDS_AFTER: usize = 30;
const PARTITIONS: i32 = 3;
const DOWN_FOR: Duration = Duration::from_secs(10);
/// How long the stop may wait for the application to have a transaction open.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// Runs `dev/kafka <command>`, returning whether it succeeded and what it printed.
fn dev_kafka(script: &PathBuf, command: &str) -> (bool, String) {
    let output = Command::new(script)
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{} {command}`: {e}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text.trim().to_string())
}

/// Stops and starts the broker through `dev/kafka`; shared between the test body and the
/// guard that restarts the broker when the test ends.
#[derive(Clone)]
struct Broker {
    script: PathBuf,
    stopped: Arc<AtomicBool>,
}

impl Broker {
    /// Fails unless `dev/kafka status` reports the broker running on the configured port.
    fn managed_by_dev_kafka() -> Broker {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dev/kafka");
        let address = bootstrap();
        let port = address.rsplit(':').next().unwrap_or_default().to_string();
        let (running, status) = dev_kafka(&script, "status");
        assert!(
            running && status.contains("running") && status.contains(&format!(":{port}")),
            "this test stops and restarts the broker, so it needs the broker started by \
             `dev/kafka start` on the configured address {address}; `dev/kafka status` says: \
             {status:?}"
        );
        Broker {
            script,
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let (ok, out) = dev_kafka(&self.script, "stop");
        assert!(ok, "`dev/kafka stop` failed: {out}");
        eprintln!("broker stopped: {out}");
    }

    fn start(&self) {
        let (ok, out) = dev_kafka(&self.script, "start");
        assert!(ok, "`dev/kafka start` failed: {out}");
        self.stopped.store(false, Ordering::SeqCst);
        eprintln!("broker started: {out}");
    }
}

/// Starts the broker again if the test stopped it and did not get to start it (a failed
/// assertion or a time-out while it was down).
struct RestartOnDrop(Broker);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.0.stopped.load(Ordering::SeqCst) {
            eprintln!("the test ended with the broker stopped: starting it again");
            let (ok, out) = dev_kafka(&self.0.script, "start");
            eprintln!(
                "`dev/kafka start` {}: {out}",
                if ok { "succeeded" } else { "FAILED" }
            );
        }
    }
}

#[test]
fn exactly_once_counting_recovers_from_a_broker_restart_by_itself() {
    let broker = Broker::managed_by_dev_kafka();
    let _guard = RestartOnDrop(broker.clone());
    within(Duration::from_secs(240), move || {
        require_broker();
        let started = Instant::now();
        let app = format!("it-broker-restart-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("broker-restart-in", PARTITIONS);
        let output = TestTopic::new("broker-restart-out", PARTITIONS);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dir = tempfile::tempdir().unwrap();
        let mut app_process = counting_instance(
            "counter",
            &app,
            input.name(),
            output.name(),
            dir.path(),
            Guarantee::ExactlyOnceV2,
        );
        app_process.start();
        let pid = app_process.pid();
        eprintln!("running after {:.1?}", started.elapsed());

        // Input arrives steadily, a round (one record per key) at a time, so that the
        // application always has input it has not committed yet: the stop lands while it
        // is still counting.
        let feeding = Arc::new(AtomicBool::new(true));
        let feeder = {
            let (topic, feeding) = (input.name().to_string(), feeding.clone());
            std::thread::spawn(move || {
                let mut round = 0;
                while round < ROUNDS_BEFORE && (round < 5 || feeding.load(Ordering::SeqCst)) {
                    produce_keyed(&topic, rounds(KEYS, round, round + 1));
                    round += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                round
            })
        };
        let probe = InFlight::new();
        let all: Vec<i32> = (0..PARTITIONS).collect();
        // Let the application count and commit for a while before the stop.
        std::thread::sleep(Duration::from_millis(1500));
        // Wait a while for a transaction with records to be open too (the record cache
        // writes output only at commits, so it is caught only now and then).
        let deadline = Instant::now() + IN_FLIGHT_WAIT;
        // Input not yet committed is the must: past that deadline, the first sample with
        // some ends the wait (commits are quick, so an open transaction is rare to catch).
        let must_deadline = deadline + IN_FLIGHT_WAIT;
        let (open, backlog) = loop {
            let backlog = probe.uncommitted_input(&app, input.name(), &all);
            let open = probe.open_transaction_records(output.name(), &all);
            let some = |m: &BTreeMap<i32, i64>| m.values().any(|n| *n > 0);
            let now = Instant::now();
            if (some(&open) && some(&backlog))
                || (now >= deadline && some(&backlog))
                || now >= must_deadline
            {
                break (open, backlog);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        feeding.store(false, Ordering::SeqCst);
        let rounds_before = feeder.join().expect("feeding the input failed");
        broker.stop();
        eprintln!(
            "broker stopped after {rounds_before} rounds with records of open transactions \
             {open:?} and input not yet committed {backlog:?}"
        );
        assert!(
            backlog.values().any(|n| *n > 0),
            "the application had counted all its input when the broker stopped: {backlog:?}"
        );
        let stopped_at = Instant::now();
        std::thread::sleep(DOWN_FOR);
        assert!(
            app_process.is_running(),
            "the application exited while the broker was down"
        );
        broker.start();
        eprintln!(
            "broker back {:.1?} after it was stopped",
            stopped_at.elapsed()
        );
        let state_lines_while_down: Vec<String> = app_process
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("STATE"))
            .collect();

        for from in (rounds_before..rounds_before + ROUNDS_AFTER).step_by(5) {
            produce_keyed(input.name(), rounds(KEYS, from, from + 5));
            std::thread::sleep(Duration::from_millis(500));
        }
        let per_key = rounds_before + ROUNDS_AFTER;
        let counts = wait_converged(
            output.name(),
            Isolation::ReadCommitted,
            KEYS,
            per_key,
            Duration::from_secs(120),
            "after the broker restart",
        );
        eprintln!(
            "converged {:.1?} after the broker was stopped: {} committed updates; state \
             lines: {state_lines_while_down:?}",
            stopped_at.elapsed(),
            counts.len()
        );
        assert!(
            app_process.is_running() && app_process.pid() == pid && app_process.starts() == 1,
            "the application must recover without a restart"
        );
        assert_exact_sequences(&counts, KEYS, per_key);
        let status = app_process.terminate(Duration::from_secs(40));
        assert!(status.success(), "the application exited with {status}");
        eprintln!("whole test: {:.1?}", started.elapsed());
    });
}
