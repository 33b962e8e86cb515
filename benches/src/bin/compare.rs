//! The side-by-side benchmark: every case on streams-core and on Java Kafka Streams, on
//! the same broker, data and machine, alternating, in one run. Started by `benches/compare`
//! (which builds both sides and starts the local broker); see the README's benchmark
//! section.
//!
//! For each case and value size: one warm-up run of each side over a fixed budget of
//! records sets the record count of the measured runs (enough for the faster side to run
//! `--target-secs`), then `--runs` measured runs of each side alternate. Each run is a
//! fresh process with a fresh application id; the process measures its own throughput
//! and CPU time from the first record it processes, and the runner reads its peak RSS
//! from `wait4`. Medians go into a table, a JSON file and an SVG bar chart under
//! `--results`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use streams_benches::chart::{draw_ratios, Bar};
use streams_benches::report::CaseReport;
use streams_benches::workload::{
    input_records, load_all, Loader, Topics, RECORDS_PER_MS, RIGHT_SHARE,
};
use streams_benches::{client, delete_topics, median};

/// Every case, in the order they run.
const CASES: [&str; 10] = [
    "streamprocess",
    "streamprocesswithsink",
    "streamprocesswithstatestore",
    "streamprocesswithwindowstore",
    "streamcount",
    "streamcountwindowed",
    "streamtablejoin",
    "streamstreamjoin",
    "tabletablejoin",
    "yahoo",
];
/// Cases also measured under exactly-once.
const EXACTLY_ONCE_CASES: [&str; 2] = ["streamcount", "streamtablejoin"];
/// Stateless cases (their targets are higher, and the raw loop is their ceiling).
const STATELESS: [&str; 2] = ["streamprocess", "streamprocesswithsink"];
/// The raw rdkafka baselines, run on the Rust side only.
const BASELINES: [&str; 2] = ["rawconsume", "rawconsumeproduce"];

#[derive(Parser, Debug)]
#[command(about = "Benchmarks streams-core beside Java Kafka Streams (use benches/compare)")]
struct Options {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Records of the 100-byte input topic (larger values get proportionally fewer, at
    /// least a tenth); the measured runs use as many as the target time needs, up to this.
    #[arg(long, default_value_t = 20_000_000)]
    records: u64,
    /// Value sizes of the input topics, in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1024])]
    value_sizes: Vec<usize>,
    /// Cases to run (comma separated); all by default.
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// Measured runs per side and case.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Records of each warm-up run.
    #[arg(long, default_value_t = 2_000_000)]
    warmup_records: u64,
    /// Seconds the faster side of a case should run in each measured run.
    #[arg(long, default_value_t = 20.0)]
    target_secs: f64,
    /// Commit interval of both sides, ms.
    #[arg(long, default_value_t = 1_000)]
    commit_interval_ms: u64,
    /// Record cache budget of both sides, bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    cache_bytes: usize,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Skip the exactly-once variants.
    #[arg(long)]
    no_exactly_once: bool,
    /// Skip the raw rdkafka baselines.
    #[arg(long)]
    no_baselines: bool,
    /// Reuse the data set with this prefix (left by an earlier run with --keep-data)
    /// instead of loading a new one.
    #[arg(long)]
    reuse_data: Option<String>,
    /// Keep the loaded topics afterwards (their prefix is printed).
    #[arg(long)]
    keep_data: bool,
    /// The `bench-case` binary (default: beside this one).
    #[arg(long)]
    rust_case: Option<PathBuf>,
    /// The Java class path: benches/jvm's jar and its target/lib/*.
    #[arg(long, env = "BENCH_JVM_CLASSPATH")]
    java_classpath: String,
    /// Where results go.
    #[arg(long, default_value = "benches/results")]
    results: PathBuf,
}

/// Which implementation a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Rust,
    Java,
}

/// One case at one value size under one guarantee.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct Variant {
    case: String,
    value_size: usize,
    guarantee: String,
}

impl Variant {
    fn label(&self) -> String {
        let eos = if self.guarantee == "exactly_once_v2" {
            " eos"
        } else {
            ""
        };
        format!("{} {}B{eos}", self.case, self.value_size)
    }
}

/// One measured run: the process's report plus what the runner saw.
#[derive(Clone, Debug, Serialize)]
struct Run {
    side: Side,
    records: u64,
    records_per_sec: f64,
    mb_per_sec: f64,
    cpu_sec_per_million: f64,
    startup_ms: f64,
    peak_rss_mb: f64,
}

/// Medians of one side's runs of a variant.
#[derive(Clone, Debug, Serialize)]
struct Summary {
    records_per_sec: f64,
    mb_per_sec: f64,
    cpu_sec_per_million: f64,
    startup_ms: f64,
    peak_rss_mb: f64,
}

