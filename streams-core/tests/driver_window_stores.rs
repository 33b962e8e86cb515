//! Window and session stores on the test driver: processors keep per-window counts and
//! per-session aggregates, every write reaches the changelog in Kafka's byte layouts,
//! expired windows and sessions disappear, and misuse gives clear errors.

use std::time::Duration;

use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::serde::{BytesSerde, I64Serde, Nullable, StringSerde};
use streams_core::state::{SessionWindowedSerde, Stores, TimeWindowedSerde, Windowed};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Produced, Record, StreamsBuilder};
use streams_state::key_layout;

const WINDOW_MS: i64 = 10_000;
const WINDOW_RETENTION_MS: i64 = 30_000;
const GAP_MS: i64 = 5_000;
const SESSION_RETENTION_MS: i64 = 20_000;

/// Counts records per key in tumbling 10 s windows kept in the window store "counts",
/// and emits the windowed count.
struct WindowCounter;

impl Processor<String, String, Windowed<String>, i64> for WindowCounter {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<String>, i64>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let store = ctx.window_store::<String, i64>("counts")?;
        let start = record.timestamp - record.timestamp.rem_euclid(WINDOW_MS);
        let count = store.fetch(&record.key, start)?.unwrap_or(0) + 1;
        store.put(&record.key, &count, start)?;
        let key = Windowed::new(record.key.clone(), start, start + WINDOW_MS);
        ctx.forward(record.with_key(key).with_value(count))
    }
}

fn window_driver() -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::window(
        "counts",
        StringSerde,
        I64Serde,
        Duration::from_millis(WINDOW_RETENTION_MS as u64),
        Duration::from_millis(WINDOW_MS as u64),
        false,
    ));
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .process_with_stores(|| WindowCounter, &["counts"])
        .to(
            "windowed-counts",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, Duration::from_millis(WINDOW_MS as u64)),
                I64Serde,
            ),
        );
    TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_application_id("web"),
    )
}

#[test]
fn window_stores_count_per_window_and_log_kafkas_store_keys() {
    let driver = window_driver();
    let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    clicks.pipe_input_at("alice".into(), "/".into(), 1_000);
    clicks.pipe_input_at("alice".into(), "/a".into(), 9_999);
    clicks.pipe_input_at("bob".into(), "/".into(), 5_000);
    clicks.pipe_input_at("alice".into(), "/b".into(), 10_000);

    // Windowed keys reach the output topic in Kafka's time-windowed layout.
    let out = driver
        .output_topic(
            "windowed-counts",
            TimeWindowedSerde::new(StringSerde, Duration::from_millis(WINDOW_MS as u64)),
            I64Serde,
        )
        .read_key_values();
    assert_eq!(
        out,
        [
            (Windowed::new("alice".to_string(), 0, 10_000), 1),
            (Windowed::new("alice".to_string(), 0, 10_000), 2),
            (Windowed::new("bob".to_string(), 0, 10_000), 1),
            (Windowed::new("alice".to_string(), 10_000, 20_000), 1),
        ]
    );

    let store = driver.window_store::<String, i64>("counts").unwrap();
    assert_eq!(store.fetch(&"alice".to_string(), 0), Some(2));
    assert_eq!(store.fetch(&"alice".to_string(), 10_000), Some(1));
    assert_eq!(store.fetch(&"bob".to_string(), 10_000), None);
    assert_eq!(
        store.fetch_time_range(&"alice".to_string(), 0, 10_000),
        [(0, 2), (10_000, 1)]
    );
    assert_eq!(
        store.fetch_all(0, 0),
        [
            (Windowed::new("alice".to_string(), 0, 10_000), 2),
            (Windowed::new("bob".to_string(), 0, 10_000), 1),
        ]
    );
    assert_eq!(store.all().len(), 3);

    // The changelog is keyed like Kafka's window stores: key, 8-byte start, 4-byte
    // sequence number (0 without duplicates); values are the serialized counts.
    let changelog = driver
        .output_topic("web-counts-changelog", BytesSerde, Nullable(BytesSerde))
        .read_records();
    let logged: Vec<(Vec<u8>, Option<Vec<u8>>, i64)> = changelog
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    let entry = |key: &[u8], start: i64, count: i64, timestamp: i64| {
        (
            key_layout::window_store_key(key, start, 0),
            Some(count.to_be_bytes().to_vec()),
            timestamp,
        )
    };
    assert_eq!(
        logged,
        [
            entry(b"alice", 0, 1, 1_000),
            entry(b"alice", 0, 2, 9_999),
            entry(b"bob", 0, 1, 5_000),
            entry(b"alice", 10_000, 1, 10_000),
        ]
    );
}

