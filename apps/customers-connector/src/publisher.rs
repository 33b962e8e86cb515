//! The publisher: a transactional Kafka producer writing each batch of changes to
//! `customers` together with the position records that store it, in one transaction.
//!
//! Customer records are keyed by the id as an 8-byte big-endian long (Java's
//! `LongSerializer` layout) and partitioned like Java's clients (murmur2 of the key
//! bytes, `partitioner=murmur2_random`); values are `Customer` in Avro, in the schema
//! registry's wire format; a deleted customer is a tombstone (null value). The
//! producer is idempotent with `acks=all`.
//!
//! Its transactional id is stable (`<prefix>customers-connector`):
//! [`Publisher::new`] initializes transactions, which fences any earlier instance and
//! aborts the transaction it may have left open when it crashed. Readers of `customers`
//! must read committed records only (`isolation.level=read_committed`, as the platform's
//! exactly-once services do) not to see the records of such an aborted transaction.

use std::sync::Arc;
use std::time::Duration;

use orders_platform::records::Customer;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use streams_core::serde::{Serde, SerdeError};

use crate::changes::Change;
use crate::config::ConnectorConfig;
use crate::position;

/// How long initializing transactions may take (the coordinator may first have to
/// abort a predecessor's transaction).
const INIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long committing or aborting a transaction may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a send waits for room in the producer's queue.
const QUEUE_FULL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a batch was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A customer did not serialize (the registry did not answer, say).
    #[error("serializing customer {id}: {source}")]
    Serialize {
        /// The customer.
        id: i64,
        /// The serde's error.
        #[source]
        source: SerdeError,
    },
    /// The transaction failed and was aborted: nothing of the batch is visible to
    /// committed readers, and the position is unchanged. Publishing again is safe.
    #[error("the transaction was aborted: {0}")]
    Aborted(#[source] KafkaError),
    /// The producer is unusable (fenced by a newer instance, or a call's outcome is
    /// unknown): the connector must start over with a new producer and re-read its
    /// position.
    #[error("{what}: {source}")]
    Fatal {
        /// What was being done.
        what: &'static str,
        /// Kafka's error.
        #[source]
        source: KafkaError,
    },
}

/// Writes batches of changes, with their position, in transactions.
pub struct Publisher {
    producer: ThreadedProducer<DefaultProducerContext>,
    serde: Arc<dyn Serde<Customer>>,
    customers_topic: String,
    offsets_topic: String,
}

impl Publisher {
    /// Creates the transactional producer and initializes its transactions (fencing
    /// earlier instances). `serde` writes the `Customer` values.
    pub fn new(
        config: &ConnectorConfig,
        serde: Arc<dyn Serde<Customer>>,
    ) -> Result<Self, PublishError> {
        let fatal = |what| move |source| PublishError::Fatal { what, source };
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &config.service.bootstrap_servers)
            .set("client.id", config.transactional_id())
            .set("transactional.id", config.transactional_id())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Same partition as Kafka's Java clients for the same key bytes.
            .set("partitioner", "murmur2_random")
            // A transaction left open by a crash blocks read_committed readers until the
            // broker aborts it (unless a restarted connector fences it first): keep that
            // short, as the platform's streams services do.
            .set("transaction.timeout.ms", "10000")
            .set("linger.ms", "5")
            .create()
            .map_err(fatal("creating the producer"))?;
        producer.init_transactions(INIT_TIMEOUT).map_err(fatal(
            "initializing transactions (is the broker up? `dev/kafka start`)",
        ))?;
        Ok(Publisher {
            producer,
            serde,
            customers_topic: config.customers_topic(),
            offsets_topic: config.offsets_topic(),
        })
    }

    /// Publishes `changes` and the position records storing them in one transaction;
    /// returns once it is committed. On an error the transaction is aborted if it can
    /// be ([`PublishError::Aborted`]); otherwise the publisher must be replaced
    /// ([`PublishError::Fatal`]).
    pub fn publish(&self, changes: &[Change]) -> Result<(), PublishError> {
        if changes.is_empty() {
            return Ok(());
        }
        // Serialize first: a registry failure then leaves no transaction to abort.
        let mut records = Vec::with_capacity(changes.len());
        for change in changes {
            let value = match change {
                Change::Upsert(customer) => self.serialize(customer)?,
                Change::Delete(_) => None,
            };
            records.push((change.id().to_be_bytes(), value, position::record(change)));
        }
        self.producer
            .begin_transaction()
            .map_err(|source| PublishError::Fatal {
                what: "beginning a transaction",
                source,
            })?;
        let sent = records.iter().try_for_each(|(key, value, (pkey, pvalue))| {
            self.send(&self.customers_topic, key, value.as_deref())?;
            self.send(&self.offsets_topic, pkey, pvalue.as_deref())
        });
        let outcome = sent.and_then(|()| self.producer.commit_transaction(CALL_TIMEOUT));
        match outcome {
            Ok(()) => Ok(()),
            Err(error) => Err(self.abort(error)),
        }
    }

    /// The Avro value of `customer`.
    fn serialize(&self, customer: &Customer) -> Result<Option<Vec<u8>>, PublishError> {
        self.serde
            .serialize(&self.customers_topic, customer)
            .map_err(|source| PublishError::Serialize {
                id: customer.id,
                source,
            })
    }

    /// Sends one record of the open transaction.
    fn send(&self, topic: &str, key: &[u8], value: Option<&[u8]>) -> Result<(), KafkaError> {
        let mut record = BaseRecord::to(topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        let deadline = std::time::Instant::now() + QUEUE_FULL_TIMEOUT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if std::time::Instant::now() < deadline =>
                {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Turns the failure `error` of an open transaction into the error to report,
    /// aborting the transaction when that is possible.
    fn abort(&self, error: KafkaError) -> PublishError {
        let abortable = match &error {
            KafkaError::Transaction(e) => {
                e.txn_requires_abort()
                    && !e.is_fatal()
                    && e.code() != RDKafkaErrorCode::OperationTimedOut
            }
            // A send refused locally (a message too large, say): the transaction is
            // still healthy and can be aborted.
            KafkaError::MessageProduction(_) => true,
            _ => false,
        };
        if !abortable {
            // A commit that timed out may have succeeded: only a new producer and the
            // position read back tell.
            return PublishError::Fatal {
                what: "committing a transaction",
                source: error,
            };
        }
        match self.producer.abort_transaction(CALL_TIMEOUT) {
            Ok(()) => PublishError::Aborted(error),
            Err(source) => PublishError::Fatal {
                what: "aborting a transaction",
                source,
            },
        }
    }
}
