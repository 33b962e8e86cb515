//! The processor API on the test driver: forwarding, metadata, punctuation of both
//! kinds, commit requests (their effect under the runtime is in `runtime_processor.rs`),
//! and the deserialization and processing error handlers.

use std::time::Duration;

use streams_core::processor::{
    FixedKeyContext, FixedKeyProcessor, FixedKeyRecord, ProcessError, Processor, ProcessorContext,
    Punctuation, PunctuationType,
};
use streams_core::runtime::error_handling::{HEADER_EXCEPTION, HEADER_OFFSET, HEADER_TOPIC};
use streams_core::runtime::{DeserializationErrorHandler, ProcessingErrorHandler, StreamsError};
use streams_core::serde::{I64Serde, StringSerde};
use streams_core::test_driver::{TestDriverConfig, TopologyTestDriver};
use streams_core::{Consumed, Produced, Record, StreamsBuilder};

/// Counts records per punctuation period and emits `count@time` on each punctuation.
struct PeriodCounter {
    kind: PunctuationType,
    count: i64,
}

impl Processor<String, String, String, i64> for PeriodCounter {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<(), ProcessError> {
        ctx.schedule(Duration::from_millis(10), self.kind);
        Ok(())
    }

    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, String, i64>,
        _record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        self.count += 1;
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        p: Punctuation,
    ) -> Result<(), ProcessError> {
        assert_eq!(p.kind, self.kind);
        ctx.forward(Record::new(
            format!("at-{}", p.timestamp),
            self.count,
            p.timestamp,
        ))?;
        self.count = 0;
        Ok(())
    }
}

fn counter_driver(kind: PunctuationType) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .process(move || PeriodCounter { kind, count: 0 })
        .to("out", Produced::with(StringSerde, I64Serde));
    TopologyTestDriver::new(builder.build().unwrap())
}

#[test]
fn stream_time_punctuation_follows_record_timestamps_only() {
    let driver = counter_driver(PunctuationType::StreamTime);
    let input = driver.input_topic("in", StringSerde, StringSerde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    input.pipe_input_at("a".into(), "1".into(), 0);
    // The first record fires the schedule (stream time 0 >= first due time 0), after
    // the record was processed.
    assert_eq!(output.read_key_values(), [("at-0".to_string(), 1)]);
    input.pipe_input_at("a".into(), "2".into(), 5);
    driver.advance_wall_clock_time(Duration::from_secs(60));
    assert!(
        output.is_empty(),
        "wall-clock time does not drive stream-time punctuation"
    );
    input.pipe_input_at("a".into(), "3".into(), 12);
    assert_eq!(output.read_key_values(), [("at-12".to_string(), 2)]);
    // An out-of-order record does not move stream time back.
    input.pipe_input_at("a".into(), "4".into(), 3);
    assert!(output.is_empty());
    // A jump over several intervals fires once.
    input.pipe_input_at("a".into(), "5".into(), 55);
    assert_eq!(output.read_key_values(), [("at-55".to_string(), 2)]);
}

#[test]
fn wall_clock_punctuation_fires_without_input() {
    let driver = counter_driver(PunctuationType::WallClockTime);
    let input = driver.input_topic("in", StringSerde, StringSerde);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    input.pipe_input_at("a".into(), "1".into(), 1_000_000);
    input.pipe_input_at("a".into(), "2".into(), 2_000_000);
    assert!(
        output.is_empty(),
        "record time does not drive wall-clock punctuation"
    );
    driver.advance_wall_clock_time(Duration::from_millis(9));
    assert!(output.is_empty());
    driver.advance_wall_clock_time(Duration::from_millis(1));
    assert_eq!(output.read_key_values(), [("at-10".to_string(), 2)]);
    driver.advance_wall_clock_time(Duration::from_millis(10));
    assert_eq!(output.read_key_values(), [("at-20".to_string(), 0)]);
    assert_eq!(driver.wall_clock_time(), 20);
}

/// Routes records to named children and reports metadata of the current record.
struct Router;

impl Processor<String, String, String, String> for Router {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let meta = ctx
            .record_metadata()
            .expect("metadata while processing a record");
        let tagged = format!(
            "{}@{}/{}/{}",
            record.value, meta.topic, meta.partition, meta.offset
        );
        let target = if record.value.starts_with('!') {
            "alerts"
        } else {
            "normal"
        };
        assert_eq!(ctx.children(), ["normal", "alerts"]);
        ctx.forward_to(target, record.with_value(tagged))
    }
}

#[test]
fn processors_forward_to_named_children_with_record_metadata() {
    let builder = StreamsBuilder::new();
    let routed = builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .process(|| Router);
    // Children are addressed by node name, here the names of two sinks.
    routed.to(
        "normal-out",
        Produced::with(StringSerde, StringSerde).with_name("normal"),
    );
    routed.to(
        "alert-out",
        Produced::with(StringSerde, StringSerde).with_name("alerts"),
    );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe_input("k".into(), "hello".into());
    input.pipe_input("k".into(), "!fire".into());
    let normal = driver
        .output_topic("normal-out", StringSerde, StringSerde)
        .read_values();
    let alerts = driver
        .output_topic("alert-out", StringSerde, StringSerde)
        .read_values();
    assert_eq!(normal, ["hello@in/0/0"]);
    assert_eq!(alerts, ["!fire@in/0/1"]);
}

/// Uppercases values, keeps the key by construction.
struct Upper;

