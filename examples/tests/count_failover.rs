//! Failover of the counting application (`counting_app`) with real processes against
//! the real broker: two instances share the work, one is killed with SIGKILL halfway
//! through the input, the survivor takes its tasks over (restoring the count store from
//! its changelog), and the killed instance later comes back with its old state
//! directory. Under at-least-once every count must end at or above the truth; the
//! excess (records counted twice after the kill) is measured and printed.
//!
//! Start the broker with `dev/kafka start` (or run `dev/test`); see the measurements with
//! `cargo test -p streams-examples --test count_failover -- --nocapture`. Set
//! `CHAOS_SEED` to replay a run's kill timing and choice of victim.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    counting_instance, key, latest, read_counts, rounds, wait_balanced, wait_converged, Count,
    Guarantee,
};
use streams_test_support::{produce_keyed, require_broker, within, ChaosRng, Isolation, TestTopic};

const KEYS: usize = 500;
const PER_KEY: usize = 100;
const TOTAL: usize = KEYS * PER_KEY;
/// Records per key produced after the killed instance is back.
const PER_KEY_AFTER_RESTART: usize = 10;
const PARTITIONS: i32 = 3;

/// How many records of each key the output shows beyond the truth.
fn excess(latest: &HashMap<String, i64>, per_key: usize) -> (i64, usize, i64) {
    let extra: Vec<i64> = latest
        .values()
        .map(|v| v - per_key as i64)
        .filter(|e| *e > 0)
        .collect();
    (
        extra.iter().sum(),
        extra.len(),
        extra.iter().copied().max().unwrap_or(0),
    )
}

/// Places in the output where a key's count went down from one record to its next.
fn regressions(counts: &[Count]) -> Vec<(String, i64, i64, i32, i64)> {
    let mut last: HashMap<&str, i64> = HashMap::new();
    let mut found = Vec::new();
    for c in counts {
        if let Some(before) = last.insert(&c.key, c.value) {
            if c.value < before {
                found.push((c.key.clone(), before, c.value, c.partition, c.offset));
            }
        }
    }
    found
}

