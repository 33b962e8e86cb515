//! The counting application (`counting_app`) under repeated SIGKILLs: two instances
//! count 100,000 keyed records (1,000 keys × 100) over 3 partitions while the input is
//! fed in rounds, and one of them (picked at random) is killed and started again at
//! random moments. Under exactly_once_v2 a read-committed reader must see, per key,
//! exactly the updates 1, 2, ..., 100: no update duplicated by the replay after a kill,
//! none lost. Under at-least-once (fewer kills) every count must end at or above the
//! truth.
//!
//! Start the broker with `dev/kafka start`; see the measurements with
//! `cargo test -p streams-examples --test eos_count_kills -- --nocapture`. Set
//! `CHAOS_SEED` to replay a run's kill timing and choice of victims.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{
    assert_exact_sequences, counting_instance, latest, rounds, spread, wait_balanced,
    wait_converged, wait_sole_owner, Guarantee,
};
use streams_test_support::{
    produce_keyed, require_broker, within, ChaosProcess, ChaosRng, Isolation, TestTopic,
};

const KEYS: usize = 1_000;
const PER_KEY: usize = 100;
const PARTITIONS: i32 = 3;
const TASKS: usize = PARTITIONS as usize;
/// Rounds (one record per key each) produced per batch, and the pause between batches:
/// 20 batches over about a minute, so the kills fall while input still arrives.
const ROUNDS_PER_BATCH: usize = 5;
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(3000);

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
    ];
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
    let feeder = std::thread::spawn(move || {
        for batch in 0..PER_KEY / ROUNDS_PER_BATCH {
            let from = batch * ROUNDS_PER_BATCH;
            produce_keyed(&input_name, rounds(KEYS, from, from + ROUNDS_PER_BATCH));
            std::thread::sleep(PAUSE_BETWEEN_BATCHES);
        }
        feed_started.elapsed()
    });

    let mut takeovers = Vec::new();
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
        dead.kill();
        let takeover = wait_sole_owner(alive, TASKS, Duration::from_secs(60));
        eprintln!(
            "{guarantee:?}: kill {} of `{}` at {:.1?}; `{}` runs all tasks {takeover:.1?} later",
            kill + 1,
            dead.name(),
            started.elapsed(),
            alive.name()
        );
        takeovers.push(takeover);
        std::thread::sleep(rng.duration_between(Duration::ZERO, Duration::from_secs(2)));
        dead.start();
        wait_balanced(&mut [dead, alive], TASKS, Duration::from_secs(60));
    }
    let fed_in = feeder.join().expect("feeding the input failed");
    eprintln!(
        "{guarantee:?}: fed {} records in {fed_in:.1?}; {kills} kills done at {:.1?}",
        KEYS * PER_KEY,
        started.elapsed()
    );

    let isolation = match guarantee {
        Guarantee::ExactlyOnceV2 => Isolation::ReadCommitted,
        Guarantee::AtLeastOnce => Isolation::ReadUncommitted,
    };
    let converge_started = Instant::now();
    let counts = wait_converged(
        output.name(),
        isolation,
        KEYS,
        PER_KEY,
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
        KEYS * PER_KEY,
        spread(takeovers.clone())
    );
    match guarantee {
        Guarantee::ExactlyOnceV2 => {
            let wrong: Vec<(&String, &i64)> =
                last.iter().filter(|(_, v)| **v != PER_KEY as i64).collect();
            assert!(
                wrong.is_empty() && last.len() == KEYS,
                "{} keys do not end at exactly {PER_KEY}: {:?}",
                wrong.len(),
                &wrong[..wrong.len().min(10)]
            );
            assert_exact_sequences(&counts, KEYS, PER_KEY);
        }
        Guarantee::AtLeastOnce => {
            assert_eq!(last.len(), KEYS, "every key has a count");
            assert!(
                last.values().all(|v| *v >= PER_KEY as i64),
                "a count below the truth: records were lost"
            );
            eprintln!(
                "{guarantee:?}: {} records counted twice across {} keys",
                sum - (KEYS * PER_KEY) as i64,
                last.values().filter(|v| **v > PER_KEY as i64).count()
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
