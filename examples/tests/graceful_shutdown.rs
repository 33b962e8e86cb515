//! A graceful shutdown under load: the counting application (`counting_app`,
//! exactly_once_v2) is fed without pause, with a backlog of input, when it gets SIGTERM.
//! It must exit by itself within the close timeout, printing `CLOSED`, and a restart
//! must carry on so that a read-committed reader sees, per key, counts that only go up
//! and end at exactly N: nothing lost or counted twice across the shutdown.
//!
//! Start the broker with `dev/kafka start`; see the measurements with
//! `cargo test -p streams-examples --test graceful_shutdown -- --nocapture`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_exact_sequences, counting_instance, rounds, wait_converged, Guarantee};
use streams_test_support::{
    consume_with, produce_keyed, require_broker, within, ConsumeOptions, Isolation, TestTopic,
};

const KEYS: usize = 1_000;
const PARTITIONS: i32 = 3;
/// Rounds (one record per key each) per produce call of the feeder.
const ROUNDS_PER_BATCH: usize = 1;
/// Pause between produce calls: a steady stream the application keeps up with (about
/// 20,000 records/s at most), rather than one burst fed before it even started.
const FEED_PAUSE: Duration = Duration::from_millis(50);
/// The feeder stops here even if not told to, to bound the test.
const MAX_ROUNDS: usize = 600;
/// How long the application gets to close after SIGTERM (it closes its streams with 30 s).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn sigterm_under_load_closes_in_time_and_a_restart_counts_exactly() {
    within(Duration::from_secs(240), || {
        require_broker();
        let started = Instant::now();
        let app = format!("it-graceful-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("graceful-in", PARTITIONS);
        let output = TestTopic::new("graceful-out", PARTITIONS);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dir = tempfile::tempdir().unwrap();
        let mut counter = counting_instance(
            "counter",
            &app,
            input.name(),
            output.name(),
            dir.path(),
            Guarantee::ExactlyOnceV2,
        );
        counter.start();

        let stop = Arc::new(AtomicBool::new(false));
        let (input_name, stop_feeding) = (input.name().to_string(), stop.clone());
        let feeder = std::thread::spawn(move || {
            let mut fed = 0;
            while fed < MAX_ROUNDS && !stop_feeding.load(Ordering::SeqCst) {
                produce_keyed(&input_name, rounds(KEYS, fed, fed + ROUNDS_PER_BATCH));
                fed += ROUNDS_PER_BATCH;
                std::thread::sleep(FEED_PAUSE);
            }
            fed
        });

        // Under load: committed output flows and input keeps arriving.
        let load_deadline = Instant::now() + Duration::from_secs(60);
        // Read only as far as needed: with output flowing, "to the end" never arrives.
        let committed_so_far = || {
            consume_with(
                output.name(),
                ConsumeOptions {
                    max_records: 3 * KEYS,
                    timeout: Duration::from_secs(5),
                    isolation: Isolation::ReadCommitted,
                    stop_at_end: false,
                },
            )
            .len()
        };
        while committed_so_far() < 3 * KEYS {
            assert!(
                Instant::now() < load_deadline,
                "fewer than {} committed updates within 60 s",
                3 * KEYS
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let sigterm_at = Instant::now();
        let status = counter.terminate(CLOSE_TIMEOUT);
        let closed_in = sigterm_at.elapsed();
        assert!(status.success(), "the application exited with {status}");
        assert!(
            counter.lines().iter().any(|l| l == "CLOSED"),
            "no CLOSED line after SIGTERM: {:?}",
            counter.lines()
        );
        let committed_at_close = common::read_counts(output.name(), Isolation::ReadCommitted).len();
        assert!(
            !feeder.is_finished(),
            "the input was all fed before SIGTERM: no load at shutdown"
        );
        eprintln!(
            "closed {closed_in:.1?} after SIGTERM, {:.1?} into the test, with {committed_at_close} \
             committed updates",
            started.elapsed()
        );

        std::thread::sleep(Duration::from_secs(1));
        counter.start();
        std::thread::sleep(Duration::from_secs(5));
        stop.store(true, Ordering::SeqCst);
        let fed = feeder.join().expect("feeding the input failed");
        eprintln!(
            "fed {fed} rounds ({} records) by {:.1?}",
            fed * KEYS,
            started.elapsed()
        );
        let counts = wait_converged(
            output.name(),
            Isolation::ReadCommitted,
            KEYS,
            fed,
            Duration::from_secs(120),
            "after the restart",
        );
        assert_exact_sequences(&counts, KEYS, fed);
        let status = counter.terminate(Duration::from_secs(40));
        assert!(
            status.success(),
            "the restarted application exited with {status}"
        );
        eprintln!("whole test: {:.1?}", started.elapsed());
    });
}
