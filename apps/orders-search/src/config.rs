//! [`SearchConfig`]: the search service's own settings (engine, index, batching, the
//! fraud report), beside service-kit's [`ServiceConfig`](service_kit::ServiceConfig)
//! for Kafka, the registry, the topic prefix and the HTTP port.
//!
//! Layers: defaults ← TOML file named by `ORDERS_SEARCH_CONFIG` (optional) ←
//! `OPENSEARCH_URL` (as `dev/test` exports it) ← `ORDERS_SEARCH_<FIELD>`. They are
//! apart from service-kit's `PLATFORM_*` settings because those reject unknown keys.

use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The settings of the search service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Base URL of the Elasticsearch-compatible engine. Default `http://127.0.0.1:9200`
    /// (`dev/opensearch start`).
    pub engine_url: String,
    /// Index name; the platform's topic prefix goes in front. Default `orders`.
    pub index: String,
    /// Most documents in one `_bulk` request. Default 500.
    pub batch_size: usize,
    /// How long the first record of a batch waits for more before the batch is written,
    /// in ms. Default 100 (the live page shows an order within about a second).
    pub linger_ms: u64,
    /// Timeout of one request to the engine, in ms. Default 10000.
    pub request_timeout_ms: u64,
    /// How long a batch is retried (exponential backoff with jitter) before the sink
    /// gives it up and re-reads it from the last committed offsets, in ms. Default 60000.
    pub retry_timeout_ms: u64,
    /// Base URL of the order-enrichment service's fraud report (`GET /fraud`). Default
    /// `http://127.0.0.1:8010`.
    pub fraud_report_url: String,
    /// Consumer group of the sink; default `<prefix>orders-search`.
    pub group_id: Option<String>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            engine_url: "http://127.0.0.1:9200".into(),
            index: "orders".into(),
            batch_size: 500,
            linger_ms: 100,
            request_timeout_ms: 10_000,
            retry_timeout_ms: 60_000,
            fraud_report_url: "http://127.0.0.1:8010".into(),
            group_id: None,
        }
    }
}

impl SearchConfig {
    /// Loads the settings from the defaults, the file named by `ORDERS_SEARCH_CONFIG`
    /// if set, and the environment.
    pub fn load() -> Result<Self, Error> {
        Self::from_figment(Self::figment(std::env::var("ORDERS_SEARCH_CONFIG").ok()))
    }

    /// The layers [`load`](Self::load) reads, for tests and tools.
    pub fn figment(file: Option<String>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(SearchConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::raw()
                    .only(&["OPENSEARCH_URL"])
                    .map(|_| "engine_url".into()),
            )
            .merge(Env::prefixed("ORDERS_SEARCH_").ignore(&["CONFIG"]))
    }

    /// Extracts and checks the settings.
    pub fn from_figment(figment: Figment) -> Result<Self, Error> {
        let config: SearchConfig = figment
            .extract()
            .map_err(|e| Error::Config(format!("reading the search configuration: {e}")))?;
        if config.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if config.request_timeout_ms == 0 {
            return Err(Error::Config(
                "request_timeout_ms must be at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// The index of the platform whose topic prefix is `prefix`: `<prefix><index>`.
    /// Engines want index names in lower case, without `/ \ * ? " < > | , #` or spaces,
    /// and not starting with `_`, `-` or `+`.
    pub fn index_name(&self, prefix: &str) -> Result<String, Error> {
        let name = format!("{prefix}{}", self.index);
        let bad_char = name
            .chars()
            .find(|c| c.is_uppercase() || c.is_whitespace() || r#"/\*?"<>|,#:"#.contains(*c));
        if name.is_empty() || name.starts_with(['_', '-', '+']) || bad_char.is_some() {
            return Err(Error::Config(format!(
                "index name {name:?} (topic prefix + index) is not a valid index name: \
                 lower case, no spaces or /\\*?\"<>|,#:, not starting with _ - +"
            )));
        }
        Ok(name)
    }

    /// The sink's consumer group under topic prefix `prefix`.
    pub fn group_id(&self, prefix: &str) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("{prefix}{}", crate::SERVICE_NAME))
    }

    /// [`linger_ms`](Self::linger_ms) as a duration.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    /// [`request_timeout_ms`](Self::request_timeout_ms) as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`retry_timeout_ms`](Self::retry_timeout_ms) as a duration.
    pub fn retry_timeout(&self) -> Duration {
        Duration::from_millis(self.retry_timeout_ms)
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
            let config = SearchConfig::from_figment(SearchConfig::figment(None)).unwrap();
            assert_eq!(config, SearchConfig::default());

            jail.create_file("search.toml", "batch_size = 50\nindex = \"o\"\n")?;
            jail.set_env("OPENSEARCH_URL", "http://engine:9200");
            jail.set_env("ORDERS_SEARCH_BATCH_SIZE", "7");
            jail.set_env("ORDERS_SEARCH_FRAUD_REPORT_URL", "http://fraud:8010");
            let config =
                SearchConfig::from_figment(SearchConfig::figment(Some("search.toml".into())))
                    .unwrap();
            assert_eq!(config.batch_size, 7, "the environment wins over the file");
            assert_eq!(config.index, "o");
            assert_eq!(config.engine_url, "http://engine:9200");
            assert_eq!(config.fraud_report_url, "http://fraud:8010");

            jail.set_env("ORDERS_SEARCH_ENGINE_URL", "http://other:9200");
            let config = SearchConfig::from_figment(SearchConfig::figment(None)).unwrap();
            assert_eq!(config.engine_url, "http://other:9200");
            Ok(())
        });
    }

    #[test]
    fn mistakes_name_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORDERS_SEARCH_BATCH_SIZE", "lots");
            let error = SearchConfig::from_figment(SearchConfig::figment(None)).unwrap_err();
            assert!(
                error.to_string().to_lowercase().contains("batch_size"),
                "{error}"
            );
            jail.set_env("ORDERS_SEARCH_BATCH_SIZE", "0");
            let error = SearchConfig::from_figment(SearchConfig::figment(None)).unwrap_err();
            assert!(
                error.to_string().to_lowercase().contains("batch_size"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_index_takes_the_prefix_and_must_be_valid() {
        let config = SearchConfig::default();
        assert_eq!(config.index_name("").unwrap(), "orders");
        assert_eq!(config.index_name("it-1-").unwrap(), "it-1-orders");
        assert!(config.index_name("Upper-").is_err());
        assert!(config.index_name("_x").is_err());
        assert_eq!(config.group_id("p-"), "p-orders-search");
    }
}
