//! The join application (`join_app`: orders re-keyed by order id through a repartition
//! topic, joined with payments within one minute) under exactly_once_v2 while one of two
//! instances is killed with SIGKILL and started again three times. Orders and their
//! payments are fed without pause until the kills are done; every kill must land while
//! they are still fed and, for all but at most one, while the victim has records of an
//! open transaction on its join output partitions. Every order has one payment, so a
//! read-committed reader must see every expected join result exactly once: a replay after
//! a kill must neither repeat a pair (from the repartition topic or the join stores'
//! changelogs) nor lose one.
//!
//! Start the broker with `dev/kafka start`; see the measurements with
//! `cargo test -p streams-examples --test eos_join_kills -- --nocapture`. Set `CHAOS_SEED`
//! to replay a run's kill timing and choice of victims.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    assert_faults_under_load, running_tasks, spread, task_partitions, wait_balanced,
    wait_in_flight, wait_sole_owner, Fault, Feeder,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use streams_test_support::{
    bootstrap, client_config, consume_to_end, produce_keyed, require_broker, within, ChaosProcess,
    ChaosRng, InFlight, Isolation, TestTopic,
};

const CUSTOMERS: usize = 300;
/// Orders (and as many payments) per batch, and the pause after each: a steady stream
/// (400 orders/s, as before) that lasts as long as the kills do.
const BATCH: usize = 200;
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(500);
/// The feeder stops here even if not told to, to bound the test.
const MAX_BATCHES: usize = 200;
/// How long a kill may wait for the victim to have an open transaction.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);
const PARTITIONS: i32 = 3;
/// Two sub-topologies (orders up to the repartition topic; the join), a task each per
/// partition.
const TASKS: usize = 2 * PARTITIONS as usize;
const KILLS: usize = 3;

fn order_id(i: usize) -> String {
    format!("order-{i:06}")
}

fn order_value(i: usize) -> String {
    format!("{}:{}", order_id(i), 10 + i % 90)
}

fn payment_value(i: usize) -> String {
    format!("pay-{i:06}")
}

fn instance(name: &str, app: &str, topics: (&str, &str, &str), state_dir: &Path) -> ChaosProcess {
    ChaosProcess::new(name, env!("CARGO_BIN_EXE_join_app"))
        .env("APP_ID", app)
        .env("ORDERS_TOPIC", topics.0)
        .env("PAYMENTS_TOPIC", topics.1)
        .env("OUTPUT_TOPIC", topics.2)
        .env("STATE_DIR", state_dir.display().to_string())
        .env("KAFKA_BOOTSTRAP", bootstrap())
        .env("COMMIT_INTERVAL_MS", "100")
        .env("SESSION_TIMEOUT_MS", "6000")
        .env("STREAMS_PROCESSING_GUARANTEE", "exactly_once_v2")
        .ready_when("RUNNING")
        .ready_timeout(Duration::from_secs(90))
}