#[test]
fn windows_past_the_retention_disappear() {
    let driver = window_driver();
    let clicks = driver.input_topic("clicks", StringSerde, StringSerde);
    clicks.pipe_input_at("alice".into(), "/".into(), 0);
    clicks.pipe_input_at("alice".into(), "/".into(), 15_000);
    let store = driver.window_store::<String, i64>("counts").unwrap();
    assert_eq!(
        store.fetch_time_range(&"alice".to_string(), 0, i64::MAX),
        [(0, 1), (10_000, 1)]
    );

    // Stream time 30 000: windows starting at or before 0 are gone.
    clicks.pipe_input_at("bob".into(), "/".into(), 30_000);
    assert_eq!(store.fetch(&"alice".to_string(), 0), None);
    assert_eq!(
        store.fetch_time_range(&"alice".to_string(), 0, i64::MAX),
        [(10_000, 1)]
    );

    // Stream time 45 000: alice's last window has expired too, and a late record for an
    // expired window is not stored (its count starts again from nothing and is dropped).
    clicks.pipe_input_at("bob".into(), "/".into(), 45_000);
    clicks.pipe_input_at("alice".into(), "/late".into(), 1_000);
    assert!(store
        .fetch_time_range(&"alice".to_string(), 0, i64::MAX)
        .is_empty());
    assert_eq!(
        store.all(),
        [
            (Windowed::new("bob".to_string(), 30_000, 40_000), 1),
            (Windowed::new("bob".to_string(), 40_000, 50_000), 1),
        ]
    );
}

/// Appends every click to the window store "clicks" (which keeps duplicates) and emits
/// how many it holds for the key's window.
struct ClickLog;

impl Processor<String, String, String, i64> for ClickLog {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let store = ctx.window_store::<String, String>("clicks")?;
        let start = record.timestamp - record.timestamp.rem_euclid(WINDOW_MS);
        store.put(&record.key, &record.value, start)?;
        let held = store.fetch_time_range(&record.key, start, start)?.len() as i64;
        ctx.forward(record.with_value(held))
    }
}

#[test]
fn window_stores_with_duplicates_keep_every_value_with_its_sequence_number() {
    let builder = StreamsBuilder::new();
    builder.add_state_store(
        Stores::window(
            "clicks",
            StringSerde,
            StringSerde,
            Duration::from_secs(60),
            Duration::from_millis(WINDOW_MS as u64),
            true,
        )
        .in_memory(),
    );
    builder
        .stream("pages", Consumed::with(StringSerde, StringSerde))
        .process_with_stores(|| ClickLog, &["clicks"])
        .to("held", Produced::with(StringSerde, I64Serde));
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_application_id("dup"),
    );
    let pages = driver.input_topic("pages", StringSerde, StringSerde);
    pages.pipe_input_at("k".into(), "/a".into(), 100);
    pages.pipe_input_at("k".into(), "/b".into(), 200);
    pages.pipe_input_at("k".into(), "/c".into(), 300);
    assert_eq!(
        driver
            .output_topic("held", StringSerde, I64Serde)
            .read_values(),
        [1, 2, 3]
    );
    let store = driver.window_store::<String, String>("clicks").unwrap();
    assert_eq!(
        store.fetch_time_range(&"k".to_string(), 0, 0),
        [(0, "/a".into()), (0, "/b".into()), (0, "/c".into())]
    );
    let keys: Vec<Vec<u8>> = driver
        .output_topic("dup-clicks-changelog", BytesSerde, BytesSerde)
        .read_records()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        keys,
        (1..=3)
            .map(|seq| key_layout::window_store_key(b"k", 0, seq))
            .collect::<Vec<_>>()
    );
}

/// Sums values per key in sessions with a 5 s inactivity gap kept in the session store
/// "sessions", merging the sessions a record bridges, and emits each merged session.
struct SessionSum;

impl Processor<String, i64, Windowed<String>, i64> for SessionSum {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<String>, i64>,
        record: Record<String, i64>,
    ) -> Result<(), ProcessError> {
        let store = ctx.session_store::<String, i64>("sessions")?;
        let ts = record.timestamp;
        let mut merged = Windowed::new(record.key.clone(), ts, ts);
        let mut sum = record.value;
        for (session, value) in store.find_sessions(&record.key, ts - GAP_MS, ts + GAP_MS)? {
            merged.window.start = merged.window.start.min(session.window.start);
            merged.window.end = merged.window.end.max(session.window.end);
            sum += value;
            store.remove(&session)?;
        }
        store.put(&merged, &sum)?;
        ctx.forward(record.with_key(merged).with_value(sum))
    }
}

