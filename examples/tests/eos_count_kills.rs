//! The counting application (`counting_app`) under repeated SIGKILLs: two instances
//! count keyed records (1,000 keys, one record per key a round) over 3 partitions while
//! the input is fed without pause, and one of them (picked at random) is killed and
//! started again at random moments. Every kill must land while input is still fed and,
//! for all but at most one, while the victim has work in flight: under exactly_once_v2
//! records of an open transaction on its output partitions, under at-least-once input it
//! has not committed. Under exactly_once_v2 a read-committed reader must then see, per
//! key, counts that only go up and end at exactly N (N the rounds fed): no update repeated
//! by the replay after a kill, none lost (the record cache merges the updates of a key
//! between commits, so not every count is seen). Under at-least-once (fewer kills) every count must end
//! at or above the truth.
//!
//! Start the broker with `dev/kafka start`; see the measurements with
//! `cargo test -p streams-examples --test eos_count_kills -- --nocapture`. Set
//! `CHAOS_SEED` to replay a run's kill timing and choice of victims.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{
    assert_exact_sequences, assert_faults_under_load, counting_instance, latest, rounds,
    running_tasks, spread, task_partitions, wait_balanced, wait_converged, wait_in_flight,
    wait_sole_owner, Fault, Feeder, Guarantee,
};
use streams_test_support::{
    produce_keyed, require_broker, within, ChaosProcess, ChaosRng, InFlight, Isolation, TestTopic,
};

