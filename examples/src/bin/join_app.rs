//! Join application: re-keys orders by order id through a repartition topic and joins
//! them with payments (keyed by order id) within one minute, writing each joined pair to
//! an output topic. It is the process `examples/tests/eos_join_kills.rs` starts, kills
//! with SIGKILL and starts again, under exactly_once_v2.
//!
//! ```text
//! ORDERS_TOPIC (customer id → "<order id>:<amount>")
//!   └─select_key(order id)─repartition("orders-by-id")─┐
//! PAYMENTS_TOPIC (order id → payment) ───────────────────join_stream(1 min)─> OUTPUT_TOPIC
//!                                                          (order id → "<order>|<payment>")
//! ```
//!
//! Configuration comes from the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `APP_ID` | application id (consumer group, internal topic prefix); required |
//! | `ORDERS_TOPIC`, `PAYMENTS_TOPIC`, `OUTPUT_TOPIC` | topics; required, must exist, the two inputs with equal partition counts |
//! | `STATE_DIR` | directory of the state stores; required |
//! | `KAFKA_BOOTSTRAP` | bootstrap servers; default `127.0.0.1:9092` |
//! | `COMMIT_INTERVAL_MS` | commit interval; default 1000 |
//! | `SESSION_TIMEOUT_MS` | consumer `session.timeout.ms`; default 6000, so a killed instance is evicted quickly |
//! | `STREAMS_*` | any override [`StreamsConfig::with_env_overrides`] knows |
//!
//! Its stdout lines are those of `counting_app`: `RUNNING`, `STATE <state> tasks=[..]`,
//! `RESTORE-START`/`RESTORE-END`, `CLOSED`. It runs until SIGTERM or Ctrl-C (and, when
//! `EXIT_WHEN_STDIN_CLOSES=1`, until its stdin closes), then closes gracefully.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use streams_core::dsl::JoinWindows;
use streams_core::runtime::{KafkaStreams, State, StreamsConfig};
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Produced, Repartitioned, StreamsBuilder, Topology};
use streams_state::{RestoreListener, TopicPartition};

/// Name of the repartition topic's base: `<APP_ID>-orders-by-id-repartition`.
const REPARTITION: &str = "orders-by-id";

/// How far apart in time an order and its payment may be.
const JOIN_WINDOW: Duration = Duration::from_secs(60);

/// Settings read from the environment.
struct Settings {
    app_id: String,
    orders: String,
    payments: String,
    output: String,
    state_dir: String,
    bootstrap: String,
    commit_interval: Duration,
    session_timeout_ms: u64,
}

fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => bail!("environment variable {name} is required"),
    }
}

fn number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .with_context(|| format!("{name}={value:?} is not a number")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        Ok(Settings {
            app_id: required("APP_ID")?,
            orders: required("ORDERS_TOPIC")?,
            payments: required("PAYMENTS_TOPIC")?,
            output: required("OUTPUT_TOPIC")?,
            state_dir: required("STATE_DIR")?,
            bootstrap: std::env::var("KAFKA_BOOTSTRAP")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "127.0.0.1:9092".to_string()),
            commit_interval: Duration::from_millis(number("COMMIT_INTERVAL_MS", 1000)?),
            session_timeout_ms: number("SESSION_TIMEOUT_MS", 6000)?,
        })
    }

    fn config(&self) -> Result<StreamsConfig> {
        let heartbeat_ms = (self.session_timeout_ms / 6).clamp(100, 3000);
        Ok(StreamsConfig::new(&self.app_id, &self.bootstrap)
            .with_state_dir(&self.state_dir)
            .with_commit_interval(self.commit_interval)
            .with_consumer_setting("session.timeout.ms", self.session_timeout_ms.to_string())
            .with_consumer_setting("heartbeat.interval.ms", heartbeat_ms.to_string())
            .with_env_overrides()?)
    }
}

/// Orders re-keyed by order id (the part of the value before `:`) and repartitioned,
/// joined with payments by order id.
fn topology(orders: &str, payments: &str, output: &str) -> Topology {
    let builder = StreamsBuilder::new();
    let by_id = builder
        .stream(orders, Consumed::with(StringSerde, StringSerde))
        .select_key(|_customer: &String, order: &String| {
            order.split(':').next().unwrap_or_default().to_string()
        })
        .repartition(Repartitioned::with(StringSerde, StringSerde).with_name(REPARTITION));
    let payments = builder.stream(payments, Consumed::with(StringSerde, StringSerde));
    by_id
        .join_stream(
            &payments,
            |order: &String, payment: &String| format!("{order}|{payment}"),
            JoinWindows::of_time_difference_with_no_grace(JOIN_WINDOW),
        )
        .to(output, Produced::with(StringSerde, StringSerde));
    builder.build().expect("the join topology is valid")
}

/// Prints restoration progress on stdout, for tests and operators to follow.
struct PrintRestores;

impl RestoreListener for PrintRestores {
    fn on_restore_start(&self, store: &str, tp: &TopicPartition, start: i64, end: i64) {
        println!(
            "RESTORE-START {store} {}/{} from={start} to={end}",
            tp.topic, tp.partition
        );
    }

    fn on_batch_restored(&self, _: &str, _: &TopicPartition, _: i64, _: u64) {}

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

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .init();
    let settings = Settings::from_env()?;
    let (stop_tx, stop_rx) = mpsc::channel();
    watch_signals(stop_tx.clone())?;
    if std::env::var("EXIT_WHEN_STDIN_CLOSES").is_ok_and(|v| v == "1") {
        watch_stdin(stop_tx.clone())?;
    }

    let streams = KafkaStreams::new(
        topology(&settings.orders, &settings.payments, &settings.output),
        settings.config()?,
    )?;
    streams.set_restore_listener(PrintRestores);
    streams.start()?;

    let started = Instant::now();
    let mut last = (streams.state(), task_names(&streams));
    let mut announced = false;
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

fn task_names(streams: &KafkaStreams) -> Vec<String> {
    let mut tasks: Vec<String> = streams
        .local_task_states()
        .iter()
        .map(|(task, status)| format!("{task}:{status:?}"))
        .collect();
    tasks.sort();
    tasks
}