impl Summary {
    fn of(runs: &[&Run]) -> Option<Summary> {
        if runs.is_empty() {
            return None;
        }
        let m = |f: fn(&Run) -> f64| median(runs.iter().map(|r| f(r)).collect());
        Some(Summary {
            records_per_sec: m(|r| r.records_per_sec),
            mb_per_sec: m(|r| r.mb_per_sec),
            cpu_sec_per_million: m(|r| r.cpu_sec_per_million),
            startup_ms: m(|r| r.startup_ms),
            peak_rss_mb: m(|r| r.peak_rss_mb),
        })
    }
}

/// Everything the results file holds.
#[derive(Serialize)]
struct Results {
    date_unix: u64,
    machine: String,
    options: String,
    variants: Vec<VariantResult>,
}

#[derive(Serialize)]
struct VariantResult {
    variant: Variant,
    runs: Vec<Run>,
    rust: Option<Summary>,
    java: Option<Summary>,
    rust_over_java: Option<f64>,
}

/// Runs one process to the end; its report and its peak RSS in MB.
fn run_process(mut command: Command) -> Result<(CaseReport, f64)> {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let pid = child.id() as libc::pid_t;
    // Read the pipes on threads while the process runs, so it never blocks on them.
    let mut stdout = child.stdout.context("stdout")?;
    let mut stderr = child.stderr.context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both out-pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let report = CaseReport::from_output(&stdout).filter(|_| exited_ok);
    match report {
        // ru_maxrss is in KiB on Linux.
        Some(report) => Ok((report, usage.ru_maxrss as f64 / 1024.0)),
        None => {
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("{command:?} failed (status {status}):\n{}", tail.join("\n"))
        }
    }
}

struct Runner {
    options: Options,
    topics: Topics,
    rust_case: PathBuf,
    run_id: String,
    next_app: usize,
    bar: ProgressBar,
}

impl Runner {
    fn input_count(&self, value_size: usize) -> u64 {
        input_records(self.options.records, value_size)
    }

    /// Runs `variant` once on `side` over `records` input records.
    fn run(&mut self, side: Side, variant: &Variant, records: u64) -> Result<Run> {
        self.next_app += 1;
        let app = format!("{}-app-{}", self.run_id, self.next_app);
        let state_dir = std::env::temp_dir().join(&app);
        let output = format!("{app}-out");
        let topics = &self.topics;
        let size = variant.value_size;
        let input = if variant.case == "yahoo" {
            topics.ad_events()
        } else {
            topics.input(size)
        };
        let args: Vec<(&str, String)> = vec![
            ("bootstrap", self.options.bootstrap.clone()),
            ("case", variant.case.clone()),
            ("input", input),
            ("records", records.to_string()),
            ("table", topics.table()),
            ("right", topics.right(size)),
            ("yahoo-ads", topics.ads()),
            ("output", output.clone()),
            ("app-id", app.clone()),
            ("state-dir", state_dir.display().to_string()),
            (
                "commit-interval-ms",
                self.options.commit_interval_ms.to_string(),
            ),
            ("cache-bytes", self.options.cache_bytes.to_string()),
            ("guarantee", variant.guarantee.clone()),
        ];
        let mut command = match side {
            Side::Rust => Command::new(&self.rust_case),
            Side::Java => {
                let mut c = Command::new("java");
                c.arg("-cp")
                    .arg(&self.options.java_classpath)
                    .arg("streams.bench.StreamsBench");
                c
            }
        };
        for (name, value) in &args {
            command.arg(format!("--{name}")).arg(value);
        }
        if needs_output(&variant.case) {
            streams_benches::create_topic(
                &self.options.bootstrap,
                &output,
                self.topics.partitions,
            )?;
        }
        let result = run_process(command);
        self.delete_app_topics(&app, &output);
        let _ = std::fs::remove_dir_all(&state_dir);
        let (report, rss) = result.with_context(|| format!("{} on {side:?}", variant.label()))?;
        let value_bytes = if variant.case == "yahoo" { 100 } else { size } + 4;
        let rate = report.records_per_sec();
        Ok(Run {
            side,
            records: report.records,
            records_per_sec: rate,
            mb_per_sec: rate * value_bytes as f64 / 1e6,
            cpu_sec_per_million: report.cpu_sec_per_million(),
            startup_ms: report.startup_ms,
            peak_rss_mb: rss,
        })
    }

