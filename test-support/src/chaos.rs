//! Chaos testing with real processes: run a project binary as a child process, wait
//! until it says it is ready, kill it hard (SIGKILL) at a moment picked by a seeded
//! random number generator, and start it again.
//!
//! ```no_run
//! use std::time::Duration;
//! use streams_test_support::chaos::{ChaosProcess, ChaosRng};
//!
//! let mut rng = ChaosRng::from_env_or(42);
//! let mut app = ChaosProcess::new("counter", "target/debug/counting_app")
//!     .env("APP_ID", "demo")
//!     .ready_when("RUNNING");
//! app.start();
//! std::thread::sleep(rng.duration_between(Duration::from_millis(100), Duration::from_secs(2)));
//! app.kill();
//! app.start();
//! ```
//!
//! Everything the child writes to stdout and stderr goes to a log file in a directory of
//! its own (see [`ChaosProcess::log_path`]); panics raised by the harness end with the
//! tail of that log. The log directory is deleted on drop unless the thread is
//! panicking, so the log of a failed test stays on disk.
//!
//! No child outlives its [`ChaosProcess`]: dropping it kills the child. The child's stdin
//! is a pipe the harness holds open, and [`EXIT_WHEN_STDIN_CLOSES`] is set in its
//! environment; a child that honours it (reads stdin and exits on end of file) also ends
//! when the whole test process dies without running destructors, for example after a
//! [`within`](crate::within) time limit leaves the test body's thread behind.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable set to `1` for every child: it should exit once its stdin
/// reaches end of file, which happens when the harness (or the whole test process) is gone.
pub const EXIT_WHEN_STDIN_CLOSES: &str = "EXIT_WHEN_STDIN_CLOSES";

/// Environment variable read by [`ChaosRng::from_env_or`] to replay a run with a given seed.
pub const CHAOS_SEED: &str = "CHAOS_SEED";

/// How many log lines panic messages show.
const TAIL_LINES: usize = 40;

/// A small, seeded pseudo-random number generator (xorshift64*), so that kill times are
/// random yet reproducible from the seed printed at the start of a test.
#[derive(Debug, Clone)]
pub struct ChaosRng {
    state: u64,
    seed: u64,
}

impl ChaosRng {
    /// A generator starting from `seed` (any value, zero included).
    pub fn new(seed: u64) -> ChaosRng {
        // Spread the seed with splitmix64 so that nearby seeds give unrelated streams
        // and the state is never zero (xorshift would stay at zero forever).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ChaosRng {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
            seed,
        }
    }

    /// A generator seeded from [`CHAOS_SEED`] if it is set (and a number), else from
    /// `default_seed`. Prints the seed to stderr so a failing run can be replayed.
    pub fn from_env_or(default_seed: u64) -> ChaosRng {
        let seed = std::env::var(CHAOS_SEED)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default_seed);
        eprintln!("chaos: seed {seed} (replay with {CHAOS_SEED}={seed})");
        ChaosRng::new(seed)
    }

    /// A generator seeded from the clock, for exploratory runs; the seed is printed too.
    pub fn from_time() -> ChaosRng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = nanos ^ (u64::from(std::process::id()) << 32);
        eprintln!("chaos: seed {seed} (replay with {CHAOS_SEED}={seed})");
        ChaosRng::new(seed)
    }

    /// The seed this generator started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound`; panics if `bound` is zero.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "ChaosRng::below needs a positive bound");
        // Multiply-shift: unbiased enough for test scheduling, and never loops.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// An index into a collection of `len` elements; panics if `len` is zero.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// `true` with probability `p` (clamped to `0.0..=1.0`).
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p.clamp(0.0, 1.0)
    }

    /// A duration in `min..=max` with millisecond resolution; `min` when `max <= min`.
    pub fn duration_between(&mut self, min: Duration, max: Duration) -> Duration {
        if max <= min {
            return min;
        }
        let span = (max - min).as_millis() as u64;
        min + Duration::from_millis(self.below(span + 1))
    }
}

/// What the child printed on stdout in its current run, and whether stdout closed.
#[derive(Default)]
struct Output {
    lines: Vec<String>,
    closed: bool,
}

type SharedOutput = Arc<(Mutex<Output>, Condvar)>;