fn session_driver() -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::session(
        "sessions",
        StringSerde,
        I64Serde,
        Duration::from_millis(SESSION_RETENTION_MS as u64),
    ));
    builder
        .stream("spend", Consumed::with(StringSerde, I64Serde))
        .process_with_stores(|| SessionSum, &["sessions"])
        .to(
            "session-sums",
            Produced::with(SessionWindowedSerde::new(StringSerde), I64Serde),
        );
    TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_application_id("shop"),
    )
}

#[test]
fn session_stores_merge_sessions_and_log_kafkas_session_keys() {
    let driver = session_driver();
    let spend = driver.input_topic("spend", StringSerde, I64Serde);
    spend.pipe_input_at("alice".into(), 1, 0);
    spend.pipe_input_at("alice".into(), 2, 10_000);
    spend.pipe_input_at("bob".into(), 7, 1_000);
    // Bridges alice's two sessions (each within the gap): one session [0, 10 000].
    spend.pipe_input_at("alice".into(), 4, 5_000);

    let out = driver
        .output_topic(
            "session-sums",
            SessionWindowedSerde::new(StringSerde),
            I64Serde,
        )
        .read_key_values();
    assert_eq!(
        out,
        [
            (Windowed::new("alice".to_string(), 0, 0), 1),
            (Windowed::new("alice".to_string(), 10_000, 10_000), 2),
            (Windowed::new("bob".to_string(), 1_000, 1_000), 7),
            (Windowed::new("alice".to_string(), 0, 10_000), 7),
        ]
    );

    let store = driver.session_store::<String, i64>("sessions").unwrap();
    assert_eq!(
        store.fetch(&"alice".to_string()),
        [(Windowed::new("alice".to_string(), 0, 10_000), 7)]
    );
    assert_eq!(
        store.fetch_session(&"alice".to_string(), 0, 10_000),
        Some(7)
    );
    assert_eq!(store.fetch_session(&"alice".to_string(), 0, 0), None);
    assert_eq!(
        store.find_sessions(&"bob".to_string(), 0, 2_000),
        [(Windowed::new("bob".to_string(), 1_000, 1_000), 7)]
    );
    assert!(store
        .find_sessions(&"bob".to_string(), 1_001, 2_000)
        .is_empty());

    // The changelog is keyed like Kafka's session stores (key, 8-byte end, 8-byte
    // start); merged-away sessions are tombstoned.
    let logged: Vec<(Vec<u8>, Option<Vec<u8>>)> = driver
        .output_topic("shop-sessions-changelog", BytesSerde, Nullable(BytesSerde))
        .read_records()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    let put = |key: &[u8], start: i64, end: i64, sum: i64| {
        (
            key_layout::session_key(key, start, end),
            Some(sum.to_be_bytes().to_vec()),
        )
    };
    let removed =
        |key: &[u8], start: i64, end: i64| (key_layout::session_key(key, start, end), None);
    assert_eq!(
        logged,
        [
            put(b"alice", 0, 0, 1),
            put(b"alice", 10_000, 10_000, 2),
            put(b"bob", 1_000, 1_000, 7),
            removed(b"alice", 0, 0),
            removed(b"alice", 10_000, 10_000),
            put(b"alice", 0, 10_000, 7),
        ]
    );
}

#[test]
fn sessions_past_the_retention_disappear() {
    let driver = session_driver();
    let spend = driver.input_topic("spend", StringSerde, I64Serde);
    spend.pipe_input_at("alice".into(), 1, 0);
    spend.pipe_input_at("bob".into(), 1, 19_000);
    let store = driver.session_store::<String, i64>("sessions").unwrap();
    assert_eq!(store.fetch(&"alice".to_string()).len(), 1);

    // Stream time 20 000: sessions that ended at or before 0 are gone.
    spend.pipe_input_at("bob".into(), 1, 20_000);
    assert!(store.fetch(&"alice".to_string()).is_empty());
    assert_eq!(store.fetch_session(&"alice".to_string(), 0, 0), None);
    assert_eq!(
        store.fetch(&"bob".to_string()),
        [(Windowed::new("bob".to_string(), 19_000, 20_000), 2)]
    );
}

/// Reaches the store "counts" as the kind and types it is told to, and forwards nothing.
struct Misuse(&'static str);

impl Processor<String, String, String, String> for Misuse {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        _: Record<String, String>,
    ) -> Result<(), ProcessError> {
        match self.0 {
            "window with other types" => ctx.window_store::<String, String>("counts").map(|_| ()),
            "key-value" => ctx.key_value_store::<String, i64>("counts").map(|_| ()),
            "session" => ctx.session_store::<String, i64>("counts").map(|_| ()),
            "unconnected" => ctx.window_store::<String, i64>("other").map(|_| ()),
            other => panic!("unknown misuse {other}"),
        }
    }
}