    /// Deletes the run's output and every internal topic of its application.
    fn delete_app_topics(&self, app: &str, output: &str) {
        let mut names = vec![output.to_string()];
        if let Ok(consumer) = client(&self.options.bootstrap).create::<BaseConsumer>() {
            if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
                names.extend(
                    metadata
                        .topics()
                        .iter()
                        .map(|t| t.name().to_string())
                        .filter(|n| n.starts_with(app)),
                );
            }
        }
        // The output topic also starts with the application id: name it once.
        names.sort();
        names.dedup();
        delete_topics(&self.options.bootstrap, &names);
    }

    fn progress(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.set_message(text);
        }
    }

    /// Warm-up, calibration and measured runs of one variant.
    fn measure(&mut self, variant: &Variant, sides: &[Side]) -> Result<VariantResult> {
        let available = if variant.case == "yahoo" {
            self.options.records
        } else {
            self.input_count(variant.value_size)
        };
        let warmup = self.options.warmup_records.min(available);
        let mut fastest: f64 = 0.0;
        for &side in sides {
            self.progress(format!("{}: {side:?} warm-up", variant.label()));
            fastest = fastest.max(self.run(side, variant, warmup)?.records_per_sec);
        }
        let wanted = (fastest * self.options.target_secs) as u64;
        let records = wanted.clamp(warmup, available);
        if records < wanted {
            self.bar.suspend(|| {
                eprintln!(
                    "{}: the topic holds {available} records, {wanted} would take {} s; \
                     load more with --records",
                    variant.label(),
                    self.options.target_secs
                )
            });
        }
        let mut runs = Vec::new();
        for round in 1..=self.options.runs {
            for &side in sides {
                self.progress(format!(
                    "{}: {side:?} run {round}/{} ({records} records)",
                    variant.label(),
                    self.options.runs
                ));
                runs.push(self.run(side, variant, records)?);
            }
        }
        let of = |side| Summary::of(&runs.iter().filter(|r| r.side == side).collect::<Vec<_>>());
        let (rust, java) = (of(Side::Rust), of(Side::Java));
        let rust_over_java = match (&rust, &java) {
            (Some(r), Some(j)) => Some(r.records_per_sec / j.records_per_sec),
            _ => None,
        };
        Ok(VariantResult {
            variant: variant.clone(),
            runs,
            rust,
            java,
            rust_over_java,
        })
    }
}

fn needs_output(case: &str) -> bool {
    matches!(
        case,
        "streamprocesswithsink"
            | "streamtablejoin"
            | "streamstreamjoin"
            | "tabletablejoin"
            | "rawconsumeproduce"
    )
}

fn variants(options: &Options) -> Result<Vec<(Variant, Vec<Side>)>> {
    let cases: Vec<String> = if options.cases.is_empty() {
        CASES.iter().map(|c| c.to_string()).collect()
    } else {
        options.cases.clone()
    };
    for case in &cases {
        if !CASES.contains(&case.as_str()) && !BASELINES.contains(&case.as_str()) {
            bail!("unknown case {case}; cases: {}", CASES.join(", "));
        }
    }
    let mut out = Vec::new();
    for &size in &options.value_sizes {
        if !options.no_baselines {
            for b in BASELINES {
                let variant = Variant {
                    case: b.to_string(),
                    value_size: size,
                    guarantee: "at_least_once".into(),
                };
                out.push((variant, vec![Side::Rust]));
            }
        }
        for case in &cases {
            // The ad events have one size; run the pipeline once.
            if case == "yahoo" && size != options.value_sizes[0] {
                continue;
            }
            let mut guarantees = vec!["at_least_once"];
            if !options.no_exactly_once && EXACTLY_ONCE_CASES.contains(&case.as_str()) {
                guarantees.push("exactly_once_v2");
            }
            for g in guarantees {
                let variant = Variant {
                    case: case.clone(),
                    value_size: if case == "yahoo" { 100 } else { size },
                    guarantee: g.to_string(),
                };
                let sides = if BASELINES.contains(&case.as_str()) {
                    vec![Side::Rust]
                } else {
                    vec![Side::Rust, Side::Java]
                };
                out.push((variant, sides));
            }
        }
    }
    Ok(out)
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.0}k", x / 1e3)
    }
}

