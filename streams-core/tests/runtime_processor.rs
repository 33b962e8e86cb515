//! The processor API under the runtime, against the real broker: a processor's commit
//! request commits the task at once, long before the commit interval. Start the broker
//! with `dev/kafka start` (or run `dev/test`).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streams_core::processor::{ProcessError, Processor, ProcessorContext};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Produced, Record, StreamsBuilder};
use streams_test_support::{
    bootstrap, client_config, consume_n, produce_keyed, require_broker, within, TestTopic,
};

/// Forwards every record; asks for a commit on the value `commit`.
struct CommitOnMarker;

impl Processor<String, String, String, String> for CommitOnMarker {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        if record.value == "commit" {
            ctx.commit();
        }
        ctx.forward(record)
    }
}

/// The offset the group `app` committed for partition 0 of `topic`, if any.
fn committed_offset(app: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", app)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer to read committed offsets");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("the group's committed offsets");
    match committed.find_partition(topic, 0).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

#[test]
fn a_commit_request_commits_before_the_commit_interval() {
    within(Duration::from_secs(120), || {
        require_broker();
        let app = format!("it-commit-request-{}", uuid::Uuid::new_v4().simple());
        let input = TestTopic::new("commit-request-in", 1);
        let output = TestTopic::new("commit-request-out", 1);
        let dir = tempfile::tempdir().unwrap();
        let builder = StreamsBuilder::new();
        builder
            .stream(input.name(), Consumed::with(StringSerde, StringSerde))
            .process(|| CommitOnMarker)
            .to(output.name(), Produced::with(StringSerde, StringSerde));
        // The interval never comes within the test: only a request can commit.
        let config = StreamsConfig::new(&app, bootstrap())
            .with_commit_interval(Duration::from_secs(3600))
            .with_state_dir(dir.path());
        let streams = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        streams.start().unwrap();
        assert!(
            streams.wait_for_state(State::Running, Duration::from_secs(60)),
            "{:?}",
            streams.state()
        );

        produce_keyed(input.name(), [("k", "a"), ("k", "b")]);
        assert_eq!(
            consume_n(output.name(), 2, Duration::from_secs(30)).len(),
            2
        );
        // Processed, and nothing asked for a commit: nothing is committed.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(committed_offset(&app, input.name()), None);

        produce_keyed(input.name(), [("k", "commit")]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while committed_offset(&app, input.name()) != Some(3) {
            assert!(
                Instant::now() < deadline,
                "no commit of offset 3 within 20 s of the request: {:?}",
                committed_offset(&app, input.name())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(streams.close(Duration::from_secs(30)));
    });
}
