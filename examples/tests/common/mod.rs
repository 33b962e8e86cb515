//! Shared pieces of the fault tests of the counting application (`counting_app`) and the
//! join application (`join_app`): starting instances, feeding keyed input in rounds,
//! reading the output back and checking it, watching the instances' `STATE` lines, and
//! recording that each fault hit while input was fed and work was in flight.
//!
//! Each fault scenario is a test binary of its own (`eos_count_kills`, `eos_join_kills`,
//! `broker_restart`, `restore_rebalance`, `graceful_shutdown`); not every binary uses every
//! helper.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use streams_test_support::{bootstrap, consume_to_end, ChaosProcess, Isolation};

/// Processing guarantee of an instance, as `STREAMS_PROCESSING_GUARANTEE` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    AtLeastOnce,
    ExactlyOnceV2,
}

impl Guarantee {
    pub fn env_value(self) -> &'static str {
        match self {
            Guarantee::AtLeastOnce => "at_least_once",
            Guarantee::ExactlyOnceV2 => "exactly_once_v2",
        }
    }

    /// Exactly-once commits every 100 ms (the library's default under EOS); at-least-once
    /// every second, as the failover test does.
    fn commit_interval_ms(self) -> &'static str {
        match self {
            Guarantee::AtLeastOnce => "1000",
            Guarantee::ExactlyOnceV2 => "100",
        }
    }
}

/// Keys are `key-0000` .. `key-<keys - 1>`.
pub fn key(k: usize) -> String {
    format!("key-{k:04}")
}

/// Rounds `from..to`, each with one record per key, so every partition gets work
/// throughout.
pub fn rounds(keys: usize, from: usize, to: usize) -> Vec<(String, String)> {
    (from..to)
        .flat_map(|round| (0..keys).map(move |k| (key(k), format!("{round}"))))
        .collect()
}

/// An instance of `counting_app` (not started) under `guarantee`, ready on `RUNNING`.
pub fn counting_instance(
    name: &str,
    app: &str,
    input: &str,
    output: &str,
    state_dir: &Path,
    guarantee: Guarantee,
) -> ChaosProcess {
    ChaosProcess::new(name, env!("CARGO_BIN_EXE_counting_app"))
        .env("APP_ID", app)
        .env("INPUT_TOPIC", input)
        .env("OUTPUT_TOPIC", output)
        .env("STATE_DIR", state_dir.display().to_string())
        .env("KAFKA_BOOTSTRAP", bootstrap())
        .env("COMMIT_INTERVAL_MS", guarantee.commit_interval_ms())
        .env("SESSION_TIMEOUT_MS", "6000")
        .env("STREAMS_PROCESSING_GUARANTEE", guarantee.env_value())
        .ready_when("RUNNING")
        .ready_timeout(Duration::from_secs(90))
}

/// One count read back from the output topic.
#[derive(Debug, Clone)]
pub struct Count {
    pub key: String,
    pub value: i64,
    pub partition: i32,
    pub offset: i64,
}

/// Every record of the counting app's output topic, in offset order per partition.
pub fn read_counts(topic: &str, isolation: Isolation) -> Vec<Count> {
    consume_to_end(topic, isolation, Duration::from_secs(60))
        .into_iter()
        .map(|r| {
            let bytes = r.value.clone().unwrap_or_else(|| {
                panic!("null count at {topic}/{} offset {}", r.partition, r.offset)
            });
            let value = i64::from_be_bytes(bytes.as_slice().try_into().unwrap_or_else(|_| {
                panic!("count of {} bytes at offset {}", bytes.len(), r.offset)
            }));
            Count {
                key: r.key_str().to_string(),
                value,
                partition: r.partition,
                offset: r.offset,
            }
        })
        .collect()
}

/// The latest count per key (a key always goes to the same partition).
pub fn latest(counts: &[Count]) -> HashMap<String, i64> {
    counts.iter().map(|c| (c.key.clone(), c.value)).collect()
}

/// Keys whose latest count is below `per_key`, with their counts (missing keys as 0).
pub fn behind(latest: &HashMap<String, i64>, keys: usize, per_key: usize) -> Vec<(String, i64)> {
    (0..keys)
        .map(key)
        .map(|k| {
            let v = latest.get(&k).copied().unwrap_or(0);
            (k, v)
        })
        .filter(|(_, v)| *v < per_key as i64)
        .collect()
}

