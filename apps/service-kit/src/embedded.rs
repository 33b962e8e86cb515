//! The three checks and the validations aggregator run inside one process, each as
//! its own application (as their services would run them): for tests of the whole
//! validation flow and for single-process demos.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use orders_platform::checks::{fraud, inventory, order_details};
use orders_platform::schemas::avsc;
use orders_platform::serdes::PlatformSerdes;
use orders_platform::validations_aggregator;
use streams_core::runtime::{DeserializationErrorHandler, KafkaStreams, State};
use streams_core::Topology;

use crate::config::ServiceConfig;
use crate::service::registry;
use crate::topics::ensure_topics;

/// The running checks and aggregator; closed when dropped.
pub struct EmbeddedChecks {
    instances: Vec<KafkaStreams>,
    /// The serdes they use (Avro through the registry).
    pub serdes: PlatformSerdes,
    /// Where records that do not decode go.
    pub dead_letters: String,
}

impl EmbeddedChecks {
    /// Creates the topics, registers the schemas and starts the four applications
    /// (application ids `<prefix>order-details-service` and so on), with their state
    /// under `state_dir`; waits until each runs.
    pub fn start(config: &ServiceConfig, state_dir: &Path) -> Result<Self> {
        let topics = config.topics();
        let prefix = &config.topic_prefix;
        let dead_letters = format!("{prefix}checks-dead-letters");
        ensure_topics(
            config,
            &[
                topics.orders.clone(),
                topics.order_validations.clone(),
                topics.warehouse_inventory.clone(),
                dead_letters.clone(),
            ],
        )?;
        let writes = [
            (topics.orders.clone(), avsc::ORDER),
            (topics.order_validations.clone(), avsc::ORDER_VALIDATION),
        ];
        let serdes = PlatformSerdes::avro(registry(config, &writes)?)?;
        let applications: [(&str, Topology); 4] = [
            (
                "order-details-service",
                order_details::topology(&serdes, &topics),
            ),
            ("inventory-service", inventory::topology(&serdes, &topics)),
            ("fraud-service", fraud::topology(&serdes, &topics)),
            (
                "validations-aggregator",
                validations_aggregator::topology(&serdes, &topics, Some(config.partitions)),
            ),
        ];
        let mut instances = Vec::new();
        for (name, topology) in applications {
            let streams_config = config
                .streams_config(&format!("{prefix}{name}"))?
                .with_state_dir(state_dir.join(name))
                .with_deserialization_error_handler(DeserializationErrorHandler::DeadLetter {
                    topic: dead_letters.clone(),
                });
            let streams = KafkaStreams::new(topology, streams_config)?;
            streams.start()?;
            instances.push(streams);
        }
        let checks = EmbeddedChecks {
            instances,
            serdes,
            dead_letters,
        };
        for streams in &checks.instances {
            if !streams.wait_for_state(State::Running, Duration::from_secs(60)) {
                bail!("a check did not start: {:?}", streams.thread_errors());
            }
        }
        Ok(checks)
    }
}

impl Drop for EmbeddedChecks {
    fn drop(&mut self) {
        for streams in &self.instances {
            streams.close(Duration::from_secs(30));
        }
    }
}
