//! Standby failover with real processes against the real broker: two instances of the
//! counting application (`counting_app`) with one standby replica each; once the
//! survivor's standby of the other's task has caught up, the other is killed with
//! SIGKILL. The survivor takes the task over restoring only what its standby had not
//! applied, far fewer records than the changelog holds, and the counts go on from
//! where they were. The takeover time is printed.
//!
//! Start the broker with `dev/kafka start` (or run `dev/test`); see the figures with
//! `cargo test -p streams-examples --test standby_failover -- --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::{counting_instance, rounds, running_tasks, wait_balanced, wait_converged, Guarantee};
use streams_test_support::{
    produce_keyed, require_broker, within, ChaosProcess, Isolation, TestTopic,
};

const KEYS: usize = 100;
const ROUNDS: usize = 40;
const ROUNDS_AFTER: usize = 5;

/// The last `STANDBY` line of `p`: each standby as (task, lag, end).
fn standbys(p: &ChaosProcess) -> Vec<(String, i64, i64)> {
    let lines = p.lines();
    let Some(line) = lines.iter().rev().find(|l| l.starts_with("STANDBY ")) else {
        return Vec::new();
    };
    line["STANDBY ".len()..]
        .trim_matches(['[', ']'])
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| {
            let fields: Vec<&str> = s.trim_matches('"').split(':').collect();
            let number = |prefix: &str| -> i64 {
                fields
                    .iter()
                    .find_map(|f| f.strip_prefix(prefix))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("malformed standby {s:?}"))
            };
            (fields[0].to_string(), number("lag="), number("end="))
        })
        .collect()
}

/// Records restored according to `RESTORE-END` lines from line `from` on.
fn restored_since(p: &ChaosProcess, from: usize) -> u64 {
    p.lines()[from..]
        .iter()
        .filter_map(|l| l.strip_prefix("RESTORE-END "))
        .filter_map(|l| l.rsplit_once("restored=")?.1.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_standby_takes_a_killed_instance_s_task_over_without_a_full_restore() {
    within(Duration::from_secs(240), || {
        require_broker();
        let app = format!("standby-kill-{}", std::process::id());
        let input = TestTopic::new("standby-kill-input", 2);
        let output = TestTopic::new("standby-kill-output", 2);
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let start = |name: &str, dir: &std::path::Path| {
            let mut p = counting_instance(
                name,
                &app,
                input.name(),
                output.name(),
                dir,
                Guarantee::AtLeastOnce,
            )
            .env("STREAMS_NUM_STANDBY_REPLICAS", "1")
            // Every update reaches the changelog, so it holds many records per key.
            .env("STREAMS_STATESTORE_CACHE_MAX_BYTES", "0");
            p.start();
            p
        };
        let mut victim = start("victim", dirs[0].path());
        let mut survivor = start("survivor", dirs[1].path());
        let tasks = wait_balanced(
            &mut [&mut victim, &mut survivor],
            2,
            Duration::from_secs(60),
        );
        let victim_task = tasks[0][0].clone();

        produce_keyed(input.name(), rounds(KEYS, 0, ROUNDS));
        wait_converged(
            output.name(),
            Isolation::ReadCommitted,
            KEYS,
            ROUNDS,
            Duration::from_secs(90),
            "before the kill",
        );
        // The survivor's standby of the victim's task has applied its whole changelog.
        let deadline = Instant::now() + Duration::from_secs(60);
        let changelog_end = loop {
            let found = standbys(&survivor);
            if let [(task, 0, end)] = found.as_slice() {
                if *task == victim_task && *end > 0 {
                    break *end;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the standby never caught up: {found:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };

        let lines_before = survivor.lines().len();
        let killed = Instant::now();
        victim.kill();
        let deadline = Instant::now() + Duration::from_secs(90);
        while running_tasks(&survivor).is_none_or(|t| t.len() != 2) {
            assert!(
                Instant::now() < deadline,
                "the survivor never ran both tasks"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let takeover = killed.elapsed();
        let restored = restored_since(&survivor, lines_before);
        eprintln!(
            "standby failover: took over {victim_task} {takeover:.1?} after SIGKILL \
             (the session timeout is 6 s), restoring {restored} of {changelog_end} changelog records"
        );
        assert!(
            restored * 10 < changelog_end as u64,
            "restored {restored} of {changelog_end} changelog records: not from the standby"
        );

        // Counting goes on from the handed-over counts (at-least-once: never below).
        produce_keyed(input.name(), rounds(KEYS, ROUNDS, ROUNDS + ROUNDS_AFTER));
        wait_converged(
            output.name(),
            Isolation::ReadCommitted,
            KEYS,
            ROUNDS + ROUNDS_AFTER,
            Duration::from_secs(90),
            "after the takeover",
        );
        survivor.terminate(Duration::from_secs(30));
    });
}