/// A project binary run as a child process that can be started, killed hard and
/// started again; see the [module documentation](self).
pub struct ChaosProcess {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready_line: Option<String>,
    ready_timeout: Duration,
    log_dir: PathBuf,
    log_path: PathBuf,
    log: Arc<Mutex<File>>,
    child: Option<Child>,
    /// Held open so the child sees end of file on stdin only when the harness is gone.
    stdin: Option<ChildStdin>,
    output: SharedOutput,
    /// The stderr reader of the current run, joined before reporting a failure so that
    /// the log tail holds everything the child wrote.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    starts: usize,
    kills: usize,
}

impl ChaosProcess {
    /// Prepares (does not start) `program` under the name `name`, used in messages and
    /// in the log directory's name. Creates the log directory.
    pub fn new(name: &str, program: impl Into<PathBuf>) -> ChaosProcess {
        let log_dir =
            std::env::temp_dir().join(format!("chaos-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&log_dir).unwrap_or_else(|e| {
            panic!(
                "chaos: cannot create the log directory {}: {e}",
                log_dir.display()
            )
        });
        let log_path = log_dir.join(format!("{name}.log"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("chaos: cannot open {}: {e}", log_path.display()));
        ChaosProcess {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            ready_line: None,
            ready_timeout: Duration::from_secs(60),
            log_dir,
            log_path,
            log: Arc::new(Mutex::new(log)),
            child: None,
            stdin: None,
            output: SharedOutput::default(),
            stderr_reader: None,
            starts: 0,
            kills: 0,
        }
    }

    /// A service of the order platform (`apps/`), configured as its `ServiceConfig`
    /// reads the environment: the test broker and registry, topics and application ids
    /// behind `topic_prefix`, HTTP on `http_port`, state under `state_dir`.
    pub fn platform_service(
        name: &str,
        program: impl Into<PathBuf>,
        topic_prefix: &str,
        http_port: u16,
        state_dir: &Path,
    ) -> ChaosProcess {
        ChaosProcess::new(name, program)
            .env("KAFKA_BOOTSTRAP", crate::bootstrap())
            .env("SCHEMA_REGISTRY_URL", crate::registry_url())
            .env("PLATFORM_TOPIC_PREFIX", topic_prefix)
            .env("PLATFORM_HTTP_PORT", http_port.to_string())
            .env("PLATFORM_STATE_DIR", state_dir.display().to_string())
    }

    /// Adds a command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> ChaosProcess {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for every start (the rest of the environment is
    /// inherited).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> ChaosProcess {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Makes [`start`](Self::start) wait until a stdout line contains `line`.
    pub fn ready_when(mut self, line: impl Into<String>) -> ChaosProcess {
        self.ready_line = Some(line.into());
        self
    }

    /// How long [`start`](Self::start) waits for the ready line (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> ChaosProcess {
        self.ready_timeout = timeout;
        self
    }

    /// The name given to [`new`](Self::new).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file holding stdout and stderr of every run.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How many times the process was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// How many times the process was killed with SIGKILL.
    pub fn kills(&self) -> usize {
        self.kills
    }

    /// The process id of the running child, if there is one.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the child and, if a ready line is set, waits for it; returns when the
    /// child is ready. Panics (with the log tail) if it is already running, cannot be
    /// spawned, exits, or is not ready in time.
    pub fn start(&mut self) {
        self.spawn();
        if let Some(line) = self.ready_line.clone() {
            self.wait_for_line(&line, self.ready_timeout);
        }
    }

    /// Starts the child without waiting for the ready line.
    pub fn spawn(&mut self) {
        if self.is_running() {
            self.fail("start was called while the process is running");
        }
        self.starts += 1;
        self.write_log(&format!(
            "=== chaos: start #{} of {} ===",
            self.starts,
            self.program.display()
        ));
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(EXIT_WHEN_STDIN_CLOSES, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| {
            self.fail(&format!("cannot spawn {}: {e}", self.program.display()))
        });
        // A fresh buffer per run: lines of an earlier run never satisfy a wait.
        self.output = SharedOutput::default();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        self.stdin = child.stdin.take();
        self.write_log(&format!("=== chaos: pid {} ===", child.id()));
        self.child = Some(child);
        let (log, output) = (self.log.clone(), self.output.clone());
        std::thread::Builder::new()
            .name(format!("chaos-{}-stdout", self.name))
            .spawn(move || forward_stdout(stdout, log, output))
            .expect("cannot spawn the stdout reader thread");
        let log = self.log.clone();
        self.stderr_reader = Some(
            std::thread::Builder::new()
                .name(format!("chaos-{}-stderr", self.name))
                .spawn(move || forward_stderr(stderr, log))
                .expect("cannot spawn the stderr reader thread"),
        );
    }

