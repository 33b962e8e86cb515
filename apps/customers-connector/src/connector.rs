//! The connector: its start-up (demo database, topics, schema, producer, position) and
//! its poll loop — read the table, detect the changes, publish them with their position,
//! wait the poll interval — run on a thread of its own with a status for `/health`.
//!
//! A failed poll whose batch was aborted (or that could not read the table) is simply
//! retried at the next poll: nothing of it was committed and the in-memory position is
//! unchanged. Any other failure (producer fenced, a commit's outcome unknown) starts
//! the connector over — a new producer, whose initialization aborts what may be open,
//! and the position read back from Kafka — so that even then nothing is lost or sent
//! twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use orders_platform::schemas::avsc;
use orders_platform::serdes::PlatformSerdes;

use crate::changes::{self, Change};
use crate::config::ConnectorConfig;
use crate::position::{self, Position, PositionError};
use crate::publisher::{PublishError, Publisher};
use crate::table::{self, CustomerTable, TableError};

/// An error of another crate, kept as the source of [`ConnectorError::Setup`].
type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// The longest wait between two attempts to start over after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why the connector could not start or poll.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Reading the table (or creating the demo database) failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Reading or storing the position failed.
    #[error(transparent)]
    Position(#[from] PositionError),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Creating the customers topic or registering the schema failed.
    #[error("{what}: {source}")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: BoxedError,
    },
}

impl ConnectorError {
    fn setup<E: Into<BoxedError>>(what: &'static str) -> impl FnOnce(E) -> ConnectorError {
        move |e| ConnectorError::Setup {
            what,
            source: e.into(),
        }
    }

    /// Whether the connector must start over (new producer, position read back) rather
    /// than simply poll again.
    pub fn needs_restart(&self) -> bool {
        !matches!(
            self,
            ConnectorError::Table(_)
                | ConnectorError::Publish(PublishError::Aborted(_))
                | ConnectorError::Publish(PublishError::Serialize { .. })
        )
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Rows in the table.
    pub rows: usize,
    /// New or updated customers published.
    pub upserts: usize,
    /// Tombstones published.
    pub deletes: usize,
    /// Transactions committed.
    pub transactions: usize,
}

/// A started connector: the table, its position and its publisher.
pub struct Connector {
    config: ConnectorConfig,
    table: CustomerTable,
    position: Position,
    publisher: Publisher,
}

impl Connector {
    /// Creates the demo database if it is missing (and asked for), the customers and
    /// offsets topics, registers the `Customer` schema under `<topic>-value`, starts the
    /// transactional producer (fencing earlier instances) and reads the position.
    pub fn start(config: &ConnectorConfig) -> Result<Self, ConnectorError> {
        if config.create_demo_db && table::create_demo_database(&config.db_path)? {
            tracing::info!(db = %config.db_path.display(), "created the demo database");
        }
        let table = CustomerTable::open(&config.db_path)?;
        let customers_topic = config.customers_topic();
        let topics = std::slice::from_ref(&customers_topic);
        service_kit::topics::ensure_topics(&config.service, topics)
            .map_err(ConnectorError::setup("creating the customers topic"))?;
        position::ensure_offsets_topic(config)?;
        let writes = [(customers_topic, avsc::CUSTOMER)];
        let registry = service_kit::service::registry(&config.service, &writes)
            .map_err(ConnectorError::setup("registering the Customer schema"))?;
        let serdes = PlatformSerdes::avro(registry)
            .map_err(ConnectorError::setup("creating the Avro serdes"))?;
        let publisher = Publisher::new(config, serdes.customer)?;
        let position = position::load(config)?;
        tracing::info!(
            db = %config.db_path.display(),
            topic = config.customers_topic(),
            published = position.len(),
            "connector started"
        );
        Ok(Connector {
            config: config.clone(),
            table,
            position,
            publisher,
        })
    }

    /// What has been published.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Reads the table once and publishes its changes, in id order, in transactions of
    /// at most `max_batch` changes each.
    pub fn poll_once(&mut self) -> Result<PollOutcome, ConnectorError> {
        let rows = self.table.read_all()?;
        metrics::gauge!("customers_connector_table_rows").set(rows.len() as f64);
        let changes = changes::detect(&self.position, &rows);
        let mut outcome = PollOutcome {
            rows: rows.len(),
            ..PollOutcome::default()
        };
        for batch in changes.chunks(self.config.max_batch) {
            if let Err(error) = self.publisher.publish(batch) {
                let outcome = if matches!(error, PublishError::Aborted(_)) {
                    "aborted"
                } else {
                    "failed"
                };
                metrics::counter!("customers_connector_transactions_total", "outcome" => outcome)
                    .increment(1);
                return Err(error.into());
            }
            metrics::counter!("customers_connector_transactions_total", "outcome" => "committed")
                .increment(1);
            let deletes = batch
                .iter()
                .filter(|c| matches!(c, Change::Delete(_)))
                .count();
            for change in batch {
                self.position.apply(change);
            }
            metrics::counter!("customers_connector_records_total", "kind" => "upsert")
                .increment((batch.len() - deletes) as u64);
            metrics::counter!("customers_connector_records_total", "kind" => "tombstone")
                .increment(deletes as u64);
            outcome.upserts += batch.len() - deletes;
            outcome.deletes += deletes;
            outcome.transactions += 1;
            tracing::info!(
                upserts = batch.len() - deletes,
                deletes,
                first_id = batch[0].id(),
                last_id = batch[batch.len() - 1].id(),
                "published changes"
            );
        }
        Ok(outcome)
    }
}

/// Where the running connector is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ConnectorState {
    /// Starting (or starting over after a failure).
    Starting,
    /// Polling the table.
    Running,
    /// The last poll failed; it polls again (or starts over) after a pause.
    Failed,
    /// Stopped.
    Stopped,
}

