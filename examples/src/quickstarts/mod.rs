//! The quickstart examples: small applications a newcomer runs with one command
//! against the local broker (`dev/kafka start`), each with sample input:
//!
//! | binary | module | shows |
//! |---|---|---|
//! | `word-count` | [`word_count`] | `flat_map_values`, `group_by`, `count`, a table to a topic |
//! | `purchase-enrichment` | [`purchase_enrichment`] | a stream joined with a `GlobalKTable` |
//! | `anomaly-detector` | [`anomaly_detector`] | tumbling-window counts, `suppress_until_window_closes` |
//! | `query-service` | [`query_service`] | two instances answering HTTP lookups through interactive queries |
//!
//! ```text
//! cargo run -p streams-examples --bin word-count -- --sample
//! ```
//!
//! Each creates its topics if they are missing, sends its sample input with
//! `--sample`, prints what it writes to its output topic, and stops on Ctrl-C.

pub mod anomaly_detector;
pub mod plumbing;
pub mod purchase_enrichment;
pub mod query_service;
pub mod word_count;
