//! The librdkafka settings every consumer of the runtime starts from (stream, restore
//! and global consumers alike), before each adds what its role needs.

use rdkafka::config::ClientConfig;

use super::{ProcessingGuarantee, StreamsConfig};

/// Fetch settings every consumer starts from. librdkafka stops fetching a partition
/// for `fetch.queue.backoff.ms` (1000 ms by default) whenever its local queue holds
/// `queued.min.messages`: a stream thread faster than that second then sits idle in
/// poll. 10 ms measured up to 8x the throughput of the default with no more CPU per
/// record (`benches/RESULTS.md`). Overrides always win.
pub(crate) const FETCH_DEFAULTS: [(&str, &str); 1] = [("fetch.queue.backoff.ms", "10")];

/// How long the broker may hold a fetch of a read-committed consumer waiting for data.
/// Records of a transaction become readable when it commits, without a new append, and
/// a fetch already waiting at the broker is not answered then: it waits its whole
/// `fetch.wait.max.ms` (librdkafka's default 500 ms). Each exactly-once hop of a
/// pipeline paid that: one order through the platform's checks and aggregator took
/// 0.6 to 2.3 s with the default and 0.6 to 0.7 s with 50 ms. Overrides win.
pub(crate) const READ_COMMITTED_FETCH_WAIT: (&str, &str) = ("fetch.wait.max.ms", "50");

/// The isolation level the processing guarantee needs: read committed under
/// exactly-once, so aborted writes are never read.
pub(crate) fn isolation_level(guarantee: ProcessingGuarantee) -> &'static str {
    match guarantee {
        ProcessingGuarantee::AtLeastOnce => "read_uncommitted",
        ProcessingGuarantee::ExactlyOnceV2 => "read_committed",
    }
}

/// Whether the stream thread's consumer reads committed records only: as the processing
/// guarantee needs, unless the user's overrides say otherwise.
pub(crate) fn reads_committed(config: &StreamsConfig) -> bool {
    config
        .consumer_overrides
        .get("isolation.level")
        .map_or(isolation_level(config.processing_guarantee), String::as_str)
        == "read_committed"
}

/// Sets the user's consumer overrides (connection and security settings above all) on
/// `client`, a consumer that is not the stream thread's group member: its own
/// `group.id` stays.
pub(crate) fn apply_consumer_overrides(client: &mut ClientConfig, config: &StreamsConfig) {
    for (key, value) in &config.consumer_overrides {
        if key != "group.id" {
            client.set(key, value);
        }
    }
}

/// A consumer configuration for `config`'s cluster named `client_id`: the fetch defaults
/// and the isolation level of the processing guarantee.
pub(crate) fn consumer_config(config: &StreamsConfig, client_id: String) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", client_id)
        .set(
            "isolation.level",
            isolation_level(config.processing_guarantee),
        );
    for (key, value) in FETCH_DEFAULTS {
        client.set(key, value);
    }
    if config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
        client.set(READ_COMMITTED_FETCH_WAIT.0, READ_COMMITTED_FETCH_WAIT.1);
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_starts_from_the_fetch_defaults_and_the_guarantee_s_isolation() {
        let config = StreamsConfig::new("app", "127.0.0.1:9092")
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
        let client = consumer_config(&config, "app-1-consumer".into());
        for (key, value) in FETCH_DEFAULTS {
            assert_eq!(client.get(key), Some(value));
        }
        assert_eq!(client.get("isolation.level"), Some("read_committed"));
        assert_eq!(client.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(client.get("client.id"), Some("app-1-consumer"));
        let config = StreamsConfig::new("app", "127.0.0.1:9092");
        let client = consumer_config(&config, "c".into());
        assert_eq!(client.get("isolation.level"), Some("read_uncommitted"));
        assert_eq!(
            client.get("fetch.wait.max.ms"),
            None,
            "librdkafka's default"
        );
    }

    #[test]
    fn reading_committed_follows_the_guarantee_unless_overridden() {
        let alos = StreamsConfig::new("app", "127.0.0.1:9092");
        let eos = alos
            .clone()
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
        assert!(!reads_committed(&alos));
        assert!(reads_committed(&eos));
        assert!(reads_committed(
            &alos.with_consumer_setting("isolation.level", "read_committed")
        ));
        assert!(!reads_committed(
            &eos.with_consumer_setting("isolation.level", "read_uncommitted")
        ));
    }

    #[test]
    fn side_consumers_take_the_users_settings_but_keep_their_group() {
        let config = StreamsConfig::new("app", "127.0.0.1:9092")
            .with_consumer_setting("security.protocol", "SASL_SSL")
            .with_consumer_setting("group.id", "not-for-side-consumers");
        let mut client = consumer_config(&config, "app-global-consumer".into());
        client.set("group.id", "app-global");
        apply_consumer_overrides(&mut client, &config);
        assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(client.get("group.id"), Some("app-global"));
    }
}