    /// Whether the child is running (started and not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        }
    }

    /// Kills the child with SIGKILL (no chance to clean up) and reaps it. Panics if no
    /// child was started; a child that already exited is only reaped.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            self.fail("kill was called but the process was never started");
        };
        self.stdin = None;
        let status = kill_and_reap(&mut child);
        self.kills += 1;
        self.write_log(&format!(
            "=== chaos: killed with SIGKILL (pid {}, {status:?}) ===",
            child.id()
        ));
    }

    /// Kills the child with SIGKILL and starts it again, waiting for the ready line.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
        self.start();
    }

    /// Asks the child to stop with SIGTERM (through the `kill` command) and waits up to
    /// `timeout` for it to exit, returning its exit status; kills it with SIGKILL and
    /// panics if it does not stop in time.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let Some(pid) = self.pid() else {
            self.fail("terminate was called but the process is not started");
        };
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if !matches!(sent, Ok(s) if s.success()) {
            self.write_log(&format!(
                "=== chaos: `kill -TERM {pid}` failed: {sent:?} ==="
            ));
        }
        match self.wait_for_exit(timeout) {
            Some(status) => {
                self.write_log(&format!("=== chaos: exited after SIGTERM: {status} ==="));
                status
            }
            None => {
                self.kill();
                self.fail(&format!("did not exit within {timeout:?} of SIGTERM"))
            }
        }
    }

    /// Closes the child's stdin, as the death of the test process would: a child that
    /// honours [`EXIT_WHEN_STDIN_CLOSES`] then shuts down. Wait with
    /// [`wait_for_exit`](Self::wait_for_exit).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `timeout` for the child to exit and reaps it; `None` if it still runs.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    self.stdin = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return None,
                Err(e) => self.fail(&format!("cannot check whether the child exited: {e}")),
            }
        }
    }

    /// The stdout lines of the current (or last) run so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.0.lock().unwrap().lines.clone()
    }

    /// Waits until a stdout line of the current run contains `needle`, returning the
    /// line's index; panics with the log tail if the child exits first or `timeout` passes.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> usize {
        self.wait_for_line_from(needle, 0, timeout)
    }

    /// Like [`wait_for_line`](Self::wait_for_line), looking only at lines with an index
    /// of at least `from` (to wait for the next occurrence of a repeated line).
    pub fn wait_for_line_from(&mut self, needle: &str, from: usize, timeout: Duration) -> usize {
        match self.try_wait_for_line_from(needle, from, timeout) {
            Ok(index) => index,
            Err(why) => self.fail(&format!("no stdout line containing {needle:?}: {why}")),
        }
    }

    /// Like [`wait_for_line_from`](Self::wait_for_line_from), returning why it gave up
    /// instead of panicking.
    pub fn try_wait_for_line_from(
        &mut self,
        needle: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.output;
        let mut output = lock.lock().unwrap();
        loop {
            if let Some(index) = output
                .lines
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, line)| line.contains(needle))
                .map(|(index, _)| index)
            {
                return Ok(index);
            }
            if output.closed {
                drop(output);
                // The child is gone: let its last stderr lines reach the log first.
                if let Some(reader) = self.stderr_reader.take() {
                    let until = Instant::now() + Duration::from_secs(2);
                    while !reader.is_finished() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                return Err("stdout closed (the process exited)".to_string());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("not printed within {timeout:?}"));
            }
            // Wake up now and then even without output, in case the reader is stuck.
            let wait = (deadline - now).min(Duration::from_millis(200));
            output = changed.wait_timeout(output, wait).unwrap().0;
        }
    }

    /// The last `n` lines of the log (stdout and stderr of every run).
    pub fn log_tail(&self, n: usize) -> String {
        tail_of_file(&self.log_path, n)
    }

    /// Panics with `message`, the process's name, its log path and the log tail.
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "chaos process `{}`: {message}\n--- last {TAIL_LINES} lines of {} ---\n{}",
            self.name,
            self.log_path.display(),
            self.log_tail(TAIL_LINES)
        )
    }

    fn write_log(&self, line: &str) {
        write_line(&self.log, line);
    }
}

