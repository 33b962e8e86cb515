//! What one benchmark run reports: the JSON line a case process prints when it is done,
//! read by the comparison runner. The Java side (benches/jvm) prints the same line.

use serde::{Deserialize, Serialize};

/// The figures of one run of one case, measured inside the process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// The case's name, e.g. `streamcount`.
    pub case: String,
    /// Input records processed.
    pub records: u64,
    /// From process start to the first record processed (start-up and group join).
    pub startup_ms: f64,
    /// From the first record processed to the last.
    pub elapsed_ms: f64,
    /// CPU time of the whole process over the same span.
    pub cpu_ms: f64,
}

impl CaseReport {
    /// The line a case process prints: one JSON object.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// The report in `output`: its last line that parses as one.
    pub fn from_output(output: &str) -> Option<CaseReport> {
        output
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line.trim()).ok())
    }

    /// Records per second over the measured span.
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / (self.elapsed_ms / 1e3)
    }

    /// CPU seconds per million records.
    pub fn cpu_sec_per_million(&self) -> f64 {
        (self.cpu_ms / 1e3) / (self.records as f64 / 1e6)
    }
}

/// CPU time this process has used so far, in ms (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_java_line_parses_and_rates_follow() {
        let out = "some log line\n{\"case\":\"streamcount\",\"records\":2000000,\"startup_ms\":812.5,\"elapsed_ms\":4000.0,\"cpu_ms\":3000.0}\n";
        let r = CaseReport::from_output(out).expect("a report");
        assert_eq!(r.case, "streamcount");
        assert_eq!(r.records_per_sec(), 500_000.0);
        assert_eq!(r.cpu_sec_per_million(), 1.5);
        assert_eq!(CaseReport::from_output(&r.to_line()), Some(r));
        assert_eq!(CaseReport::from_output("no report here"), None);
    }

    #[test]
    fn process_cpu_time_advances_with_work() {
        let before = process_cpu_ms();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_ms() > before);
    }
}
