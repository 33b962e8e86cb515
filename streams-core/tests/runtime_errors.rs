//! Failure handling of the runtime against the real broker: a processing error under
//! the default policy puts the instance in `Error`; records the broker refuses are
//! dropped or fatal according to the production handler. Start the broker with
//! `dev/kafka start` (or run `dev/test`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streams_core::processor::ProcessError;
use streams_core::runtime::{
    KafkaStreams, ProductionErrorHandler, State, StreamsConfig, StreamsError, UncaughtErrorPolicy,
};
use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};
use streams_state::{StateDirectory, StoreError};
use streams_test_support::{
    bootstrap, consume_n, consume_to_end, produce_keyed, require_broker, within, Isolation,
    TestTopic,
};

const TEST_LIMIT: Duration = Duration::from_secs(120);

fn config(name: &str) -> StreamsConfig {
    let app = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    StreamsConfig::new(&app, bootstrap()).with_commit_interval(Duration::from_millis(200))
}

fn failing_on(input: &str, output: &str, poison: &'static str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .process_values(move || Check(poison))
        .to(output, Produced::with(StringSerde, StringSerde));
    builder.build().unwrap()
}

struct Check(&'static str);

impl streams_core::processor::FixedKeyProcessor<String, String, String> for Check {
    fn process(
        &mut self,
        ctx: &mut streams_core::processor::FixedKeyContext<'_, String, String>,
        record: streams_core::processor::FixedKeyRecord<String, String>,
    ) -> Result<(), ProcessError> {
        if record.value() == self.0 {
            return Err(ProcessError::user(format!("poison value {}", self.0)));
        }
        ctx.forward(record)
    }
}

#[test]
fn a_processing_error_stops_the_instance_in_error_state() {
    within(TEST_LIMIT, || {
        require_broker();
        let input = TestTopic::new("errors-in", 1);
        let output = TestTopic::new("errors-out", 1);
        let streams = KafkaStreams::new(
            failing_on(input.name(), output.name(), "boom"),
            config("it-errors"),
        )
        .unwrap();
        let transitions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = transitions.clone();
        streams.set_state_listener(move |new, _old| log.lock().unwrap().push(new));
        streams.start().unwrap();
        produce_keyed(input.name(), [("k", "fine"), ("k", "boom"), ("k", "never")]);
        assert!(
            streams.wait_for_state(State::Error, Duration::from_secs(60)),
            "state {:?}",
            streams.state()
        );
        let errors = streams.thread_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("poison value boom") && errors[0].contains("@1"),
            "{errors:?}"
        );
        // The record before the poison one was processed; the one after was not.
        let out = consume_n(output.name(), 2, Duration::from_secs(5));
        assert_eq!(
            out.iter().map(|r| r.value_str()).collect::<Vec<_>>(),
            ["fine"]
        );
        let seen = transitions.lock().unwrap().clone();
        assert_eq!(seen.first(), Some(&State::Rebalancing));
        assert_eq!(&seen[seen.len() - 2..], [State::PendingError, State::Error]);
        assert!(streams.close(Duration::from_secs(10)));
        assert_eq!(
            streams.state(),
            State::Error,
            "closing keeps the error visible"
        );
    });
}

#[test]
fn replace_thread_policy_replaces_the_failed_thread_and_processing_continues() {
    within(TEST_LIMIT, || {
        require_broker();
        let input = TestTopic::new("replace-in", 1);
        let output = TestTopic::new("replace-out", 1);
        // Fails on the first `boom` only: the replacement thread gets past it.
        let failed = Arc::new(AtomicBool::new(false));
        let once = failed.clone();
        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, StringSerde))
            .process_values(move || FailOnce(once.clone()))
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        let streams = KafkaStreams::new(builder.build().unwrap(), config("it-replace")).unwrap();
        streams.set_uncaught_error_policy(UncaughtErrorPolicy::ReplaceThread);
        streams.start().unwrap();
        assert!(streams.wait_for_state(State::Running, Duration::from_secs(60)));
        produce_keyed(
            input.name(),
            [("k", "before"), ("k", "boom"), ("k", "after")],
        );

        // The first thread fails on `boom` (before committing it); the replacement
        // restarts from the committed offset and processes the rest.
        let values = read_until(output.name(), "after");
        // `before` may be written twice (at-least-once), the rest once, in order.
        assert!(
            values.ends_with(&["boom".to_string(), "after".to_string()])
                && values[..values.len() - 2].iter().all(|v| v == "before")
                && values.len() <= 4,
            "{values:?}"
        );
        assert!(failed.load(Ordering::SeqCst), "the first thread did fail");
        let errors = streams.thread_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("poison value boom"), "{errors:?}");
        assert!(
            streams.wait_for_state(State::Running, Duration::from_secs(30)),
            "{:?}",
            streams.state()
        );
        assert_eq!(
            streams.local_tasks().len(),
            1,
            "the replacement runs the task"
        );

        // The replacement keeps processing new records.
        produce_keyed(input.name(), [("k", "later")]);
        let more = read_until(output.name(), "later");
        assert_eq!(more.len(), values.len() + 1, "{more:?}");
        assert!(streams.thread_errors().len() == 1);
        assert!(streams.close(Duration::from_secs(30)));
    });
}