impl Drop for ChaosProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.stdin = None;
            let status = kill_and_reap(&mut child);
            self.write_log(&format!("=== chaos: killed on drop ({status:?}) ==="));
        }
        if std::thread::panicking() {
            eprintln!(
                "chaos: log of `{}` kept at {}",
                self.name,
                self.log_path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// SIGKILL (what `Child::kill` sends on Unix), then wait for the exit status.
fn kill_and_reap(child: &mut Child) -> std::io::Result<ExitStatus> {
    // An error here means the child already exited; waiting reaps it either way.
    let _ = child.kill();
    child.wait()
}

fn write_line(log: &Mutex<File>, line: &str) {
    let mut file = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = writeln!(file, "{line}");
}

fn forward_stdout(stdout: impl Read, log: Arc<Mutex<File>>, output: SharedOutput) {
    let mut reader = BufReader::new(stdout);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                write_line(&log, &line);
                let (lock, changed) = &*output;
                lock.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
        }
    }
    let (lock, changed) = &*output;
    lock.lock().unwrap().closed = true;
    changed.notify_all();
}

fn forward_stderr(stderr: impl Read, log: Arc<Mutex<File>>) {
    let mut reader = BufReader::new(stderr);
    let mut buffer = Vec::new();
    while let Ok(n) = reader.read_until(b'\n', &mut buffer) {
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buffer);
        write_line(
            &log,
            &format!("[stderr] {}", line.trim_end_matches(['\n', '\r'])),
        );
        buffer.clear();
    }
}

