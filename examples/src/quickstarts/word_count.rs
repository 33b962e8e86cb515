//! Word count, the "hello world" of stream processing (Kafka's `WordCountDemo`): lines
//! of text in, the running count of each word out.
//!
//! ```text
//! streams-plaintext-input (null → "all streams lead to kafka")
//!   └─flat_map_values(words)─group_by(word)─count("word-counts")─to_stream─> streams-wordcount-output
//!                                                                (word → 8-byte long count)
//! ```
//!
//! ```
//! use streams_core::serde::{I64Serde, StringSerde};
//! use streams_core::test_driver::TopologyTestDriver;
//! use streams_examples::quickstarts::word_count;
//!
//! let driver = TopologyTestDriver::new(word_count::topology("lines", "counts"));
//! driver
//!     .input_topic("lines", StringSerde, StringSerde)
//!     .pipe_input("1".into(), "Hello streams, hello Kafka".into());
//! let counts = driver.output_topic("counts", StringSerde, I64Serde).read_key_values_to_map();
//! assert_eq!(counts["hello"], 2);
//! assert_eq!(counts["kafka"], 1);
//! ```

use streams_core::serde::{I64Serde, Nullable, StringSerde};
use streams_core::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, Topology};

/// The input topic of the quickstart.
pub const INPUT: &str = "streams-plaintext-input";
/// The output topic of the quickstart.
pub const OUTPUT: &str = "streams-wordcount-output";
/// The queryable store of the counts.
pub const STORE: &str = "word-counts";

/// Counts the words of the lines on `input` (lower-cased, split on anything that is
/// not alphanumeric) and writes each word's new count to `output`.
pub fn topology(input: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| words(&line))
        .group_by(
            |_, word: &String| word.clone(),
            Grouped::with(StringSerde, StringSerde),
        )
        .count(Materialized::as_store(STORE))
        .to_stream()
        .to(output, Produced::with(StringSerde, Nullable(I64Serde)));
    builder.build().expect("the word count topology is valid")
}

/// The words of `line`, lower-cased.
pub fn words(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The sample lines of `--sample`.
pub const SAMPLE: [&str; 3] = [
    "all streams lead to kafka",
    "hello kafka streams",
    "join kafka summit",
];