/// The results table, one row per variant, medians.
fn table(results: &[VariantResult]) -> String {
    let ceiling: BTreeMap<usize, f64> = results
        .iter()
        .filter(|r| r.variant.case == "rawconsumeproduce")
        .filter_map(|r| Some((r.variant.value_size, r.rust.as_ref()?.records_per_sec)))
        .collect();
    let mut out = String::from(
        "| case | Java rec/s | Rust rec/s | Rust/Java | Java MB/s | Rust MB/s | CPU s per M rec Java / Rust | peak RSS MB Java / Rust | start-up ms Java / Rust | Rust / raw ceiling |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let dash = || "–".to_string();
        let java = r.java.as_ref();
        let rust = r.rust.as_ref();
        let pair = |f: fn(&Summary) -> f64, digits: usize| {
            format!(
                "{} / {}",
                java.map_or_else(dash, |s| format!("{:.*}", digits, f(s))),
                rust.map_or_else(dash, |s| format!("{:.*}", digits, f(s)))
            )
        };
        let of_ceiling = match (STATELESS.contains(&r.variant.case.as_str()), rust) {
            (true, Some(s)) => ceiling
                .get(&r.variant.value_size)
                .map_or_else(dash, |c| format!("{:.2}", s.records_per_sec / c)),
            _ => dash(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.variant.label(),
            java.map_or_else(dash, |s| fmt_rate(s.records_per_sec)),
            rust.map_or_else(dash, |s| fmt_rate(s.records_per_sec)),
            r.rust_over_java.map_or_else(dash, |x| format!("{x:.2}")),
            java.map_or_else(dash, |s| format!("{:.1}", s.mb_per_sec)),
            rust.map_or_else(dash, |s| format!("{:.1}", s.mb_per_sec)),
            pair(|s| s.cpu_sec_per_million, 2),
            pair(|s| s.peak_rss_mb, 0),
            pair(|s| s.startup_ms, 0),
            of_ceiling,
        ));
    }
    out
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}

fn write_results(dir: &Path, results: Results, table: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = results.date_unix;
    let json = dir.join(format!("compare-{stamp}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&results)?)?;
    std::fs::write(dir.join(format!("compare-{stamp}.md")), table)?;
    let bars: Vec<Bar> = results
        .variants
        .iter()
        .filter_map(|v| {
            Some(Bar {
                label: v.variant.label(),
                java: v.java.as_ref()?.records_per_sec,
                rust: v.rust.as_ref()?.records_per_sec,
            })
        })
        .collect();
    let svg = dir.join(format!("compare-{stamp}.svg"));
    draw_ratios(&svg, &bars)?;
    Ok(json)
}

/// Where event time starts: far enough back that the input lies in the past, yet within
/// the broker's retention (the local broker keeps 24 hours) so no record is deleted.
fn event_time_base(now_ms: i64, records: u64) -> i64 {
    const HOUR_MS: i64 = 3_600_000;
    let span = (records / RECORDS_PER_MS) as i64;
    now_ms - (span + HOUR_MS).min(20 * HOUR_MS)
}

fn main() -> Result<()> {
    let options = Options::parse();
    let plan = variants(&options)?;
    let rust_case = match &options.rust_case {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory of this binary")?
            .join("bench-case"),
    };
    if !rust_case.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p streams-benches --bins` (benches/compare does)",
            rust_case.display()
        );
    }
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {msg}",
    )?);
    bar.enable_steady_tick(Duration::from_millis(200));
    let prefix = options
        .reuse_data
        .clone()
        .unwrap_or_else(|| format!("bench-cmp-{stamp}"));
    let topics = Topics {
        prefix: prefix.clone(),
        partitions: options.partitions,
    };
    let mut runner = Runner {
        rust_case,
        topics,
        run_id: format!("bench-run-{stamp}"),
        next_app: 0,
        bar,
        options,
    };
    if runner.options.reuse_data.is_none() {
        let started = Instant::now();
        let bar = runner.bar.clone();
        let hidden = bar.is_hidden();
        let loader = Loader {
            bootstrap: &runner.options.bootstrap,
            base: event_time_base(stamp as i64 * 1000, runner.options.records),
            progress: &|topic, done, all| {
                let text = format!("loading {topic}: {done} of {all} records");
                if hidden {
                    if done == all {
                        eprintln!("{text}");
                    }
                } else {
                    bar.set_message(text);
                }
            },
        };
        load_all(
            &loader,
            &runner.topics,
            runner.options.records,
            &runner.options.value_sizes,
        )?;
        runner.bar.suspend(|| {
            eprintln!(
                "loaded data set {prefix} in {:.0} s (right join side: 1/{RIGHT_SHARE} of each input)",
                started.elapsed().as_secs_f64()
            )
        });
    }
    let mut results = Vec::new();
    let mut failure = None;
    for (variant, sides) in &plan {
        match runner.measure(variant, sides) {
            Ok(r) => results.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    runner.bar.finish_and_clear();
    if !runner.options.keep_data && runner.options.reuse_data.is_none() {
        let t = &runner.topics;
        let mut names = vec![t.table(), t.ads(), t.ad_events()];
        for &size in &runner.options.value_sizes {
            names.push(t.input(size));
            names.push(t.right(size));
        }
        delete_topics(&runner.options.bootstrap, &names);
    } else {
        eprintln!("data set kept: --reuse-data {prefix}");
    }
    let table = table(&results);
    println!("{table}");
    let file = write_results(
        &runner.options.results,
        Results {
            date_unix: stamp,
            machine: machine(),
            options: format!("{:?}", runner.options),
            variants: results,
        },
        &table,
    )?;
    println!("results: {}", file.display());
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
