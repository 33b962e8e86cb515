//! State stores as topologies use them: declared with [`Stores`] and
//! [`StreamsBuilder::add_state_store`](crate::StreamsBuilder::add_state_store), reached
//! from processors by name through typed handles
//! ([`TaskContext::key_value_store`](crate::processor::TaskContext::key_value_store),
//! [`window_store`](crate::processor::TaskContext::window_store),
//! [`session_store`](crate::processor::TaskContext::session_store)),
//! and created per task by the runtime (RocksDB or in memory, logged to
//! `<application.id>-<store>-changelog` and restored from it) and by the test driver.
//!
//! Three kinds, as in Kafka Streams: key-value stores ([`Stores::key_value`]), window
//! stores of values per key and window start ([`Stores::window`]) and session stores of
//! aggregates per key and session ([`Stores::session`]). Window and session stores drop
//! data older than their retention; their changelogs are compacted and deleted after the
//! retention plus one day. Their results carry [`Windowed`] keys, which
//! [`TimeWindowedSerde`] and [`SessionWindowedSerde`] write in Kafka's layouts.
//!
//! ```
//! use streams_core::processor::{ProcessError, Processor, ProcessorContext};
//! use streams_core::serde::{I64Serde, StringSerde};
//! use streams_core::state::Stores;
//! use streams_core::test_driver::TopologyTestDriver;
//! use streams_core::{Consumed, Produced, Record, StreamsBuilder};
//!
//! /// Counts records per key in the store "counts".
//! struct Counter;
//!
//! impl Processor<String, String, String, i64> for Counter {
//!     fn process(
//!         &mut self,
//!         ctx: &mut ProcessorContext<'_, String, i64>,
//!         record: Record<String, String>,
//!     ) -> Result<(), ProcessError> {
//!         let store = ctx.key_value_store::<String, i64>("counts")?;
//!         let count = store.get(&record.key)?.unwrap_or(0) + 1;
//!         store.put(&record.key, &count)?;
//!         ctx.forward(record.with_value(count))
//!     }
//! }
//!
//! let builder = StreamsBuilder::new();
//! builder.add_state_store(Stores::key_value("counts", StringSerde, I64Serde));
//! builder
//!     .stream("words", Consumed::with(StringSerde, StringSerde))
//!     .process_with_stores(|| Counter, &["counts"])
//!     .to("counts-out", Produced::with(StringSerde, I64Serde));
//! let driver = TopologyTestDriver::new(builder.build().unwrap());
//! let words = driver.input_topic("words", StringSerde, StringSerde);
//! words.pipe_input("a".into(), "x".into());
//! words.pipe_input("a".into(), "y".into());
//! let counts = driver.key_value_store::<String, i64>("counts").unwrap();
//! assert_eq!(counts.get(&"a".to_string()), Some(2));
//! ```

pub(crate) mod definition;
pub(crate) mod global;
mod key_value;
pub(crate) mod queryable;
pub(crate) mod record_cache;
mod session;
pub(crate) mod task_stores;
pub(crate) mod typed;
mod window;
mod windowed;

pub use definition::{
    KeyValueStoreBuilder, SessionStoreBuilder, StoreBuilder, Stores, WindowStoreBuilder,
};
pub(crate) use definition::{KvSerdes, StoreDefinition, StoreKind};
pub use global::GlobalKeyValueStore;
pub use key_value::KeyValueStore;
pub use session::SessionStore;
pub use window::WindowStore;
pub use windowed::{SessionWindowedSerde, TimeWindowedSerde, Window, Windowed};

/// The changelog topic of `store` in application `application_id`.
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}
