//! Small helpers shared by the benchmarks in `tests/benches` (printed tables, no harness): latency
//! percentiles, the machine's load, and a process's memory from `/proc`.

use std::time::Duration;

/// Latency percentiles and throughput of one measured path.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub calls: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
    /// Calls per second of wall time (all workers together).
    pub per_second: f64,
}

impl Stats {
    /// From every call's latency and the wall time the calls took together.
    pub fn new(mut latencies: Vec<Duration>, wall: Duration) -> Self {
        assert!(!latencies.is_empty(), "no latencies measured");
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let total: Duration = latencies.iter().sum();
        Stats {
            calls: latencies.len(),
            p50: at(0.50),
            p99: at(0.99),
            mean: total / latencies.len() as u32,
            per_second: latencies.len() as f64 / wall.as_secs_f64(),
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// `N cores, load a b c` for the table headers (from `/proc/loadavg`).
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, load average {}", load.join(" "))
}

/// Peak and current resident set of a process, in KiB (`VmHWM`, `VmRSS` from `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub peak_kib: u64,
    pub rss_kib: u64,
}

impl Memory {
    /// Read it now; zeros when the process is gone or `/proc` is not there.
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Memory { peak_kib: field("VmHWM:"), rss_kib: field("VmRSS:") }
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

/// `AIRLOCK_BENCH_<name>` as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(format!("AIRLOCK_BENCH_{name}")).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