/// The values of `topic` once its last record has value `last` (waits up to 60 s).
fn read_until(topic: &str, last: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let all: Vec<String> =
            consume_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(10))
                .iter()
                .map(|r| r.value_str().to_string())
                .collect();
        if all.last().map(String::as_str) == Some(last) {
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{topic} never ended with {last}: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct FailOnce(Arc<AtomicBool>);

impl streams_core::processor::FixedKeyProcessor<String, String, String> for FailOnce {
    fn process(
        &mut self,
        ctx: &mut streams_core::processor::FixedKeyContext<'_, String, String>,
        record: streams_core::processor::FixedKeyRecord<String, String>,
    ) -> Result<(), ProcessError> {
        if record.value() == "boom" && !self.0.swap(true, Ordering::SeqCst) {
            return Err(ProcessError::user("poison value boom"));
        }
        ctx.forward(record)
    }
}

#[test]
fn a_locked_task_directory_is_retried_until_its_owner_releases_it() {
    within(TEST_LIMIT, || {
        require_broker();
        let input = TestTopic::new("locked-in", 1);
        let output = TestTopic::new("locked-out", 1);
        let state_dir = tempfile::tempdir().unwrap();
        let config = config("it-locked").with_state_dir(state_dir.path());
        // Another owner in this process still holds task 0_0's directory.
        let other = StateDirectory::new(state_dir.path(), &config.application_id).unwrap();
        let held = other.lock("0_0").unwrap();
        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, StringSerde))
            .group_by_key(Grouped::new())
            // Every update goes out, so both counts show that both records were processed.
            .count(Materialized::as_store("counts").with_caching(false))
            .to_stream()
            .to(
                output.name(),
                Produced::with(StringSerde, Nullable(I64Serde)),
            );
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        produce_keyed(input.name(), [("k", "a"), ("k", "b")]);

        // The thread waits (and keeps its assignment) instead of dying.
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            streams.thread_errors().is_empty(),
            "{:?}",
            streams.thread_errors()
        );
        assert_ne!(streams.state(), State::Error);
        assert!(streams.local_tasks().is_empty(), "no task before the lock");
        assert!(
            consume_to_end(
                output.name(),
                Isolation::ReadUncommitted,
                Duration::from_secs(10)
            )
            .is_empty(),
            "nothing processed without the task's state"
        );

        drop(held);
        let out = consume_n(output.name(), 2, Duration::from_secs(30));
        let counts: Vec<i64> = out
            .iter()
            .map(|r| i64::from_be_bytes(r.value.clone().unwrap().try_into().unwrap()))
            .collect();
        assert_eq!(counts, [1, 2]);
        assert_eq!(streams.local_tasks().len(), 1);
        assert!(streams.thread_errors().is_empty());
        assert!(streams.close(Duration::from_secs(30)));
    });
}

#[test]
fn state_directory_failures_are_state_errors_with_their_source() {
    // A file where the state directory should be: an I/O error of the store layer.
    let file = tempfile::NamedTempFile::new().unwrap();
    let config = StreamsConfig::new("it-state-error", bootstrap()).with_state_dir(file.path());
    let builder = StreamsBuilder::new();
    builder
        .stream("anything", Consumed::with(StringSerde, StringSerde))
        .to("anywhere", Produced::with(StringSerde, StringSerde));
    let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    let error = streams.cleanup().unwrap_err();
    let StreamsError::State { source, .. } = &error else {
        panic!("expected a state error, got {error:?}");
    };
    assert!(matches!(**source, StoreError::Io { .. }), "{source:?}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "the store error is the source"
    );
}

#[test]
fn records_the_broker_refuses_follow_the_production_handler() {
    within(TEST_LIMIT, || {
        require_broker();
        for (handler, expect_error) in [
            (ProductionErrorHandler::LogAndContinue, false),
            (ProductionErrorHandler::Fail, true),
        ] {
            let input = TestTopic::new("refused-in", 1);
            // The broker refuses batches over 2 KB on this topic.
            let output = TestTopic::with_config("refused-out", 1, &[("max.message.bytes", "2048")]);
            let builder = StreamsBuilder::new();
            builder
                .stream(input.name(), Consumed::with(StringSerde, StringSerde))
                .to(output.name(), Produced::with(StringSerde, StringSerde));
            let config = config("it-refused")
                .with_production_error_handler(handler.clone())
                // One record per request, so a refused record takes no other with it.
                .with_producer_setting("linger.ms", "0")
                .with_producer_setting("batch.num.messages", "1");
            let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
            streams.start().unwrap();
            let big = "x".repeat(4096);
            produce_keyed(
                input.name(),
                [("k", "small-1"), ("k", big.as_str()), ("k", "small-2")],
            );
            if expect_error {
                assert!(
                    streams.wait_for_state(State::Error, Duration::from_secs(60)),
                    "{handler:?}: {:?}",
                    streams.state()
                );
                let errors = streams.thread_errors();
                assert!(errors[0].contains(output.name()), "{errors:?}");
            } else {
                let out = consume_n(output.name(), 2, Duration::from_secs(30));
                assert_eq!(
                    out.iter().map(|r| r.value_str()).collect::<Vec<_>>(),
                    ["small-1", "small-2"]
                );
                assert!(streams.thread_errors().is_empty());
                assert_eq!(streams.state(), State::Running);
            }
            assert!(streams.close(Duration::from_secs(30)));
        }
    });
}