/// The application's internal topics (repartition topic, join stores' changelogs), to
/// delete them with the test's own topics.
fn internal_topics(app: &str) -> Vec<TestTopic> {
    let consumer: BaseConsumer = client_config().create().expect("a metadata client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("the broker's metadata");
    metadata
        .topics()
        .iter()
        .filter(|t| t.name().starts_with(app))
        .map(|t| TestTopic::adopt(t.name()))
        .collect()
}

/// Read-committed join results per order id, until there are `expected` and two reads
/// in a row agree.
fn wait_joined(topic: &str, expected: usize, timeout: Duration) -> HashMap<String, Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut previous = usize::MAX;
    loop {
        let records = consume_to_end(topic, Isolation::ReadCommitted, Duration::from_secs(60));
        if (records.len() >= expected && records.len() == previous) || Instant::now() > deadline {
            let mut per: HashMap<String, Vec<String>> = HashMap::new();
            for r in &records {
                per.entry(r.key_str().to_string())
                    .or_default()
                    .push(r.value_str().to_string());
            }
            return per;
        }
        previous = records.len();
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[test]
fn every_order_payment_pair_is_joined_exactly_once_across_kills() {
    within(Duration::from_secs(240), || {
        require_broker();
        let started = Instant::now();
        let mut rng = ChaosRng::from_env_or(20_250_201);
        let app = format!("it-join-kills-{}", uuid::Uuid::new_v4().simple());
        let orders = TestTopic::new("join-kills-orders", PARTITIONS);
        let payments = TestTopic::new("join-kills-payments", PARTITIONS);
        let output = TestTopic::new("join-kills-out", PARTITIONS);
        let topics = (orders.name(), payments.name(), output.name());
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut instances = [
            instance("a", &app, topics, dirs[0].path()),
            instance("b", &app, topics, dirs[1].path()),
        ];
        for p in instances.iter_mut() {
            p.start();
        }
        {
            let [a, b] = &mut instances;
            wait_balanced(&mut [a, b], TASKS, Duration::from_secs(60));
        }
        let _internal = internal_topics(&app);
        eprintln!("both instances run after {:.1?}", started.elapsed());

        let (orders_name, payments_name) = (orders.name().to_string(), payments.name().to_string());
        let feeder = Feeder::start(PAUSE_BETWEEN_BATCHES, MAX_BATCHES, move |batch| {
            let batch = batch * BATCH..(batch + 1) * BATCH;
            produce_keyed(
                &orders_name,
                batch
                    .clone()
                    .map(|i| (format!("cust-{:03}", i % CUSTOMERS), order_value(i))),
            );
            produce_keyed(
                &payments_name,
                batch.map(|i| (order_id(i), payment_value(i))),
            );
        });
        let probe = InFlight::new();

        let mut takeovers = Vec::new();
        let mut faults = Vec::new();
        for kill in 0..KILLS {
            std::thread::sleep(
                rng.duration_between(Duration::from_millis(500), Duration::from_secs(4)),
            );
            let victim = rng.index(2);
            let (first, second) = instances.split_at_mut(1);
            let (dead, alive) = if victim == 0 {
                (&mut first[0], &mut second[0])
            } else {
                (&mut second[0], &mut first[0])
            };
            // Join task `1_p` writes output partition p (joined pairs keep the order id).
            let partitions = task_partitions(
                &running_tasks(dead)
                    .unwrap_or_else(|| dead.fail("no running tasks before the kill")),
                1,
            );
            wait_in_flight(IN_FLIGHT_WAIT, || {
                probe.open_transaction_records(output.name(), &partitions)
            });
            let feeding = feeder.is_feeding();
            dead.kill();
            // Nobody writes the victim's output partitions until its partner takes them
            // over, seconds later: an open transaction there now is the victim's.
            faults.push(Fault {
                what: format!("kill {} of {}", kill + 1, dead.name()),
                feeding,
                in_flight: probe.open_transaction_records(output.name(), &partitions),
            });
            let takeover = wait_sole_owner(alive, TASKS, Duration::from_secs(60));
            eprintln!(
                "kill {} of `{}` at {:.1?} ({:?}); `{}` runs all tasks {takeover:.1?} later",
                kill + 1,
                dead.name(),
                started.elapsed(),
                faults.last().expect("just pushed"),
                alive.name()
            );
            takeovers.push(takeover);
            std::thread::sleep(rng.duration_between(Duration::ZERO, Duration::from_secs(2)));
            dead.start();
            wait_balanced(&mut [dead, alive], TASKS, Duration::from_secs(60));
        }
        let orders_fed = feeder.stop() * BATCH;
        eprintln!(
            "fed {orders_fed} orders and payments; {KILLS} kills done at {:.1?}; takeovers: {}",
            started.elapsed(),
            spread(takeovers)
        );
        assert_faults_under_load(&faults, KILLS - 1, "an open transaction of the victim");

        let joined = wait_joined(output.name(), orders_fed, Duration::from_secs(90));
        let total: usize = joined.values().map(Vec::len).sum();
        let missing: Vec<String> = (0..orders_fed)
            .map(order_id)
            .filter(|id| !joined.contains_key(id))
            .collect();
        let repeated: Vec<(&String, &Vec<String>)> =
            joined.iter().filter(|(_, v)| v.len() > 1).collect();
        let wrong: Vec<(&String, &Vec<String>)> = joined
            .iter()
            .filter(|(id, v)| {
                let i: usize = id
                    .strip_prefix("order-")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                i >= orders_fed
                    || v.iter()
                        .any(|value| *value != format!("{}|{}", order_value(i), payment_value(i)))
            })
            .collect();
        eprintln!(
            "{total} committed join results for {orders_fed} orders at {:.1?}: {} missing, {} \
             repeated, {} wrong",
            started.elapsed(),
            missing.len(),
            repeated.len(),
            wrong.len()
        );
        assert!(
            missing.is_empty() && repeated.is_empty() && wrong.is_empty() && total == orders_fed,
            "every order must be joined with its payment exactly once: {} missing (e.g. {:?}), \
             {} repeated (e.g. {:?}), {} wrong (e.g. {:?}); {total} results",
            missing.len(),
            &missing[..missing.len().min(5)],
            repeated.len(),
            &repeated[..repeated.len().min(5)],
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        for p in instances.iter_mut() {
            let status = p.terminate(Duration::from_secs(40));
            assert!(status.success(), "`{}` exited with {status}", p.name());
        }
        eprintln!("whole test: {:.1?}", started.elapsed());
    });
}
