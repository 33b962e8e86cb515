//! The example applications: the [`quickstarts`] a newcomer runs with one command,
//! and the plumbing shared by the applications that the fault tests run as separate
//! processes (`counting_app`, `join_app`): settings from the environment, a line
//! protocol on stdout (`RUNNING`, `STATE ...`, `STANDBY [...]`, `RESTORE-START`/`RESTORE-END`,
//! `CLOSED`), and a graceful close on SIGTERM, Ctrl-C or, when
//! `EXIT_WHEN_STDIN_CLOSES=1`, end of stdin (the parent process is gone).

pub mod guides;
pub mod quickstarts;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::Topology;
use streams_state::{RestoreListener, TopicPartition};

/// An environment variable that must be set.
pub fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => bail!("environment variable {name} is required"),
    }
}

/// A numeric environment variable, `default` when unset.
pub fn number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .with_context(|| format!("{name}={value:?} is not a number")),
        _ => Ok(default),
    }
}

/// The configuration every such application takes from the environment: `APP_ID`,
/// `STATE_DIR` (required), `KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`),
/// `COMMIT_INTERVAL_MS` (default 1000), `SESSION_TIMEOUT_MS` (default 6000, so a killed
/// instance is evicted quickly), `HEARTBEAT_INTERVAL_MS` (default a sixth of the session
/// timeout, at least 100 and at most 3000; how soon a running member hears of a joining
/// one), `CONSUMER_SETTINGS` (extra librdkafka consumer settings,
/// `key=value,key=value`) and the `STREAMS_*` overrides of
/// [`StreamsConfig::with_env_overrides`].
pub fn config_from_env() -> Result<StreamsConfig> {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let session_timeout_ms = number("SESSION_TIMEOUT_MS", 6000)?;
    let heartbeat_ms = number(
        "HEARTBEAT_INTERVAL_MS",
        (session_timeout_ms / 6).clamp(100, 3000),
    )?;
    let mut config = StreamsConfig::new(required("APP_ID")?, bootstrap)
        .with_state_dir(required("STATE_DIR")?)
        .with_commit_interval(Duration::from_millis(number("COMMIT_INTERVAL_MS", 1000)?))
        .with_consumer_setting("session.timeout.ms", session_timeout_ms.to_string())
        .with_consumer_setting("heartbeat.interval.ms", heartbeat_ms.to_string());
    let extra = std::env::var("CONSUMER_SETTINGS").unwrap_or_default();
    for setting in extra.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = setting
            .split_once('=')
            .with_context(|| format!("CONSUMER_SETTINGS entry {setting:?} is not key=value"))?;
        config = config.with_consumer_setting(key.trim(), value.trim());
    }
    Ok(config.with_env_overrides()?)
}

/// Prints restoration progress on stdout, for tests and operators to follow. With
/// `RESTORE_RECORDS_PER_SECOND` set it also paces restoration to about that rate (it
/// runs on the stream thread, so sleeping here slows it): tests use it to keep a
/// restoration going while other instances join.
pub struct PrintRestores {
    records_per_second: Option<u64>,
}

impl PrintRestores {
    /// The listener, paced when `RESTORE_RECORDS_PER_SECOND` says so.
    pub fn from_env() -> Result<Self> {
        let pace = number("RESTORE_RECORDS_PER_SECOND", 0)?;
        Ok(PrintRestores {
            records_per_second: (pace > 0).then_some(pace),
        })
    }
}

impl RestoreListener for PrintRestores {
    fn on_restore_start(&self, store: &str, tp: &TopicPartition, start: i64, end: i64) {
        println!(
            "RESTORE-START {store} {}/{} from={start} to={end}",
            tp.topic, tp.partition
        );
    }

    fn on_batch_restored(&self, _: &str, _: &TopicPartition, _: i64, restored: u64) {
        if let Some(pace) = self.records_per_second {
            std::thread::sleep(Duration::from_secs_f64(restored as f64 / pace as f64));
        }
    }

    fn on_restore_end(&self, store: &str, tp: &TopicPartition, total: u64) {
        println!(
            "RESTORE-END {store} {}/{} restored={total}",
            tp.topic, tp.partition
        );
    }
}

