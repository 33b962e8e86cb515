//! [`ServiceConfig`]: the settings of a platform service, typed and with defaults,
//! layered as defaults ← TOML file (`PLATFORM_CONFIG`, optional) ← environment
//! (`PLATFORM_<FIELD>`, plus `KAFKA_BOOTSTRAP` and `SCHEMA_REGISTRY_URL` as the dev
//! scripts export them).

use std::path::PathBuf;

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use orders_platform::topics::PlatformTopics;
use serde::{Deserialize, Serialize};
use streams_core::runtime::{ProcessingGuarantee, StreamsConfig};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The settings of one platform service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Kafka bootstrap servers. Default `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// The schema registry's Confluent-compatible API. Default the dev registry.
    pub schema_registry_url: String,
    /// Where state stores live. Default `<tmp>/orders-platform`.
    pub state_dir: PathBuf,
    /// Address the HTTP endpoints (`/health`, `/metrics`, a service's API) bind. Default
    /// `127.0.0.1`.
    pub http_host: String,
    /// Port of the HTTP endpoints; each service has its own default.
    pub http_port: u16,
    /// Partitions of the platform's topics when they are created. Default 3.
    pub partitions: i32,
    /// Replication factor of the platform's topics when they are created. Default 1.
    pub replication_factor: i32,
    /// `exactly_once_v2` (default) or `at_least_once`.
    pub processing_guarantee: String,
    /// How often the services commit, in ms. Default 10: every hop of an order through
    /// the platform waits for its writer's commit (a transaction under exactly-once),
    /// and with the library's 100 ms the order's median POST→VALIDATED time was 1.0 s,
    /// with 10 ms 0.6-0.7 s (`benches/RESULTS.md`). The originals committed as often as
    /// they could too.
    pub commit_interval_ms: u64,
    /// Log format. Default text.
    pub log_format: LogFormat,
    /// `host:port` of this instance's query endpoint, for services serving
    /// interactive queries.
    pub application_server: Option<String>,
    /// The consumers' `session.timeout.ms`: how soon a dead instance's partitions move.
    /// Default: librdkafka's (45 s).
    pub session_timeout_ms: Option<u64>,
    /// Put in front of every topic name of the platform and of every application id
    /// (tests, several platforms on one cluster). Default empty: the reference names.
    pub topic_prefix: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            schema_registry_url: "http://127.0.0.1:8081/apis/ccompat/v7".into(),
            state_dir: std::env::temp_dir().join("orders-platform"),
            http_host: "127.0.0.1".into(),
            http_port: 8080,
            partitions: 3,
            replication_factor: 1,
            processing_guarantee: "exactly_once_v2".into(),
            commit_interval_ms: 10,
            log_format: LogFormat::Text,
            application_server: None,
            session_timeout_ms: None,
            topic_prefix: String::new(),
        }
    }
}

impl ServiceConfig {
    /// Loads the settings of a service whose HTTP port defaults to `http_port`: from
    /// the defaults, the TOML file named by `PLATFORM_CONFIG` if set, and the environment.
    pub fn load(http_port: u16) -> Result<Self> {
        Self::from_figment(Self::figment(
            http_port,
            std::env::var("PLATFORM_CONFIG").ok(),
        ))
    }

    /// The layers [`load`](Self::load) reads, for tests and tools.
    pub fn figment(http_port: u16, file: Option<String>) -> Figment {
        let defaults = ServiceConfig {
            http_port,
            ..ServiceConfig::default()
        };
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::raw()
                    .only(&["KAFKA_BOOTSTRAP"])
                    .map(|_| "bootstrap_servers".into()),
            )
            .merge(
                Env::raw()
                    .only(&["SCHEMA_REGISTRY_URL"])
                    .map(|_| "schema_registry_url".into()),
            )
            .merge(Env::prefixed("PLATFORM_").ignore(&["CONFIG"]))
    }

    /// Extracts and checks the settings.
    pub fn from_figment(figment: Figment) -> Result<Self> {
        let config: ServiceConfig = figment
            .extract()
            .context("reading the service configuration")?;
        config.guarantee()?;
        anyhow::ensure!(
            config.partitions > 0,
            "partitions must be at least 1, not {}",
            config.partitions
        );
        Ok(config)
    }

    /// The defaults on the cluster at `bootstrap_servers` with its schema registry at
    /// `schema_registry_url`, topics and application ids behind `topic_prefix`: for
    /// tools and tests that share a cluster with other platforms.
    pub fn on_cluster(
        bootstrap_servers: impl Into<String>,
        schema_registry_url: impl Into<String>,
        topic_prefix: impl Into<String>,
    ) -> Self {
        ServiceConfig {
            bootstrap_servers: bootstrap_servers.into(),
            schema_registry_url: schema_registry_url.into(),
            topic_prefix: topic_prefix.into(),
            ..ServiceConfig::default()
        }
    }

    /// The processing guarantee.
    pub fn guarantee(&self) -> Result<ProcessingGuarantee> {
        self.processing_guarantee
            .parse()
            .with_context(|| format!("processing_guarantee {:?}", self.processing_guarantee))
    }

    /// The platform's topic names under these settings.
    pub fn topics(&self) -> PlatformTopics {
        PlatformTopics::with_prefix(&self.topic_prefix)
    }

    /// The streams configuration of application `application_id` under these settings.
    pub fn streams_config(&self, application_id: &str) -> Result<StreamsConfig> {
        let mut config = StreamsConfig::new(application_id, &self.bootstrap_servers)
            .with_processing_guarantee(self.guarantee()?)
            .with_commit_interval(std::time::Duration::from_millis(self.commit_interval_ms))
            .with_state_dir(self.state_dir.join(application_id));
        config.replication_factor = self.replication_factor;
        if let Some(server) = &self.application_server {
            config = config.with_application_server(server);
        }
        if let Some(ms) = self.session_timeout_ms {
            config = config
                .with_consumer_setting("session.timeout.ms", ms.to_string())
                .with_consumer_setting(
                    "heartbeat.interval.ms",
                    (ms / 6).clamp(100, 3000).to_string(),
                );
        }
        Ok(config.with_env_overrides()?)
    }
}

#[cfg(test)]
// figment's `Jail` closures return its large error type; that is its API.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_environment() {
        figment::Jail::expect_with(|jail| {
            let config = ServiceConfig::from_figment(ServiceConfig::figment(8002, None)).unwrap();
            assert_eq!(config.http_port, 8002);
            assert_eq!(config.partitions, 3);
            assert_eq!(
                config.guarantee().unwrap(),
                ProcessingGuarantee::ExactlyOnceV2
            );

            jail.create_file(
                "platform.toml",
                "partitions = 6\nlog_format = \"json\"\nhttp_port = 9000\n",
            )?;
            jail.set_env("PLATFORM_HTTP_PORT", "9100");
            jail.set_env("KAFKA_BOOTSTRAP", "broker:29092");
            let config = ServiceConfig::from_figment(ServiceConfig::figment(
                8002,
                Some("platform.toml".into()),
            ))
            .unwrap();
            assert_eq!(config.partitions, 6);
            assert_eq!(config.log_format, LogFormat::Json);
            assert_eq!(config.http_port, 9100, "the environment wins over the file");
            assert_eq!(config.bootstrap_servers, "broker:29092");
            Ok(())
        });
    }

    #[test]
    fn mistakes_are_errors_that_name_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PLATFORM_PARTITIONS", "many");
            let error =
                ServiceConfig::from_figment(ServiceConfig::figment(8001, None)).unwrap_err();
            assert!(
                format!("{error:#}").to_lowercase().contains("partitions"),
                "{error:#}"
            );
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("PLATFORM_PROCESSING_GUARANTEE", "maybe_once");
            let error =
                ServiceConfig::from_figment(ServiceConfig::figment(8001, None)).unwrap_err();
            assert!(
                format!("{error:#}").contains("processing_guarantee"),
                "{error:#}"
            );
            Ok(())
        });
    }
}