/// What `/health` and the tests see of a running connector.
#[derive(Debug)]
pub struct ConnectorStatus {
    state: Mutex<(ConnectorState, Option<String>)>,
    polls: AtomicU64,
    published: AtomicU64,
    restarts: AtomicU64,
}

impl ConnectorStatus {
    fn new() -> Self {
        ConnectorStatus {
            state: Mutex::new((ConnectorState::Starting, None)),
            polls: AtomicU64::new(0),
            published: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        }
    }

    fn set(&self, state: ConnectorState, error: Option<String>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (state, error);
    }

    /// The current state.
    pub fn state(&self) -> ConnectorState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// The last error, while it is not resolved.
    pub fn last_error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Polls completed (successfully) since the start.
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::SeqCst)
    }

    /// Changes published (committed) since the start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    /// How many times the connector started over after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }
}

/// A connector polling on its own thread until stopped.
pub struct RunningConnector {
    status: Arc<ConnectorStatus>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl RunningConnector {
    /// Runs `connector` (started with `config`) on a thread: a poll, then a wait of the
    /// poll interval, and so on; after a failure that needs it, starts over with a
    /// growing pause (1 s up to 30 s).
    pub fn spawn(connector: Connector, config: ConnectorConfig) -> Self {
        let status = Arc::new(ConnectorStatus::new());
        let (stop, stopped) = mpsc::channel();
        let thread_status = status.clone();
        let thread = std::thread::Builder::new()
            .name("customers-connector".into())
            .spawn(move || run(connector, &config, &thread_status, &stopped))
            .expect("spawning the connector thread");
        RunningConnector {
            status,
            stop,
            thread,
        }
    }

    /// The status, shared with the thread.
    pub fn status(&self) -> Arc<ConnectorStatus> {
        self.status.clone()
    }

    /// Stops the loop (between two polls; a transaction in progress completes) and
    /// waits for the thread.
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("the connector thread panicked");
        }
        self.status.set(ConnectorState::Stopped, None);
    }
}

/// The poll loop; returns when `stopped` receives (or its sender is gone).
fn run(
    connector: Connector,
    config: &ConnectorConfig,
    status: &ConnectorStatus,
    stopped: &mpsc::Receiver<()>,
) {
    // Waits `duration` unless told to stop; true when told to stop.
    let wait = |duration| {
        !matches!(
            stopped.recv_timeout(duration),
            Err(RecvTimeoutError::Timeout)
        )
    };
    let mut current = Some(connector);
    let mut backoff = Duration::from_secs(1);
    loop {
        let connector = match current.as_mut() {
            Some(connector) => connector,
            None => {
                status.set(ConnectorState::Starting, status.last_error());
                match Connector::start(config) {
                    Ok(started) => {
                        backoff = Duration::from_secs(1);
                        current.insert(started)
                    }
                    Err(error) => {
                        tracing::error!("starting the connector over failed: {error}");
                        status.set(ConnectorState::Failed, Some(error.to_string()));
                        if wait(backoff) {
                            return;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        match connector.poll_once() {
            Ok(outcome) => {
                status.polls.fetch_add(1, Ordering::SeqCst);
                status
                    .published
                    .fetch_add((outcome.upserts + outcome.deletes) as u64, Ordering::SeqCst);
                status.set(ConnectorState::Running, None);
                metrics::counter!("customers_connector_polls_total").increment(1);
            }
            Err(error) if error.needs_restart() => {
                tracing::error!("the connector starts over: {error}");
                status.set(ConnectorState::Failed, Some(error.to_string()));
                status.restarts.fetch_add(1, Ordering::SeqCst);
                metrics::counter!("customers_connector_restarts_total").increment(1);
                current = None;
                if wait(backoff) {
                    return;
                }
                continue;
            }
            Err(error) => {
                tracing::warn!("a poll failed, retrying at the next one: {error}");
                status.set(ConnectorState::Failed, Some(error.to_string()));
            }
        }
        if wait(config.poll_interval) {
            return;
        }
    }
}