/// The last `n` lines of the file at `path` (a note instead if it cannot be read).
fn tail_of_file(path: &Path, n: usize) -> String {
    let Ok(file) = File::open(path) else {
        return format!("(cannot read {})", path.display());
    };
    let mut tail: VecDeque<String> = VecDeque::with_capacity(n + 1);
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        tail.push_back(line);
        if tail.len() > n {
            tail.pop_front();
        }
    }
    Vec::from(tail).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(name: &str, script: &str) -> ChaosProcess {
        ChaosProcess::new(name, "sh").arg("-c").arg(script)
    }

    /// The panic message of `body`, after removing the log directory it names (a failed
    /// start keeps its log, which these tests do not want to leave behind).
    fn failure_of(body: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let message = *std::panic::catch_unwind(body)
            .unwrap_err()
            .downcast::<String>()
            .unwrap();
        let path = message
            .split(" lines of ")
            .nth(1)
            .and_then(|rest| rest.split(" ---").next())
            .expect("the message names the log");
        let dir = Path::new(path).parent().unwrap();
        assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
        std::fs::remove_dir_all(dir).unwrap();
        message
    }

    fn process_alive(pid: u32) -> bool {
        // A reaped process has no /proc entry (a zombie would still have one).
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_different_seeds_differ() {
        let mut a = ChaosRng::new(7);
        let mut b = ChaosRng::new(7);
        let mut c = ChaosRng::new(8);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert_eq!(a.seed(), 7);
        // Seed zero must not get stuck at zero.
        let mut zero = ChaosRng::new(0);
        assert!((0..4).map(|_| zero.next_u64()).any(|x| x != 0));
    }

    #[test]
    fn ranges_are_respected_and_covered() {
        let mut rng = ChaosRng::new(12345);
        let mut seen = [0usize; 5];
        for _ in 0..5_000 {
            let i = rng.index(5);
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "roughly uniform: {seen:?}");
        let (min, max) = (Duration::from_millis(200), Duration::from_millis(900));
        let durations: Vec<Duration> = (0..1_000).map(|_| rng.duration_between(min, max)).collect();
        assert!(durations.iter().all(|d| (min..=max).contains(d)));
        assert!(durations.iter().any(|d| *d < Duration::from_millis(300)));
        assert!(durations.iter().any(|d| *d > Duration::from_millis(800)));
        assert_eq!(rng.duration_between(max, min), max);
        let heads = (0..1_000).filter(|_| rng.chance(0.25)).count();
        assert!((150..350).contains(&heads), "{heads}");
        assert!(!rng.chance(0.0) && rng.chance(1.0));
    }

    #[test]
    fn start_waits_for_the_ready_line_and_captures_both_streams() {
        let mut p = sh(
            "ready",
            "echo booting; echo oops >&2; sleep 0.2; echo RUNNING; echo more; exec sleep 30",
        )
        .ready_when("RUNNING");
        let started = Instant::now();
        p.start();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(p.is_running());
        let index = p.wait_for_line("more", Duration::from_secs(5));
        assert_eq!(p.lines()[..=index], ["booting", "RUNNING", "more"]);
        let log = std::fs::read_to_string(p.log_path()).unwrap();
        assert!(
            log.contains("booting") && log.contains("[stderr] oops"),
            "{log}"
        );
        assert_eq!(p.starts(), 1);
    }

    #[test]
    fn the_child_sees_its_environment() {
        let mut p = sh(
            "env",
            "echo \"value=$CHAOS_TEST_VALUE stdin=$EXIT_WHEN_STDIN_CLOSES\"",
        )
        .env("CHAOS_TEST_VALUE", "first")
        .env("CHAOS_TEST_VALUE", "42");
        p.start();
        p.wait_for_line("value=42 stdin=1", Duration::from_secs(5));
        assert!(p.wait_for_exit(Duration::from_secs(5)).unwrap().success());
    }

    #[test]
    fn kill_sends_sigkill_and_a_restart_gets_a_fresh_process_and_fresh_lines() {
        use std::os::unix::process::ExitStatusExt;
        // A process that ignores SIGTERM still dies: the kill is SIGKILL.
        let mut p = sh(
            "kill",
            "trap '' TERM; echo \"UP $$\"; while true; do sleep 0.1; done",
        )
        .ready_when("UP");
        p.start();
        let first = p.pid().unwrap();
        p.kill();
        assert!(!process_alive(first), "pid {first} survived SIGKILL");
        assert_eq!(p.kills(), 1);
        assert!(!p.is_running());

        p.restart();
        let second = p.pid().unwrap();
        assert_ne!(first, second);
        assert_eq!(
            p.lines(),
            [format!("UP {second}")],
            "only the new run's lines"
        );
        let child = p.child.as_mut().unwrap();
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "Child::kill sends SIGKILL");
        p.child = None;
        let log = std::fs::read_to_string(p.log_path()).unwrap();
        assert!(
            log.contains("start #2") && log.contains("killed with SIGKILL"),
            "{log}"
        );
    }

    #[test]
    fn terminate_sends_sigterm_and_waits_for_a_clean_exit() {
        let mut p = sh(
            "term",
            "trap 'echo got TERM; exit 0' TERM; echo UP; while true; do sleep 0.1; done",
        )
        .ready_when("UP");
        p.start();
        let status = p.terminate(Duration::from_secs(10));
        assert!(status.success(), "{status:?}");
        assert!(p.lines().iter().any(|l| l == "got TERM"), "{:?}", p.lines());
        assert!(!p.is_running());
    }

    #[test]
    fn dropping_the_handle_kills_the_child_and_removes_the_log_directory() {
        let mut p = sh("drop", "echo UP; exec sleep 30").ready_when("UP");
        p.start();
        let pid = p.pid().unwrap();
        let dir = p.log_dir.clone();
        drop(p);
        assert!(!process_alive(pid), "pid {pid} outlived its handle");
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }

    #[test]
    fn a_panicking_test_still_kills_its_child_and_keeps_the_log() {
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let result = std::thread::spawn(move || {
            let mut p = sh("panic", "echo UP; exec sleep 30").ready_when("UP");
            p.start();
            pid_tx
                .send((p.pid().unwrap(), p.log_path().to_path_buf()))
                .unwrap();
            panic!("the test failed");
        })
        .join();
        assert!(result.is_err());
        let (pid, log) = pid_rx.recv().unwrap();
        assert!(!process_alive(pid), "pid {pid} outlived a panicking test");
        assert!(log.exists(), "the log of a failed test is kept");
        std::fs::remove_dir_all(log.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_child_that_exits_before_its_ready_line_fails_with_the_log_tail() {
        let message = failure_of(|| {
            let mut p = sh("early-exit", "echo 'cannot connect' >&2; exit 3").ready_when("RUNNING");
            p.start();
        });
        assert!(message.contains("stdout closed"), "{message}");
        assert!(message.contains("[stderr] cannot connect"), "{message}");
    }

    #[test]
    fn a_missing_ready_line_times_out_with_the_log_tail() {
        let message = failure_of(|| {
            let mut p = sh("slow", "echo starting; exec sleep 30")
                .ready_when("RUNNING")
                .ready_timeout(Duration::from_millis(300));
            p.start();
        });
        assert!(message.contains("not printed within"), "{message}");
        assert!(message.contains("starting"), "{message}");
    }

    #[test]
    fn a_child_watching_stdin_ends_when_the_harness_lets_go_of_it() {
        // `read` returns at end of file: the child ends as soon as stdin closes.
        let mut p = sh("stdin", "echo UP; read -r _ignored; echo EOF").ready_when("UP");
        p.start();
        assert!(p.is_running());
        p.close_stdin();
        p.wait_for_line("EOF", Duration::from_secs(5));
        assert!(p.wait_for_exit(Duration::from_secs(5)).is_some());
    }
}
