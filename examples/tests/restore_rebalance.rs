//! Rebalances in the middle of a restoration: a first instance of the counting
//! application (`counting_app`, exactly_once_v2) builds a large changelog (200,000
//! updates over 3 partitions) and stops; a fresh instance with an empty state directory
//! then restores every store, and while it is restoring (from its first `RESTORE-START`
//! line on) a second and a third instance join, so tasks move while being restored.
//! The first instance's `RESTORE-START`/`RESTORE-END` lines must show it: a restoration
//! it started before the others were launched was cut off by their joining (no
//! `RESTORE-END` before that changelog partition's restoration starts again or moves to
//! another instance). No instance may crash, no task may stay in `Restoring` (all run
//! within the bound), and after more input a read-committed reader must see, per key,
//! counts that only go up and end at exactly N.
//!
//! Start the broker with `dev/kafka start`; see the measurements with
//! `cargo test -p streams-examples --test restore_rebalance -- --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_exact_sequences, counting_instance, rounds, wait_balanced, wait_converged, Guarantee,
};
use streams_test_support::{produce_keyed, require_broker, within, Isolation, TestTopic};

const KEYS: usize = 20_000;
/// Rounds (one record per key) behind the changelog: 200,000 updates.
const ROUNDS_BEFORE: usize = 10;
/// Rounds produced once the three instances run.
const ROUNDS_AFTER: usize = 2;
const PARTITIONS: i32 = 3;
const TASKS: usize = PARTITIONS as usize;

/// The changelog partition a `RESTORE-START` or `RESTORE-END` line is about
/// (`<store> <topic>/<partition>`), and whether it starts a restoration.
fn restore_event(line: &str) -> Option<(String, bool)> {
    let (starts, rest) = if let Some(rest) = line.strip_prefix("RESTORE-START ") {
        (true, rest)
    } else {
        (false, line.strip_prefix("RESTORE-END ")?)
    };
    let mut words = rest.split(' ');
    let store = words.next()?;
    let partition = words.next()?;
    Some((format!("{store} {partition}"), starts))
}

/// Restorations that `lines` (one instance's stdout) show cut off, and that started
/// before line `started_before`: a `RESTORE-START` whose changelog partition sees no
/// `RESTORE-END` before its next `RESTORE-START` or the end of the lines. Returns the
/// cut-off `RESTORE-START` lines.
fn cut_off_restorations(lines: &[String], started_before: usize) -> Vec<String> {
    let mut open: std::collections::BTreeMap<String, usize> = Default::default();
    let mut cut_off = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some((partition, starts)) = restore_event(line) else {
            continue;
        };
        if let Some(started) = open.remove(&partition) {
            if starts && started < started_before {
                cut_off.push(lines[started].clone());
            }
        }
        if starts {
            open.insert(partition, index);
        }
    }
    cut_off.extend(
        open.into_values()
            .filter(|started| *started < started_before)
            .map(|started| lines[started].clone()),
    );
    cut_off
}

#[test]
fn instances_joining_during_a_restoration_neither_crash_nor_leave_tasks_restoring() {
    within(Duration::from_secs(240), || {
        require_broker();
        let started = Instant::now();
        let app = format!("it-restore-rebalance-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("restore-rebalance-in", PARTITIONS);
        let output = TestTopic::new("restore-rebalance-out", PARTITIONS);
        let _changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let instance = |name: &str, dir: usize| {
            counting_instance(
                name,
                &app,
                input.name(),
                output.name(),
                dirs[dir].path(),
                Guarantee::ExactlyOnceV2,
            )
            // A member hears of a joining one at its next heartbeat: within 0.2 s, not
            // 1 s, so the join lands while the restoration runs.
            .env("HEARTBEAT_INTERVAL_MS", "200")
        };

        // Build the changelog.
        let mut builder = instance("builder", 0);
        builder.start();
        produce_keyed(input.name(), rounds(KEYS, 0, ROUNDS_BEFORE));
        let built = wait_converged(
            output.name(),
            Isolation::ReadCommitted,
            KEYS,
            ROUNDS_BEFORE,
            Duration::from_secs(150),
            "building the changelog",
        );
        let status = builder.terminate(Duration::from_secs(40));
        assert!(status.success(), "the builder exited with {status}");
        eprintln!(
            "changelog of {} updates built in {:.1?}",
            built.len(),
            started.elapsed()
        );

        // A fresh instance restores everything; two more join while it restores.
        let restore_started = Instant::now();
        // Paced to 20,000 records/s, its restoration lasts about seven seconds, so that
        // the joins below land during it on any machine (unpaced it can end within the
        // joins' start: small fetches alone were not enough).
        let mut a = instance("a", 1).env("RESTORE_RECORDS_PER_SECOND", "20000");
        a.spawn();
        // Launch the others as soon as it starts restoring.
        let line = a.wait_for_line("RESTORE-START", Duration::from_secs(60));
        eprintln!(
            "`a` restores {:.1?} after its start: {}",
            restore_started.elapsed(),
            a.lines()[line]
        );
        let mut b = instance("b", 2);
        let mut c = instance("c", 3);
        b.spawn();
        c.spawn();
        let tasks = wait_balanced(
            &mut [&mut a, &mut b, &mut c],
            TASKS,
            Duration::from_secs(120),
        );
        let settled = restore_started.elapsed();
        let restores: Vec<String> = [&a, &b, &c]
            .iter()
            .flat_map(|p| {
                p.lines()
                    .into_iter()
                    .filter(|l| l.starts_with("RESTORE-"))
                    .map(|l| format!("{}: {l}", p.name()))
                    .collect::<Vec<_>>()
            })
            .collect();
        // The joins' rebalance: the first `Rebalancing` of `a` after it first ran. A
        // restoration started before it and not finished by it was cut off. (Counting
        // the lines read when the others were launched raced with `a`'s output.)
        let a_lines = a.lines();
        let rebalance = a_lines
            .iter()
            .position(|l| l == "RUNNING")
            .and_then(|running| {
                a_lines[running..]
                    .iter()
                    .position(|l| l.starts_with("STATE Rebalancing"))
                    .map(|i| running + i)
            })
            .unwrap_or(a_lines.len());
        let cut_off = cut_off_restorations(&a_lines, rebalance);
        eprintln!(
            "all three run one task each {settled:.1?} after `a` started: {tasks:?}; \
             restorations of `a` cut off by the joins: {cut_off:#?}; restores: {restores:#?}"
        );
        assert!(
            !cut_off.is_empty(),
            "`b` and `c` joined after `a` had finished restoring: no restoration `a` started \
             before they were launched was cut off; `a` printed {:#?}",
            a.lines()
        );

        produce_keyed(
            input.name(),
            rounds(KEYS, ROUNDS_BEFORE, ROUNDS_BEFORE + ROUNDS_AFTER),
        );
        let per_key = ROUNDS_BEFORE + ROUNDS_AFTER;
        let counts = wait_converged(
            output.name(),
            Isolation::ReadCommitted,
            KEYS,
            per_key,
            Duration::from_secs(90),
            "after the instances joined",
        );
        assert_exact_sequences(&counts, KEYS, per_key);
        for p in [&mut a, &mut b, &mut c] {
            let status = p.terminate(Duration::from_secs(40));
            assert!(status.success(), "`{}` exited with {status}", p.name());
        }
        eprintln!("whole test: {:.1?}", started.elapsed());
    });
}