/// For each of `keys`, the places in the output where its count does not go up by exactly
/// one, as `partition@offset: previous -> next`, to tell lost updates from replayed ones.
fn breaks<'a>(counts: &[Count], keys: impl Iterator<Item = &'a str>) -> String {
    keys.map(|k| {
        let mut previous = 0;
        let mut found = Vec::new();
        for c in counts.iter().filter(|c| c.key == k) {
            if c.value != previous + 1 {
                found.push(format!(
                    "{}@{}: {previous} -> {}",
                    c.partition, c.offset, c.value
                ));
            }
            previous = c.value;
        }
        format!("{k}: {}", found.join(", "))
    })
    .collect::<Vec<_>>()
    .join("\n")
}

/// Polls the output until every key's latest count reaches `per_key` and the output
/// stops changing (two reads in a row alike), returning every record of the last read.
pub fn wait_converged(
    topic: &str,
    isolation: Isolation,
    keys: usize,
    per_key: usize,
    timeout: Duration,
    what: &str,
) -> Vec<Count> {
    let deadline = Instant::now() + timeout;
    let mut previous_len = usize::MAX;
    loop {
        let counts = read_counts(topic, isolation);
        let last = latest(&counts);
        let lagging = behind(&last, keys, per_key);
        if lagging.is_empty() && counts.len() == previous_len {
            return counts;
        }
        previous_len = counts.len();
        assert!(
            Instant::now() < deadline,
            "{what}: after {timeout:?}, {} of {keys} keys are below {per_key} \
             (first ones: {:?}); {} output records; where the first keys' counts do not \
             go up by one:\n{}",
            lagging.len(),
            &lagging[..lagging.len().min(10)],
            counts.len(),
            breaks(&counts, lagging.iter().take(3).map(|(k, _)| k.as_str()))
        );
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// Asserts what a read-committed reader must see under exactly-once of the counting app,
/// whose record cache merges the updates of a key between commits: per key, counts that
/// only ever go up (no repeated update, nothing going backwards), ending at exactly
/// `per_key`.
pub fn assert_exact_sequences(counts: &[Count], keys: usize, per_key: usize) {
    let mut per: HashMap<&str, Vec<i64>> = HashMap::new();
    for c in counts {
        per.entry(&c.key).or_default().push(c.value);
    }
    let mut wrong: Vec<String> = Vec::new();
    let mut backward = 0usize;
    let mut wrong_keys = 0usize;
    for k in (0..keys).map(key) {
        let seen = per.get(k.as_str()).cloned().unwrap_or_default();
        let repeats = seen.windows(2).filter(|pair| pair[1] <= pair[0]).count();
        backward += repeats;
        if repeats > 0 || seen.last() != Some(&(per_key as i64)) {
            wrong_keys += 1;
            if wrong.len() < 5 {
                let shown: Vec<i64> = seen.iter().copied().take(120).collect();
                wrong.push(format!("{k}: {} updates {:?}", seen.len(), shown));
            }
        }
    }
    assert!(
        wrong_keys == 0 && per.len() == keys,
        "{wrong_keys} of {keys} keys do not count up to exactly {per_key} without repeating \
         or going back ({} keys in the output, {} records; {backward} repeated or backward \
         updates); e.g.\n{}",
        per.len(),
        counts.len(),
        wrong.join("\n")
    );
}

/// The tasks of `p` by its last `STATE` line, if that line says the instance runs and
/// every task processes (none restoring): e.g. `["0_0", "0_2"]`.
pub fn running_tasks(p: &ChaosProcess) -> Option<Vec<String>> {
    let lines = p.lines();
    let line = lines.iter().rev().find(|l| l.starts_with("STATE "))?;
    let rest = line.strip_prefix("STATE Running tasks=")?;
    let tasks: Vec<String> = rest
        .trim_matches(['[', ']'])
        .split(", ")
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_matches('"').to_string())
        .collect();
    if tasks.is_empty() || tasks.iter().any(|t| !t.ends_with(":Running")) {
        return None;
    }
    Some(
        tasks
            .into_iter()
            .map(|t| t.trim_end_matches(":Running").to_string())
            .collect(),
    )
}

/// Waits until the instances run `tasks` tasks between them, each on exactly one, every
/// instance with at least one; returns each instance's tasks.
pub fn wait_balanced(
    instances: &mut [&mut ChaosProcess],
    tasks_total: usize,
    timeout: Duration,
) -> Vec<Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let tasks: Vec<Option<Vec<String>>> = instances.iter().map(|p| running_tasks(p)).collect();
        if let Some(tasks) = tasks.iter().cloned().collect::<Option<Vec<_>>>() {
            let mut all: Vec<&String> = tasks.iter().flatten().collect();
            all.sort();
            all.dedup();
            let total: usize = tasks.iter().map(Vec::len).sum();
            if all.len() == tasks_total && total == all.len() {
                return tasks;
            }
        }
        for p in instances.iter_mut() {
            if !p.is_running() {
                p.fail("exited while waiting for the group to settle");
            }
        }
        if Instant::now() >= deadline {
            instances[0].fail(&format!(
                "the group did not settle on {tasks_total} running tasks within {timeout:?}: \
                 {tasks:?} (the other instances' logs: {:?})",
                instances[1..]
                    .iter()
                    .map(|p| p.log_path().to_path_buf())
                    .collect::<Vec<_>>()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `p` alone runs `tasks_total` tasks (all `Running`), e.g. after its partner
/// was killed; returns how long that took.
pub fn wait_sole_owner(p: &mut ChaosProcess, tasks_total: usize, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if running_tasks(p).is_some_and(|t| t.len() == tasks_total) {
            return started.elapsed();
        }
        if !p.is_running() {
            p.fail("exited while taking over its partner's tasks");
        }
        if started.elapsed() >= timeout {
            p.fail(&format!(
                "did not run all {tasks_total} tasks within {timeout:?} of its partner's death"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Minimum, median and maximum of some durations, for reports.
pub fn spread(mut xs: Vec<Duration>) -> String {
    if xs.is_empty() {
        return "none".to_string();
    }
    xs.sort();
    format!(
        "min {:.1?}, median {:.1?}, max {:.1?} over {}",
        xs[0],
        xs[xs.len() / 2],
        xs[xs.len() - 1],
        xs.len()
    )
}

/// Feeds input in batches with a pause between them, on a thread of its own, until it is
/// stopped (or has fed `max_batches`), so that faults land while input still arrives.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<usize>,
}

impl Feeder {
    /// Calls `feed(batch)` for batch 0, 1, ..., pausing `pause` after each.
    pub fn start(
        pause: Duration,
        max_batches: usize,
        mut feed: impl FnMut(usize) + Send + 'static,
    ) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut fed = 0;
            while fed < max_batches && !stopped.load(Ordering::SeqCst) {
                feed(fed);
                fed += 1;
                std::thread::sleep(pause);
            }
            fed
        });
        Feeder { stop, handle }
    }

    /// Whether it is still feeding (neither stopped nor at its maximum).
    pub fn is_feeding(&self) -> bool {
        !self.handle.is_finished()
    }

    /// Stops it; returns how many batches it fed.
    pub fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("feeding the input failed")
    }
}

/// The partitions of the tasks of sub-topology `subtopology` among `tasks` (`"1_2"` is
/// partition 2 of sub-topology 1).
pub fn task_partitions(tasks: &[String], subtopology: usize) -> Vec<i32> {
    tasks
        .iter()
        .filter_map(|t| {
            let (sub, partition) = t.split_once('_')?;
            (sub.parse::<usize>().ok()? == subtopology).then(|| partition.parse().ok())?
        })
        .collect()
}

/// Waits up to `timeout` until `sample` (work in flight per partition, e.g.
/// `InFlight::open_transaction_records` or `InFlight::uncommitted_input`) reports some
/// on a partition; returns whether it did. A fault injected right after sees that work,
/// or less of it only when the victim finished it in the moment between.
pub fn wait_in_flight(timeout: Duration, mut sample: impl FnMut() -> BTreeMap<i32, i64>) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if sample().values().any(|n| *n > 0) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What was under way when one fault (a kill, a broker stop) hit.
#[derive(Debug, Clone)]
pub struct Fault {
    /// What the fault was, for reports: e.g. `kill 2 of b`.
    pub what: String,
    /// Whether input was still being fed.
    pub feeding: bool,
    /// Records of the faulted instance's transactions still open right after the fault
    /// (exactly-once), or input it had not committed (at-least-once), per partition.
    pub in_flight: BTreeMap<i32, i64>,
}

impl Fault {
    /// Whether the fault hit while input was fed and work was in flight.
    pub fn under_load(&self) -> bool {
        self.feeding && self.in_flight.values().any(|n| *n > 0)
    }
}

/// Asserts that input was still fed at every fault and that at least `min` of them hit
/// with work in flight (`what_in_flight` names it in the message).
pub fn assert_faults_under_load(faults: &[Fault], min: usize, what_in_flight: &str) {
    let not_fed: Vec<&Fault> = faults.iter().filter(|f| !f.feeding).collect();
    assert!(
        not_fed.is_empty(),
        "the input was all fed before these faults: {not_fed:?}"
    );
    let loaded = faults.iter().filter(|f| f.under_load()).count();
    assert!(
        loaded >= min,
        "only {loaded} of {} faults hit with {what_in_flight} (at least {min} must): {faults:#?}",
        faults.len()
    );
}