/// Why the main loop should stop.
enum Stop {
    Signal(&'static str),
    StdinClosed,
}

/// Reports SIGTERM and Ctrl-C (SIGINT) on `stop`.
fn watch_signals(stop: mpsc::Sender<Stop>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the signal runtime")?;
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = match signal(SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(e) => {
                        eprintln!("cannot watch SIGTERM: {e}");
                        let _ = tokio::signal::ctrl_c().await;
                        let _ = stop.send(Stop::Signal("SIGINT"));
                        return;
                    }
                };
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                };
                let _ = stop.send(Stop::Signal(name));
            })
        })
        .context("spawning the signal thread")?;
    Ok(())
}

/// Reports end of file on stdin, which means the process that started us is gone.
fn watch_stdin(stop: mpsc::Sender<Stop>) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin".to_string())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stop.send(Stop::StdinClosed);
        })
        .context("spawning the stdin thread")?;
    Ok(())
}

/// Logs to stderr (`RUST_LOG` filters; default `info`, rdkafka's own at `warn`), so
/// stdout stays free for the line protocol and the quickstarts' output.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .init();
}

/// Runs `topology` with `config` until a stop is asked for, printing the line protocol;
/// closes gracefully and fails if the application stopped by itself.
pub fn run(topology: Topology, config: StreamsConfig) -> Result<()> {
    init_logging();
    let (stop_tx, stop_rx) = mpsc::channel();
    watch_signals(stop_tx.clone())?;
    if std::env::var("EXIT_WHEN_STDIN_CLOSES").is_ok_and(|v| v == "1") {
        watch_stdin(stop_tx.clone())?;
    }
    let streams = KafkaStreams::new(topology, config)?;
    streams.set_restore_listener(PrintRestores::from_env()?);
    streams.start()?;

    let started = Instant::now();
    let mut last = (streams.state(), task_names(&streams));
    let mut announced = false;
    let mut standbys = String::new();
    println!("STATE {:?} tasks={:?}", last.0, last.1);
    let stop = loop {
        // Never disconnected (`stop_tx` lives until the end of `main`): only timeouts.
        if let Ok(stop) = stop_rx.recv_timeout(Duration::from_millis(50)) {
            break stop;
        }
        let state = streams.state();
        let now = (state, task_names(&streams));
        if now != last {
            println!("STATE {state:?} tasks={:?}", now.1);
            last = now;
        }
        let lags = standby_lags(&streams);
        if lags != standbys {
            println!("STANDBY {lags}");
            standbys = lags;
        }
        if state == State::Running && !announced {
            announced = true;
            println!("RUNNING");
            eprintln!("running after {:.1?}", started.elapsed());
        }
        if matches!(
            state,
            State::Error | State::NotRunning | State::PendingError
        ) {
            let errors = streams.thread_errors();
            streams.close(Duration::from_secs(10));
            bail!("the application stopped on its own in state {state:?}: {errors:?}");
        }
    };
    match stop {
        Stop::Signal(name) => eprintln!("stopping on {name}"),
        Stop::StdinClosed => eprintln!("stopping: stdin closed (the parent process is gone)"),
    }
    if !streams.close(Duration::from_secs(30)) {
        bail!("stream threads did not stop within 30 s");
    }
    println!("CLOSED");
    if let Some(error) = streams.thread_errors().first() {
        bail!("a stream thread failed: {error}");
    }
    Ok(())
}

/// The standby tasks with their lag, as `[0_1:lag=0, ...]`.
fn standby_lags(streams: &KafkaStreams) -> String {
    let lags: Vec<String> = streams
        .standby_lags()
        .iter()
        .map(|l| format!("{}:{}:lag={}:end={}", l.task, l.store, l.lag, l.end))
        .collect();
    format!("{lags:?}")
}

fn task_names(streams: &KafkaStreams) -> Vec<String> {
    let mut tasks: Vec<String> = streams
        .local_task_states()
        .iter()
        .map(|(task, status)| format!("{task}:{status:?}"))
        .collect();
    tasks.sort();
    tasks
}
