//! Interactive queries across instances, against the real broker: three instances of
//! one application share a counted table; every instance answers for every key (one
//! gRPC hop to the owner), range and all queries fan out and merge, the metadata
//! agrees with where the producer put each key, and a rolling restart never yields a
//! wrong answer. Start the broker with `dev/kafka start` (or run `dev/test`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use streams_core::dsl::{SessionWindows, TimeWindows};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig, StreamsError};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Grouped, Materialized, StreamsBuilder};
use streams_test_support::{bootstrap, free_port, produce_keyed, within, TestTopic};

const KEYS: usize = 30_000;
const PARTITIONS: i32 = 6;

/// The count of key `i`: keys get 1 to 3 records.
fn expected_count(i: usize) -> i64 {
    1 + (i % 3) as i64
}

fn key(i: usize) -> String {
    format!("key-{i:05}")
}

fn counting_instance(app: &str, input: &str, port: u16, state_dir: &Path) -> KafkaStreams {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with(StringSerde, StringSerde))
        .count(Materialized::as_store("counts"));
    let config = StreamsConfig::new(app, bootstrap())
        .with_application_server(format!("127.0.0.1:{port}"))
        .with_commit_interval(Duration::from_millis(200))
        .with_state_dir(state_dir);
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    streams.start().unwrap();
    streams
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until `streams` sees every key with its final count through the router.
fn wait_for_counts(rt: &tokio::runtime::Runtime, streams: &KafkaStreams, timeout: Duration) {
    let router = streams.router();
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match rt.block_on(router.all::<String, i64>("counts")) {
            Ok(all) => {
                let total: i64 = all.value.iter().map(|(_, c)| c).sum();
                let wanted: i64 = (0..KEYS).map(expected_count).sum();
                if all.value.len() == KEYS && total == wanted {
                    return;
                }
                last = format!("{} keys, total {total} of {wanted}", all.value.len());
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the counts were not complete within {timeout:?}: {last}");
}

#[test]
fn three_instances_answer_for_every_key_and_merge_ranges() {
    within(Duration::from_secs(240), || {
        let app = format!("iq-{}", std::process::id());
        let input = TestTopic::new("iq-input", PARTITIONS);
        let records: Vec<(String, String)> = (0..KEYS)
            .flat_map(|i| (0..expected_count(i)).map(move |_| (key(i), "x".to_string())))
            .collect();
        let delivered = produce_keyed(
            input.name(),
            records.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        );
        // Where the producer (murmur2, as Java's default partitioner) put each key.
        let produced_partition: HashMap<&str, i32> = records
            .iter()
            .zip(&delivered)
            .map(|((k, _), d)| (k.as_str(), d.partition))
            .collect();

        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let instances: Vec<KafkaStreams> = (0..3)
            .map(|i| counting_instance(&app, input.name(), ports[i], dirs[i].path()))
            .collect();
        for streams in &instances {
            assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        }
        let rt = runtime();
        wait_for_counts(&rt, &instances[0], Duration::from_secs(120));

        // Metadata: three instances, two tasks each, every one hosting "counts".
        let metadata = instances[1].metadata_for_all_instances().unwrap();
        assert_eq!(metadata.len(), 3, "{metadata:?}");
        let mut ports_seen: Vec<u16> = metadata
            .iter()
            .map(|m| m.instance.host.as_ref().unwrap().port)
            .collect();
        ports_seen.sort();
        let mut ports_sorted = ports.clone();
        ports_sorted.sort();
        assert_eq!(ports_seen, ports_sorted);
        for m in &metadata {
            assert_eq!(m.active_tasks.len(), 2, "{m:?}");
            assert!(m.state_store_names.contains("counts"));
        }
        assert_eq!(instances[2].metadata_for_store("counts").unwrap().len(), 3);

        // Every key's metadata names the partition the producer chose.
        for i in (0..KEYS).step_by(7) {
            let meta = instances[i % 3]
                .query_metadata_for_key("counts", &key(i), &StringSerde)
                .unwrap();
            assert_eq!(
                meta.partition,
                produced_partition[key(i).as_str()],
                "key {}",
                key(i)
            );
            let owner = metadata
                .iter()
                .find(|m| m.instance == meta.active)
                .expect("the key's owner is one of the instances");
            assert!(owner.active_tasks.contains(&meta.task));
        }

        // Every key through every instance: the right count, from the key's owner.
        let wrong = AtomicU64::new(0);
        let forwarded = AtomicU64::new(0);
        for (index, streams) in instances.iter().enumerate() {
            let router = streams.router();
            rt.block_on(
                stream::iter(0..KEYS)
                    .map(|i| {
                        let router = router.clone();
                        async move { (i, router.get::<String, i64>("counts", &key(i)).await) }
                    })
                    .buffer_unordered(64)
                    .for_each(|(i, answer)| {
                        let answer = answer
                            .unwrap_or_else(|e| panic!("key {} via instance {index}: {e}", key(i)));
                        if answer.value != Some(expected_count(i)) {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                        if answer.answered_by[0].host.as_ref().unwrap().port != ports[index] {
                            forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                        async {}
                    }),
            );
        }
        assert_eq!(wrong.load(Ordering::Relaxed), 0, "wrong answers");
        let forwarded = forwarded.load(Ordering::Relaxed);
        assert!(
            forwarded > (KEYS as u64) && forwarded < 3 * KEYS as u64,
            "about two thirds of the lookups go to another instance, not {forwarded} of {}",
            3 * KEYS
        );
        // A key nobody wrote is absent, wherever it is asked.
        let absent = rt.block_on(
            instances[0]
                .router()
                .get::<String, i64>("counts", &"nope".to_string()),
        );
        assert_eq!(absent.unwrap().value, None);

        // Range and all, merged over the instances: every key exactly once.
        for streams in &instances {
            let router = streams.router();
            let all = rt.block_on(router.all::<String, i64>("counts")).unwrap();
            assert_eq!(all.answered_by.len(), 3);
            let merged: BTreeMap<String, i64> = all.value.iter().cloned().collect();
            assert_eq!(all.value.len(), KEYS, "no key twice");
            assert_eq!(merged.len(), KEYS);
            assert!(merged.iter().all(|(k, c)| {
                let i: usize = k["key-".len()..].parse().unwrap();
                *c == expected_count(i)
            }));
            let (from, to) = (key(100), key(199));
            let range = rt
                .block_on(router.range::<String, i64>("counts", Some(&from), Some(&to)))
                .unwrap();
            let mut keys: Vec<String> = range.value.into_iter().map(|(k, _)| k).collect();
            keys.sort();
            assert_eq!(keys, (100..200).map(key).collect::<Vec<_>>());
        }

        // Bad requests get a clear error, not a panic or a retry loop.
        let router = instances[0].router();
        let unknown = rt.block_on(router.get::<String, i64>("no-such-store", &key(1)));
        assert!(
            matches!(unknown, Err(StreamsError::InvalidState(_))),
            "{unknown:?}"
        );
        let wrong_types = rt.block_on(router.get::<i64, i64>("counts", &1));
        assert!(
            matches!(wrong_types, Err(StreamsError::InvalidState(_))),
            "{wrong_types:?}"
        );

        for streams in &instances {
            assert!(streams.close(Duration::from_secs(30)));
        }
    });
}

/// A client querying continuously through a rolling restart of the three instances
/// gets either the right count or a retryable error, never a wrong value.
#[test]
fn a_rolling_restart_never_yields_a_wrong_answer() {
    within(Duration::from_secs(300), || {
        const ROLLING_KEYS: usize = 3_000;
        let app = format!("iq-roll-{}", std::process::id());
        let input = TestTopic::new("iq-roll-input", PARTITIONS);
        let records: Vec<(String, String)> = (0..ROLLING_KEYS)
            .flat_map(|i| (0..expected_count(i)).map(move |_| (key(i), "x".to_string())))
            .collect();
        produce_keyed(
            input.name(),
            records.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        );

        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut instances: Vec<Option<KafkaStreams>> = (0..3)
            .map(|i| {
                Some(counting_instance(
                    &app,
                    input.name(),
                    ports[i],
                    dirs[i].path(),
                ))
            })
            .collect();
        for streams in instances.iter().flatten() {
            assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        }
        let rt = Arc::new(runtime());
        let router = instances[0]
            .as_ref()
            .unwrap()
            .router()
            .with_deadline(Duration::from_secs(3));
        // Wait until every count is final.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let all = rt.block_on(router.all::<String, i64>("counts"));
            if all.as_ref().is_ok_and(|a| {
                a.value.len() == ROLLING_KEYS
                    && a.value.iter().map(|(_, c)| c).sum::<i64>()
                        == (0..ROLLING_KEYS).map(expected_count).sum::<i64>()
            }) {
                break;
            }
            assert!(Instant::now() < deadline, "counts incomplete: {all:?}");
            std::thread::sleep(Duration::from_millis(200));
        }

        // The querying client sits on instance 0, which is restarted last: its own
        // router stays up while the other two restart.
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new([
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ]);
        let client = {
            let (stop, tally, rt, router) =
                (stop.clone(), tally.clone(), rt.clone(), router.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Acquire) {
                    i = (i + 7919) % ROLLING_KEYS;
                    match rt.block_on(router.get::<String, i64>("counts", &key(i))) {
                        Ok(answer) if answer.value == Some(expected_count(i)) => {
                            tally[if answer.attempts > 1 { 1 } else { 0 }]
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(answer) => panic!("wrong answer for {}: {:?}", key(i), answer),
                        Err(e)
                            if e.is_retryable()
                                || matches!(e, StreamsError::DeadlineExceeded { .. }) =>
                        {
                            tally[2].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tally[3].fetch_add(1, Ordering::Relaxed);
                            eprintln!("non-retryable error for {}: {e}", key(i));
                        }
                    }
                }
            })
        };
        for index in [1, 2] {
            let old = instances[index].take().unwrap();
            assert!(old.close(Duration::from_secs(30)));
            drop(old);
            std::thread::sleep(Duration::from_secs(1));
            let fresh = counting_instance(&app, input.name(), ports[index], dirs[index].path());
            assert!(fresh.wait_for_state(State::Running, Duration::from_secs(60)));
            instances[index] = Some(fresh);
            std::thread::sleep(Duration::from_secs(2));
        }
        stop.store(true, Ordering::Release);
        client
            .join()
            .expect("the querying client saw no wrong answer");
        let [first, retried, unanswered, failed] =
            [0, 1, 2, 3].map(|i| tally[i].load(Ordering::Relaxed));
        eprintln!(
            "rolling restart: {first} answered at once, {retried} answered after retries, \
             {unanswered} not answered within the deadline, {failed} failed"
        );
        assert_eq!(failed, 0, "only retryable errors are allowed");
        assert!(first + retried > 0);
        assert!(
            retried + unanswered == 0 || retried as f64 / (retried + unanswered) as f64 >= 0.5,
            "the router's retries answer most queries that first met a rebalance"
        );
        for streams in instances.into_iter().flatten() {
            assert!(streams.close(Duration::from_secs(30)));
        }
    });
}

/// Window and session stores answer through the router too: each key's windows and
/// sessions from its owner, and the windows of every key merged over the instances.
#[test]
fn window_and_session_stores_answer_through_any_instance() {
    within(Duration::from_secs(180), || {
        const WINDOW_KEYS: usize = 1_000;
        let app = format!("iq-win-{}", std::process::id());
        let input = TestTopic::new("iq-win-input", PARTITIONS);
        let records: Vec<(String, String)> = (0..WINDOW_KEYS)
            .flat_map(|i| (0..expected_count(i)).map(move |_| (key(i), "x".to_string())))
            .collect();
        produce_keyed(
            input.name(),
            records.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        );

        let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let instances: Vec<KafkaStreams> = dirs
            .iter()
            .map(|dir| {
                let builder = StreamsBuilder::new();
                let grouped = builder
                    .stream(input.name(), Consumed::with(StringSerde, StringSerde))
                    .group_by_key(Grouped::with(StringSerde, StringSerde));
                let hour = Duration::from_secs(3600);
                grouped
                    .windowed_by(TimeWindows::of_size_with_no_grace(hour))
                    .count(Materialized::as_store("hourly").with_retention(2 * hour));
                grouped
                    .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(hour))
                    .count(Materialized::as_store("sessions"));
                let config = StreamsConfig::new(&app, bootstrap())
                    .with_application_server(format!("127.0.0.1:{}", free_port()))
                    .with_commit_interval(Duration::from_millis(200))
                    .with_state_dir(dir.path());
                let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
                streams.start().unwrap();
                streams
            })
            .collect();
        for streams in &instances {
            assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        }
        let rt = runtime();
        let (from, to) = (0, i64::MAX / 2);
        let wanted: i64 = (0..WINDOW_KEYS).map(expected_count).sum();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let all = rt.block_on(
                instances[0]
                    .router()
                    .fetch_all_windows::<String, i64>("hourly", from, to),
            );
            let total: i64 = all
                .as_ref()
                .map(|a| a.value.iter().map(|(_, c)| c).sum())
                .unwrap_or(0);
            if total == wanted {
                let keys: std::collections::BTreeSet<&String> = all
                    .as_ref()
                    .unwrap()
                    .value
                    .iter()
                    .map(|(w, _)| &w.key)
                    .collect();
                assert_eq!(keys.len(), WINDOW_KEYS);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "windowed counts incomplete: {total} of {wanted}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }

        for (index, streams) in instances.iter().enumerate() {
            let router = streams.router();
            for i in 0..WINDOW_KEYS {
                let windows = rt
                    .block_on(router.fetch_windows::<String, i64>("hourly", &key(i), from, to))
                    .unwrap_or_else(|e| panic!("windows of {} via {index}: {e}", key(i)));
                let count: i64 = windows.value.iter().map(|(_, c)| c).sum();
                assert_eq!(
                    count,
                    expected_count(i),
                    "windows of {}: {:?}",
                    key(i),
                    windows.value
                );
                // Sessions reach the store as their records arrive: wait for the last.
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let sessions = rt
                        .block_on(router.fetch_sessions::<String, i64>("sessions", &key(i)))
                        .unwrap_or_else(|e| panic!("sessions of {} via {index}: {e}", key(i)));
                    if let [(session, count)] = sessions.value.as_slice() {
                        if *count == expected_count(i) {
                            assert_eq!(session.key, key(i));
                            assert!(session.window.start <= session.window.end);
                            break;
                        }
                    }
                    assert!(
                        Instant::now() < deadline,
                        "sessions of {}: {:?}",
                        key(i),
                        sessions.value
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        // A key-value query on a window store is refused with a clear error.
        let wrong_kind = rt.block_on(instances[0].router().get::<String, i64>("hourly", &key(1)));
        assert!(
            matches!(
                wrong_kind,
                Err(StreamsError::InvalidState(_)) | Err(StreamsError::Remote { .. })
            ),
            "{wrong_kind:?}"
        );
        for streams in &instances {
            assert!(streams.close(Duration::from_secs(30)));
        }
    });
}