impl FixedKeyProcessor<String, String, String> for Upper {
    fn process(
        &mut self,
        ctx: &mut FixedKeyContext<'_, String, String>,
        record: FixedKeyRecord<String, String>,
    ) -> Result<(), ProcessError> {
        if record.value() == "fail" {
            return Err(ProcessError::user(format!("refusing {}", record.key())));
        }
        let upper = record.value().to_uppercase();
        ctx.forward(record.with_value(upper))
    }
}

fn upper_driver(config: TestDriverConfig) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, I64Serde))
        .map_values(|v| v.to_string())
        .process_values(|| Upper)
        .to("out", Produced::with(StringSerde, StringSerde));
    TopologyTestDriver::with_config(builder.build().unwrap(), config)
}

#[test]
fn undeserializable_records_fail_by_default() {
    let driver = upper_driver(TestDriverConfig::default());
    let input = driver.input_topic("in", StringSerde, I64Serde);
    let err = input
        .pipe_raw(Some(b"k".to_vec()), Some(vec![1, 2, 3]), 0)
        .unwrap_err();
    assert!(
        matches!(err, StreamsError::Deserialization { offset: 0, .. }),
        "{err}"
    );
}

#[test]
fn log_and_continue_skips_poison_records_and_keeps_going() {
    let driver = upper_driver(
        TestDriverConfig::default()
            .with_deserialization_error_handler(DeserializationErrorHandler::LogAndContinue),
    );
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input
        .pipe_raw(Some(b"k".to_vec()), Some(vec![1, 2, 3]), 0)
        .unwrap();
    input.pipe_input("k".into(), 7);
    assert_eq!(
        driver
            .output_topic("out", StringSerde, StringSerde)
            .read_values(),
        ["7"]
    );
    assert_eq!(driver.written_topics(), Vec::<String>::new());
}

#[test]
fn dead_letter_handler_keeps_the_bytes_and_describes_the_error() {
    let driver = upper_driver(
        TestDriverConfig::default().with_deserialization_error_handler(
            DeserializationErrorHandler::DeadLetter {
                topic: "in-dlq".into(),
            },
        ),
    );
    let input = driver.input_topic("in", StringSerde, I64Serde);
    input.pipe_input("k".into(), 1);
    input
        .pipe_raw(Some(b"bad".to_vec()), Some(vec![9; 3]), 5)
        .unwrap();
    input.pipe_input("k".into(), 2);
    assert_eq!(
        driver
            .output_topic("out", StringSerde, StringSerde)
            .read_values(),
        ["1", "2"]
    );
    let dlq = driver.output_topic("in-dlq", StringSerde, streams_core::serde::BytesSerde);
    let dead = dlq.read_record().expect("a dead letter");
    assert_eq!(
        (dead.key.as_str(), dead.value.as_slice(), dead.timestamp),
        ("bad", &[9u8, 9, 9][..], 5)
    );
    assert_eq!(
        dead.headers.last(HEADER_EXCEPTION),
        Some(Some(&b"deserialization"[..]))
    );
    assert_eq!(dead.headers.last(HEADER_TOPIC), Some(Some(&b"in"[..])));
    assert_eq!(dead.headers.last(HEADER_OFFSET), Some(Some(&b"1"[..])));
    assert!(dlq.is_empty());
}

#[test]
fn processing_errors_fail_or_go_to_the_dead_letter_topic() {
    let build = |config: TestDriverConfig| {
        let builder = StreamsBuilder::new();
        builder
            .stream("in", Consumed::with(StringSerde, StringSerde))
            .process_values(|| Upper)
            .to("out", Produced::with(StringSerde, StringSerde));
        TopologyTestDriver::with_config(builder.build().unwrap(), config)
    };
    let failing = build(TestDriverConfig::default());
    let err = failing
        .input_topic("in", StringSerde, StringSerde)
        .try_pipe_record(Record::new("k1".into(), "fail".into(), 0))
        .unwrap_err();
    assert!(err.to_string().contains("refusing k1"), "{err}");

    let lenient = build(TestDriverConfig::default().with_processing_error_handler(
        ProcessingErrorHandler::DeadLetter {
            topic: "errors".into(),
        },
    ));
    let input = lenient.input_topic("in", StringSerde, StringSerde);
    input.pipe_input("k1".into(), "fail".into());
    input.pipe_input("k2".into(), "ok".into());
    assert_eq!(
        lenient
            .output_topic("out", StringSerde, StringSerde)
            .read_values(),
        ["OK"]
    );
    let dead = lenient
        .output_topic("errors", StringSerde, StringSerde)
        .read_record()
        .unwrap();
    assert_eq!(dead.value, "fail");
    assert_eq!(
        dead.headers.last(HEADER_EXCEPTION),
        Some(Some(&b"processing"[..]))
    );
}

/// Asks for a commit on a marker record.
struct Committer;

impl Processor<String, String, String, String> for Committer {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        if record.value == "commit" {
            ctx.commit();
        }
        let stream_time = ctx.stream_time();
        ctx.forward(record.with_value(format!("t={stream_time}")))
    }
}

/// The driver shows every record's effects at once, as if it committed after each record,
/// so a commit request changes nothing visible here; `runtime_processor.rs` shows the runtime committing on request.
#[test]
fn context_exposes_stream_time_and_a_commit_request_leaves_processing_unchanged() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .process(|| Committer)
        .to("out", Produced::with(StringSerde, StringSerde));
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = driver.input_topic("in", StringSerde, StringSerde);
    input.pipe_input_at("k".into(), "a".into(), 10);
    input.pipe_input_at("k".into(), "commit".into(), 4);
    assert_eq!(
        driver
            .output_topic("out", StringSerde, StringSerde)
            .read_values(),
        ["t=10", "t=10"]
    );
}
