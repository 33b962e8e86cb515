//! [`ConnectorConfig`]: the connector's settings. The platform's shared ones (broker,
//! registry, topic prefix, state directory, HTTP port, logs) come from
//! [`service_kit::ServiceConfig`]; the connector's own ones from [`ConnectorOptions`]
//! (command line, or the `CONNECTOR_*` environment).
//!
//! The connector always writes in transactions (exactly-once), whatever the platform's
//! `processing_guarantee`: its position is only sound if stored with what it publishes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use service_kit::ServiceConfig;

/// The service's name: its log and metrics name, its transactional id (behind the
/// topic prefix) and the stem of its offsets topic.
pub const SERVICE_NAME: &str = "customers-connector";

/// Default port of `/health` and `/metrics`.
pub const HTTP_PORT: u16 = 8006;

/// The file name of the database under the state directory, when none is given.
pub const DEFAULT_DB_FILE: &str = "customers.db";

/// The connector's own settings, each with a default and an environment variable.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "customers-connector",
    about = "Publishes the rows of a SQLite customers table to the customers topic"
)]
pub struct ConnectorOptions {
    /// The SQLite database holding table `customers`. Default
    /// `<state_dir>/customers.db` (`PLATFORM_STATE_DIR`).
    #[arg(long, env = "CONNECTOR_DB")]
    pub db: Option<PathBuf>,
    /// Milliseconds between two reads of the table.
    #[arg(long, env = "CONNECTOR_POLL_INTERVAL_MS", default_value_t = 1000)]
    pub poll_interval_ms: u64,
    /// Create the demo database (the nine demo customers) when the file is missing.
    #[arg(long, env = "CONNECTOR_DEMO_DB", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo_db: bool,
    /// The most changes written in one Kafka transaction; more wait for the next one.
    #[arg(long, env = "CONNECTOR_MAX_BATCH", default_value_t = 500)]
    pub max_batch: usize,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        ConnectorOptions {
            db: None,
            poll_interval_ms: 1000,
            demo_db: true,
            max_batch: 500,
        }
    }
}

/// Everything the connector runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorConfig {
    /// The platform's shared settings.
    pub service: ServiceConfig,
    /// The SQLite database.
    pub db_path: PathBuf,
    /// Time between two reads of the table.
    pub poll_interval: Duration,
    /// Whether a missing database is created with the demo customers.
    pub create_demo_db: bool,
    /// The most changes in one transaction (at least 1).
    pub max_batch: usize,
}

impl ConnectorConfig {
    /// The settings of `options` on top of the platform's `service` settings.
    pub fn new(service: ServiceConfig, options: &ConnectorOptions) -> Self {
        let db_path = options
            .db
            .clone()
            .unwrap_or_else(|| service.state_dir.join(DEFAULT_DB_FILE));
        ConnectorConfig {
            service,
            db_path,
            poll_interval: Duration::from_millis(options.poll_interval_ms),
            create_demo_db: options.demo_db,
            max_batch: options.max_batch.max(1),
        }
    }

    /// The topic the customers go to: `<prefix>customers`.
    pub fn customers_topic(&self) -> String {
        self.service.topics().customers
    }

    /// The compacted topic holding the connector's position:
    /// `<prefix>customers-connector-offsets`.
    pub fn offsets_topic(&self) -> String {
        format!("{}{SERVICE_NAME}-offsets", self.service.topic_prefix)
    }

    /// The producer's transactional id, `<prefix>customers-connector`: stable across
    /// restarts, so that a new instance fences its predecessor and aborts the
    /// transaction it left open.
    pub fn transactional_id(&self) -> String {
        format!("{}{SERVICE_NAME}", self.service.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_put_the_database_under_the_state_dir() {
        let service = ServiceConfig {
            state_dir: PathBuf::from("/var/lib/platform"),
            topic_prefix: "t-".into(),
            ..ServiceConfig::default()
        };
        let options = ConnectorOptions::try_parse_from(["customers-connector"]).unwrap();
        assert_eq!(options, ConnectorOptions::default());
        let config = ConnectorConfig::new(service, &options);
        assert_eq!(
            config.db_path,
            PathBuf::from("/var/lib/platform/customers.db")
        );
        assert_eq!(config.poll_interval, Duration::from_secs(1));
        assert!(config.create_demo_db);
        assert_eq!(config.customers_topic(), "t-customers");
        assert_eq!(config.offsets_topic(), "t-customers-connector-offsets");
        assert_eq!(config.transactional_id(), "t-customers-connector");
    }

    #[test]
    fn options_override_the_defaults() {
        let options = ConnectorOptions::try_parse_from([
            "customers-connector",
            "--db",
            "/tmp/c.db",
            "--poll-interval-ms",
            "250",
            "--demo-db",
            "false",
            "--max-batch",
            "0",
        ])
        .unwrap();
        let config = ConnectorConfig::new(ServiceConfig::default(), &options);
        assert_eq!(config.db_path, PathBuf::from("/tmp/c.db"));
        assert_eq!(config.poll_interval, Duration::from_millis(250));
        assert!(!config.create_demo_db);
        assert_eq!(config.max_batch, 1, "a batch holds at least one change");
    }
}
