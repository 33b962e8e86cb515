//! Window and session stores under the runtime, against the real broker: their
//! changelogs are created `compact,delete` with the store retention plus a day, an
//! instance without local state restores them completely, and a restart with an intact
//! state directory restores only the changelog tail after its checkpoint. Start the
//! broker with `dev/kafka start` (or run `dev/test`).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::restore::{wait_restored, RestoreCount};
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::state::{Stores, Windowed};
use streams_core::{Consumed, Produced, Record, StreamsBuilder};
use streams_test_support::{
    bootstrap, client_config, consume_to_end, produce_keyed, require_broker, within, Isolation,
    TestTopic,
};

const WINDOW: Duration = Duration::from_secs(10);
const RETENTION: Duration = Duration::from_secs(3600);
const ONE_DAY_MS: u128 = 24 * 60 * 60 * 1000;

/// Reads the event time from the value (a round number, 4 s per round), counts records
/// per key in 10 s windows ("counts") and records each one as a session of its own
/// ("visits"); emits `"<window start>:<window count>/<sessions of the key>"`.
struct WindowedVisits;

impl Processor<String, String, String, String> for WindowedVisits {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let round: i64 = record.value.parse().expect("values are round numbers");
        let time = round * 4_000;
        let start = time - time % WINDOW.as_millis() as i64;
        let counts = ctx.window_store::<String, i64>("counts")?;
        let count = counts.fetch(&record.key, start)?.unwrap_or(0) + 1;
        counts.put(&record.key, &count, start)?;
        let visits = ctx.session_store::<String, i64>("visits")?;
        visits.put(&Windowed::new(record.key.clone(), time, time), &1)?;
        let sessions = visits.fetch(&record.key)?.len();
        let value = format!("{start}:{count}/{sessions}");
        ctx.forward(record.with_value(value))
    }
}

fn visits_app(
    app: &str,
    input: &str,
    output: &str,
    state_dir: &Path,
) -> (KafkaStreams, RestoreCount) {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::window(
        "counts",
        StringSerde,
        streams_core::serde::I64Serde,
        RETENTION,
        WINDOW,
        false,
    ));
    builder.add_state_store(Stores::session(
        "visits",
        StringSerde,
        streams_core::serde::I64Serde,
        RETENTION,
    ));
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .process_with_stores(|| WindowedVisits, &["counts", "visits"])
        .to(output, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(app, bootstrap())
        .with_commit_interval(Duration::from_millis(200))
        .with_state_dir(state_dir);
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    let listener = RestoreCount::default();
    streams.set_restore_listener(listener.clone());
    streams.start().unwrap();
    assert!(
        streams.wait_for_state(State::Running, Duration::from_secs(60)),
        "{:?}",
        streams.state()
    );
    (streams, listener)
}

/// The latest output per key in `topic`, once `expected` records are there.
fn latest(topic: &str, expected: usize) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = consume_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(20));
        if records.len() >= expected {
            return records
                .iter()
                .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} records in {topic}",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `keys` keys, one record each for rounds `rounds`.
fn rounds(keys: usize, rounds: std::ops::Range<i64>) -> Vec<(String, String)> {
    rounds
        .flat_map(|r| (0..keys).map(move |k| (format!("k{k}"), r.to_string())))
        .collect()
}

/// `cleanup.policy` and `retention.ms` of `topic`.
fn topic_config(topic: &str) -> (String, String) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().unwrap();
    let results = block_on(admin.describe_configs(
        &[ResourceSpecifier::Topic(topic)],
        &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    let resource = results
        .into_iter()
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("describing {topic}: {e}"));
    let value = |name: &str| {
        resource
            .get(name)
            .and_then(|entry| entry.value.clone())
            .unwrap_or_else(|| panic!("{topic} has no {name}"))
    };
    (value("cleanup.policy"), value("retention.ms"))
}

#[test]
fn window_and_session_stores_restore_from_compacted_expiring_changelogs() {
    within(Duration::from_secs(240), || {
        require_broker();
        let app = format!("it-window-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("window-in", 2);
        let output = TestTopic::new("window-out", 2);
        let counts_changelog = TestTopic::adopt(&format!("{app}-counts-changelog"));
        let visits_changelog = TestTopic::adopt(&format!("{app}-visits-changelog"));
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();

        // A processes 10 keys x 5 rounds (windows 0 and 10 000) and closes: its
        // checkpoint covers all 50 writes of each store.
        let (a, restored) = visits_app(&app, input.name(), output.name(), dir_a.path());
        let expected_retention = (RETENTION.as_millis() + ONE_DAY_MS).to_string();
        for changelog in [&counts_changelog, &visits_changelog] {
            let (policy, retention) = topic_config(changelog.name());
            assert_eq!(policy, "compact,delete", "{}", changelog.name());
            assert_eq!(retention, expected_retention, "{}", changelog.name());
        }
        produce_keyed(input.name(), rounds(10, 0..5));
        assert_eq!(latest(output.name(), 50)["k3"], "10000:2/5");
        assert_eq!(
            restored.restored(),
            0,
            "a fresh application restores nothing"
        );
        // The same stores through the instance's read-only views.
        let k3 = "k3".to_string();
        let windows = a.window_store::<String, i64>("counts").unwrap();
        assert_eq!(
            windows.fetch_time_range(&k3, 0, 20_000).unwrap(),
            [(0, 3), (10_000, 2)]
        );
        assert_eq!(windows.fetch(&k3, 10_000).unwrap(), Some(2));
        let sessions = a.session_store::<String, i64>("visits").unwrap();
        assert_eq!(sessions.fetch(&k3).unwrap().len(), 5);
        assert!(a.close(Duration::from_secs(30)));

        // B, with an empty state directory, restores 50 + 50 changelog records, then
        // processes 10 keys x 2 more rounds (40 writes A has not seen).
        let (b, restored) = visits_app(&app, input.name(), output.name(), dir_b.path());
        wait_restored(&b);
        assert_eq!(restored.restored(), 100);
        produce_keyed(input.name(), rounds(10, 5..7));
        assert_eq!(latest(output.name(), 70)["k3"], "20000:2/7");
        assert!(b.close(Duration::from_secs(30)));

        // A again, with its intact RocksDB stores: only the 40-record tail is restored,
        // and both stores go on from the right state.
        let (a, restored) = visits_app(&app, input.name(), output.name(), dir_a.path());
        wait_restored(&a);
        assert_eq!(
            restored.restored(),
            40,
            "only the tail after A's checkpoint"
        );
        produce_keyed(input.name(), rounds(10, 7..8));
        let out = latest(output.name(), 80);
        assert!(
            (0..10).all(|k| out[&format!("k{k}")] == "20000:3/8"),
            "{out:?}"
        );
        assert!(a.close(Duration::from_secs(30)));
    });
}
