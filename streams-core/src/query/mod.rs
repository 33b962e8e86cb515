//! Interactive queries across instances (feature `grpc`, on by default): the gRPC
//! service every instance with an `application_server` serves, and the
//! [`QueryRouter`] that sends each query to the instance holding its data.
//!
//! The wire format is `schemas/proto/streams_query.proto`: keys and values travel as the
//! bytes of the store's serdes. Which instance holds a key comes from the membership
//! metadata ([`KafkaStreams::query_metadata_for_key`](crate::runtime::KafkaStreams::query_metadata_for_key)).
//!
//! ```no_run
//! # async fn lookup(streams: &streams_core::runtime::KafkaStreams) -> Result<(), streams_core::runtime::StreamsError> {
//! use std::time::Duration;
//!
//! let router = streams.router().with_deadline(Duration::from_secs(2));
//! let answer = router.get::<String, i64>("counts", &"apple".to_string()).await?;
//! println!("{:?} from {:?}", answer.value, answer.answered_by);
//! # Ok(())
//! # }
//! ```

mod byte_reads;
pub(crate) mod proto;
mod router;
pub(crate) mod server;

pub use router::{QueryRouter, Routed, RouterOptions};