#[test]
fn a_killed_instance_is_taken_over_without_losing_counts_and_can_come_back() {
    within(Duration::from_secs(240), || {
        require_broker();
        let started = Instant::now();
        let mut rng = ChaosRng::from_env_or(20_240_611);
        let app = format!("it-count-failover-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("failover-in", PARTITIONS);
        let output = TestTopic::new("failover-out", PARTITIONS);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut a = counting_instance(
            "a",
            &app,
            input.name(),
            output.name(),
            dirs[0].path(),
            Guarantee::AtLeastOnce,
        );
        let mut b = counting_instance(
            "b",
            &app,
            input.name(),
            output.name(),
            dirs[1].path(),
            Guarantee::AtLeastOnce,
        );

        a.start();
        b.start();
        let tasks = wait_balanced(
            &mut [&mut a, &mut b],
            PARTITIONS as usize,
            Duration::from_secs(60),
        );
        eprintln!(
            "both instances run after {:.1?}: a={:?} b={:?}",
            started.elapsed(),
            tasks[0],
            tasks[1]
        );

        // First half; wait until counting is visibly under way.
        let produce_started = Instant::now();
        produce_keyed(input.name(), rounds(KEYS, 0, PER_KEY / 2));
        eprintln!(
            "produced {} records in {:.1?}",
            TOTAL / 2,
            produce_started.elapsed()
        );
        let progress_deadline = Instant::now() + Duration::from_secs(60);
        // Every key counted once: the record cache sends a key's latest count per commit,
        // so the first half shows at least one record per key.
        while read_counts(output.name(), Isolation::ReadUncommitted).len() < KEYS {
            assert!(
                Instant::now() < progress_deadline,
                "no progress in the output within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        // The rest of the input trickles in, one record per key at a time, so that the
        // instances are busy counting (with uncommitted work) when one of them is killed.
        let input_name = input.name().to_string();
        let producer = std::thread::spawn(move || {
            for round in PER_KEY / 2..PER_KEY {
                produce_keyed(&input_name, rounds(KEYS, round, round + 1));
                std::thread::sleep(Duration::from_millis(40));
            }
        });

        // Kill one of them at a random moment, without any chance to commit or close.
        let victim_index = rng.index(2);
        let delay = rng.duration_between(Duration::from_millis(200), Duration::from_millis(2000));
        std::thread::sleep(delay);
        let (victim, survivor) = if victim_index == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let survivor_lines_at_kill = survivor.lines().len();
        victim.kill();
        let killed_at = Instant::now();
        let output_at_kill = read_counts(output.name(), Isolation::ReadUncommitted).len();
        eprintln!(
            "killed `{}` with SIGKILL {delay:?} into the second half ({output_at_kill} output \
             records around the kill)",
            victim.name()
        );

        let takeover = wait_balanced(
            &mut [&mut *survivor],
            PARTITIONS as usize,
            Duration::from_secs(60),
        );
        let takeover_time = killed_at.elapsed();
        let restores: Vec<String> = survivor.lines()[survivor_lines_at_kill..]
            .iter()
            .filter(|l| l.starts_with("RESTORE-END"))
            .cloned()
            .collect();
        eprintln!(
            "`{}` runs all tasks {takeover_time:.1?} after the kill: {:?}; restores: {restores:?}",
            survivor.name(),
            takeover[0]
        );
        producer.join().expect("producing the second half failed");

        let counts = wait_converged(
            output.name(),
            Isolation::ReadUncommitted,
            KEYS,
            PER_KEY,
            Duration::from_secs(90),
            "after the kill",
        );
        let converged_after_kill = killed_at.elapsed();
        let before_restart = latest(&counts);
        assert_eq!(before_restart.len(), KEYS, "every key has a count");
        let sum: i64 = before_restart.values().sum();
        assert!(
            sum >= TOTAL as i64,
            "the latest counts add up to {sum} < {TOTAL}: records were lost"
        );
        let (extra, keys_with_extra, max_extra) = excess(&before_restart, PER_KEY);
        assert_eq!(sum - TOTAL as i64, extra, "no key below the truth");
        let output_regressions = regressions(&counts);
        eprintln!(
            "converged {converged_after_kill:.1?} after the kill: sum of latest counts {sum} for \
             {TOTAL} records, {extra} counted twice ({keys_with_extra} keys, at most {max_extra} \
             per key); {} output records; {} places where a count went down in the output \
             (allowed under at-least-once)",
            counts.len(),
            output_regressions.len()
        );

        // The killed instance comes back with its old state directory.
        let offsets_before_restart: HashMap<i32, i64> =
            counts.iter().fold(HashMap::new(), |mut ends, c| {
                let end = ends.entry(c.partition).or_insert(-1);
                *end = (*end).max(c.offset);
                ends
            });
        let restarted_at = Instant::now();
        victim.start();
        let tasks = wait_balanced(
            &mut [&mut *victim, &mut *survivor],
            PARTITIONS as usize,
            Duration::from_secs(60),
        );
        let victim_restores: Vec<String> = victim
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("RESTORE-"))
            .collect();
        eprintln!(
            "`{}` is back and the group settled {:.1?} later: {}={:?} {}={:?}; its restores: {victim_restores:?}",
            victim.name(),
            restarted_at.elapsed(),
            victim.name(),
            tasks[0],
            survivor.name(),
            tasks[1]
        );
        produce_keyed(
            input.name(),
            rounds(KEYS, PER_KEY, PER_KEY + PER_KEY_AFTER_RESTART),
        );
        let final_counts = wait_converged(
            output.name(),
            Isolation::ReadUncommitted,
            KEYS,
            PER_KEY + PER_KEY_AFTER_RESTART,
            Duration::from_secs(60),
            "after the restart",
        );
        let after_restart = latest(&final_counts);
        // Every update after the restart starts from the count before it: a stale store
        // (an old checkpoint trusted without restoring the changelog tail) would go back.
        let went_back: Vec<&Count> = final_counts
            .iter()
            .filter(|c| {
                c.offset
                    > offsets_before_restart
                        .get(&c.partition)
                        .copied()
                        .unwrap_or(-1)
            })
            .filter(|c| c.value <= before_restart[&c.key])
            .collect();
        assert!(
            went_back.is_empty(),
            "{} counts after the restart are not above the count before it, e.g. {:?} \
             (before: {:?})",
            went_back.len(),
            &went_back[..went_back.len().min(5)],
            went_back
                .iter()
                .take(5)
                .map(|c| before_restart[&c.key])
                .collect::<Vec<_>>()
        );
        let short: Vec<(String, i64, i64)> = (0..KEYS)
            .map(key)
            .filter(|k| after_restart[k] < before_restart[k] + PER_KEY_AFTER_RESTART as i64)
            .map(|k| (k.clone(), before_restart[&k], after_restart[&k]))
            .collect();
        assert!(
            short.is_empty(),
            "{} keys did not count all {PER_KEY_AFTER_RESTART} records after the restart \
             (key, before, after): {:?}",
            short.len(),
            &short[..short.len().min(10)]
        );
        let final_sum: i64 = after_restart.values().sum();
        let truth = (KEYS * (PER_KEY + PER_KEY_AFTER_RESTART)) as i64;
        eprintln!(
            "after the restart: sum {final_sum} for {truth} records ({} in excess, {} more \
             than before the restart)",
            final_sum - truth,
            final_sum - truth - extra
        );

        // One stops on SIGTERM, the other when its stdin closes (what happens to it when
        // the test process dies); both close cleanly.
        let status = a.terminate(Duration::from_secs(40));
        assert!(status.success(), "`a` exited with {status} after SIGTERM");
        b.close_stdin();
        let status = b
            .wait_for_exit(Duration::from_secs(40))
            .unwrap_or_else(|| b.fail("still running 40 s after its stdin closed"));
        assert!(
            status.success(),
            "`b` exited with {status} after its stdin closed"
        );
        for p in [&a, &b] {
            assert!(
                p.lines().iter().any(|l| l == "CLOSED"),
                "`{}` did not close gracefully",
                p.name()
            );
        }
        eprintln!("whole test: {:.1?}", started.elapsed());
    });
}