const KEYS: usize = 1_000;
const PARTITIONS: i32 = 3;
const TASKS: usize = PARTITIONS as usize;
/// One round (one record per key) per batch, a batch every half second: a steady stream
/// that lasts as long as the kills do (about 2,000 records/s, as fast as before).
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(500);
/// The feeder stops here even if not told to, to bound the test.
const MAX_ROUNDS: usize = 300;
/// How long a kill may wait for the victim to have work in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// The two tests of this file share the broker and the machine's two cores; one at a
/// time keeps their timings meaningful.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the scenario; returns the times from each kill to the partner running every task.
fn count_under_kills(guarantee: Guarantee, kills: usize, seed: u64) -> Vec<Duration> {
    require_broker();
    let started = Instant::now();
    let mut rng = ChaosRng::from_env_or(seed);
    let app = format!("it-count-kills-{}", uuid::Uuid::new_v4().simple());
    let input = TestTopic::new("count-kills-in", PARTITIONS);
    let output = TestTopic::new("count-kills-out", PARTITIONS);
    let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut instances = [
        counting_instance(
            "a",
            &app,
            input.name(),
            output.name(),
            dirs[0].path(),
            guarantee,
        ),
        counting_instance(
            "b",
            &app,
            input.name(),
            output.name(),
            dirs[1].path(),
            guarantee,
        ),
    ]
    .map(|p| match guarantee {
        // Without the record cache every update of a count goes out: a read-committed
        // reader must see each key count 1, 2, ..., N, each exactly once.
        Guarantee::ExactlyOnceV2 => p.env("STREAMS_STATESTORE_CACHE_MAX_BYTES", "0"),
        Guarantee::AtLeastOnce => p,
    });
    for p in instances.iter_mut() {
        p.start();
    }
    {
        let [a, b] = &mut instances;
        wait_balanced(&mut [a, b], TASKS, Duration::from_secs(60));
    }
    eprintln!(
        "{guarantee:?}: both instances run after {:.1?}",
        started.elapsed()
    );

    let input_name = input.name().to_string();
    let feed_started = Instant::now();
    let feeder = Feeder::start(PAUSE_BETWEEN_BATCHES, MAX_ROUNDS, move |round| {
        produce_keyed(&input_name, rounds(KEYS, round, round + 1));
    });
    let probe = InFlight::new();

    let mut takeovers = Vec::new();
    let mut faults = Vec::new();
    for kill in 0..kills {
        std::thread::sleep(
            rng.duration_between(Duration::from_millis(500), Duration::from_secs(4)),
        );
        let victim = rng.index(2);
        let (first, second) = instances.split_at_mut(1);
        let (dead, alive): (&mut ChaosProcess, &mut ChaosProcess) = if victim == 0 {
            (&mut first[0], &mut second[0])
        } else {
            (&mut second[0], &mut first[0])
        };
        // Task `0_p` reads input partition p and writes output partition p.
        let partitions = task_partitions(
            &running_tasks(dead).unwrap_or_else(|| dead.fail("no running tasks before the kill")),
            0,
        );
        // Under exactly-once, records of an open transaction; under at-least-once, input
        // not yet committed (commits every second, a round every half second: most of
        // the time there is some).
        let in_flight = || match guarantee {
            Guarantee::ExactlyOnceV2 => probe.open_transaction_records(output.name(), &partitions),
            Guarantee::AtLeastOnce => probe.uncommitted_input(&app, input.name(), &partitions),
        };
        wait_in_flight(IN_FLIGHT_WAIT, in_flight);
        let feeding = feeder.is_feeding();
        dead.kill();
        // Nobody writes or commits for the victim's partitions until its partner takes
        // them over, seconds later: what is in flight now was the victim's.
        let in_flight = in_flight();
        faults.push(Fault {
            what: format!("kill {} of {}", kill + 1, dead.name()),
            feeding,
            in_flight,
        });
        let takeover = wait_sole_owner(alive, TASKS, Duration::from_secs(60));
        eprintln!(
            "{guarantee:?}: kill {} of `{}` at {:.1?} ({:?}); `{}` runs all tasks \
             {takeover:.1?} later",
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
    let per_key = feeder.stop();
    eprintln!(
        "{guarantee:?}: fed {} records in {:.1?}; {kills} kills done at {:.1?}",
        KEYS * per_key,
        feed_started.elapsed(),
        started.elapsed()
    );
    match guarantee {
        Guarantee::ExactlyOnceV2 => {
            assert_faults_under_load(&faults, kills - 1, "an open transaction of the victim")
        }
        // As the module says: every kill but at most one with work in flight (the
        // victim may commit between the last sample and the kill).
        Guarantee::AtLeastOnce => {
            assert_faults_under_load(&faults, kills - 1, "input the victim had not committed")
        }
    }

    let isolation = match guarantee {
        Guarantee::ExactlyOnceV2 => Isolation::ReadCommitted,
        Guarantee::AtLeastOnce => Isolation::ReadUncommitted,
    };
    let converge_started = Instant::now();
    let counts = wait_converged(
        output.name(),
        isolation,
        KEYS,
        per_key,
        Duration::from_secs(90),
        "after the kills",
    );
    let last = latest(&counts);
    let sum: i64 = last.values().sum();
    eprintln!(
        "{guarantee:?}: converged {:.1?} after the feeding and the kills ended: {} output records, sum of \
         latest counts {sum} for {} records; takeover after a kill: {}",
        converge_started.elapsed(),
        counts.len(),
        KEYS * per_key,
        spread(takeovers.clone())
    );
    match guarantee {
        Guarantee::ExactlyOnceV2 => {
            let wrong: Vec<(&String, &i64)> =
                last.iter().filter(|(_, v)| **v != per_key as i64).collect();
            assert!(
                wrong.is_empty() && last.len() == KEYS,
                "{} keys do not end at exactly {per_key}: {:?}",
                wrong.len(),
                &wrong[..wrong.len().min(10)]
            );
            assert_exact_sequences(&counts, KEYS, per_key);
        }
        Guarantee::AtLeastOnce => {
            assert_eq!(last.len(), KEYS, "every key has a count");
            assert!(
                last.values().all(|v| *v >= per_key as i64),
                "a count below the truth: records were lost"
            );
            eprintln!(
                "{guarantee:?}: {} records counted twice across {} keys",
                sum - (KEYS * per_key) as i64,
                last.values().filter(|v| **v > per_key as i64).count()
            );
        }
    }
    for p in instances.iter_mut() {
        let status = p.terminate(Duration::from_secs(40));
        assert!(status.success(), "`{}` exited with {status}", p.name());
    }
    eprintln!("{guarantee:?}: whole scenario {:.1?}", started.elapsed());
    takeovers
}

#[test]
fn exactly_once_counts_survive_five_kills_without_duplicates_or_gaps() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    within(Duration::from_secs(240), || {
        count_under_kills(Guarantee::ExactlyOnceV2, 5, 20_250_101)
    });
}

#[test]
fn at_least_once_counts_survive_two_kills_at_or_above_the_truth() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    within(Duration::from_secs(180), || {
        count_under_kills(Guarantee::AtLeastOnce, 2, 20_250_102)
    });
}