#[test]
fn window_stores_must_be_reached_with_their_kind_and_types() {
    let run = |misuse: &'static str| {
        let builder = StreamsBuilder::new();
        builder.add_state_store(Stores::window(
            "counts",
            StringSerde,
            I64Serde,
            Duration::from_secs(60),
            Duration::from_secs(10),
            false,
        ));
        builder.add_state_store(Stores::session(
            "other",
            StringSerde,
            I64Serde,
            Duration::from_secs(60),
        ));
        builder
            .stream("in", Consumed::with(StringSerde, StringSerde))
            .process_with_stores(move || Misuse(misuse), &["counts"])
            .to("out", Produced::with(StringSerde, StringSerde));
        builder
            .stream("in2", Consumed::with(StringSerde, StringSerde))
            .process_with_stores(|| Misuse("unused"), &["other"])
            .to("out2", Produced::with(StringSerde, StringSerde));
        let driver = TopologyTestDriver::new(builder.build().unwrap());

        // The driver's views check kind and types too.
        assert!(driver.window_store::<String, i64>("counts").is_some());
        assert!(driver.window_store::<String, String>("counts").is_none());
        assert!(driver.key_value_store::<String, i64>("counts").is_none());
        assert!(driver.session_store::<String, i64>("counts").is_none());
        assert!(driver.session_store::<String, i64>("other").is_some());
        assert!(driver.window_store::<String, i64>("other").is_none());

        driver
            .input_topic("in", StringSerde, StringSerde)
            .try_pipe_record(Record::new("k".into(), "v".into(), 0))
            .unwrap_err()
            .to_string()
    };

    let err = run("window with other types");
    assert!(
        err.contains("counts")
            && err.contains("i64")
            && err.contains("String/alloc::string::String"),
        "{err}"
    );
    let err = run("key-value");
    assert!(
        err.contains("it is a window store, not a key-value store") && err.contains("window_store"),
        "{err}"
    );
    let err = run("session");
    assert!(err.contains("not a session store"), "{err}");
    let err = run("unconnected");
    assert!(err.contains("not connected"), "{err}");
}

#[test]
fn unlogged_window_and_session_stores_write_no_changelog() {
    let builder = StreamsBuilder::new();
    builder.add_state_store(
        Stores::window(
            "counts",
            StringSerde,
            I64Serde,
            Duration::from_millis(WINDOW_RETENTION_MS as u64),
            Duration::from_millis(WINDOW_MS as u64),
            false,
        )
        .with_logging(false),
    );
    builder.add_state_store(
        Stores::session("sessions", StringSerde, I64Serde, Duration::from_secs(60))
            .in_memory()
            .with_logging(false),
    );
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .process_with_stores(|| WindowCounter, &["counts"])
        .to(
            "windowed-counts",
            Produced::with(
                TimeWindowedSerde::new(StringSerde, Duration::from_millis(WINDOW_MS as u64)),
                I64Serde,
            ),
        );
    builder
        .stream("spend", Consumed::with(StringSerde, I64Serde))
        .process_with_stores(|| SessionSum, &["sessions"])
        .to(
            "session-sums",
            Produced::with(SessionWindowedSerde::new(StringSerde), I64Serde),
        );
    let driver = TopologyTestDriver::with_config(
        builder.build().unwrap(),
        TestDriverConfig::default().with_application_id("quiet"),
    );
    driver
        .input_topic("clicks", StringSerde, StringSerde)
        .pipe_input_at("a".into(), "/".into(), 0);
    driver
        .input_topic("spend", StringSerde, I64Serde)
        .pipe_input_at("a".into(), 3, 0);
    assert_eq!(driver.written_topics(), ["session-sums", "windowed-counts"]);
    assert_eq!(
        driver
            .window_store::<String, i64>("counts")
            .unwrap()
            .fetch(&"a".to_string(), 0),
        Some(1)
    );
    assert_eq!(
        driver
            .session_store::<String, i64>("sessions")
            .unwrap()
            .fetch_session(&"a".to_string(), 0, 0),
        Some(3)
    );
}

#[test]
#[should_panic(expected = "must not be shorter than the window size")]
fn a_window_store_cannot_keep_less_than_one_window() {
    let _ = Stores::window(
        "counts",
        StringSerde,
        I64Serde,
        Duration::from_secs(5),
        Duration::from_secs(10),
        false,
    );
}
