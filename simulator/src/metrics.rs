//! Measurement: log-bucketed histograms (constant time and memory per sample), per event kind
//! handle times, a shadow queue that tells how late a single-threaded RM would have been, and
//! the process's memory.

use serde::Serialize;

/// Values below this are counted exactly; above, 32 buckets per power of two (≤ 3.2% error).
const EXACT: u64 = 64;
const BUCKETS: usize = 1920;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: Box::new([0; BUCKETS]), count: 0, sum: 0, max: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - 5;
    (shift as usize) * 32 + (v >> shift) as usize
}

/// The middle of bucket `i`.
fn bucket_value(i: usize) -> u64 {
    if i < EXACT as usize {
        return i as u64;
    }
    let shift = i / 32 - 1;
    let low = ((i % 32) as u64 + 32) << shift;
    low + (1u64 << shift) / 2
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> u128 {
        self.sum
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// The `q` quantile (0..=1); 0 when empty. Never above the exact maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }

    /// p50/p90/p99/max/mean, scaled by `unit` (e.g. 1000 turns ns into µs).
    pub fn summary(&self, unit: f64) -> Percentiles {
        let s = |v: u64| v as f64 / unit;
        Percentiles {
            count: self.count,
            p50: s(self.quantile(0.50)),
            p90: s(self.quantile(0.90)),
            p99: s(self.quantile(0.99)),
            p999: s(self.quantile(0.999)),
            max: s(self.max),
            mean: self.mean() / unit,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The kinds of core event the simulator sends, for per-kind timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NodeRegister,
    NodeHeartbeat,
    NewApplication,
    Submit,
    Persisted,
    AmLaunched,
    AmLaunchFailed,
    AmRegister,
    Allocate,
    AmFinish,
    Tick,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::NodeRegister,
        Kind::NodeHeartbeat,
        Kind::NewApplication,
        Kind::Submit,
        Kind::Persisted,
        Kind::AmLaunched,
        Kind::AmLaunchFailed,
        Kind::AmRegister,
        Kind::Allocate,
        Kind::AmFinish,
        Kind::Tick,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::NodeRegister => "node_register",
            Kind::NodeHeartbeat => "node_heartbeat",
            Kind::NewApplication => "new_application",
            Kind::Submit => "submit",
            Kind::Persisted => "persisted",
            Kind::AmLaunched => "am_launched",
            Kind::AmLaunchFailed => "am_launch_failed",
            Kind::AmRegister => "am_register",
            Kind::Allocate => "allocate",
            Kind::AmFinish => "am_finish",
            Kind::Tick => "tick",
        }
    }
}

/// Handle times and RM lag, per kind, overall and since the warm-up ended.
pub struct CoreTimings {
    /// Nanoseconds inside `Core::handle`, per kind, whole run.
    pub handle: Vec<Histogram>,
    /// The same, steady state only.
    pub steady_handle: Vec<Histogram>,
    /// Nanoseconds an event would have waited for a single-threaded RM (see [`ShadowQueue`]),
    /// steady state only: the registration storm at t = 0 is not "heartbeats on time".
    pub lag: Vec<Histogram>,
    pub shadow: ShadowQueue,
    pub steady: bool,
    /// Nanoseconds inside `Core::handle` in steady state.
    pub steady_busy_ns: u128,
}

impl Default for CoreTimings {
    fn default() -> Self {
        let n = Kind::ALL.len();
        Self {
            handle: vec![Histogram::default(); n],
            steady_handle: vec![Histogram::default(); n],
            lag: vec![Histogram::default(); n],
            shadow: ShadowQueue::default(),
            steady: false,
            steady_busy_ns: 0,
        }
    }
}

impl CoreTimings {
    pub fn record(&mut self, kind: Kind, virtual_now_ms: u64, handle_ns: u64) {
        let k = kind as usize;
        self.handle[k].record(handle_ns);
        let lag = self.shadow.serve(virtual_now_ms, handle_ns);
        if self.steady {
            self.lag[k].record(lag);
            self.steady_handle[k].record(handle_ns);
            self.steady_busy_ns += u128::from(handle_ns);
        }
    }

    pub fn all(hists: &[Histogram]) -> Histogram {
        let mut total = Histogram::default();
        for h in hists {
            total.merge(h);
        }
        total
    }
}

/// A single server fed at virtual times with the measured handle times: how long would an event
/// have queued in a one-threaded RM before its turn? Zero while the core keeps up; growing
/// without bound when it cannot. It only observes: the simulation itself never waits, so the
/// decision log stays independent of the machine.
#[derive(Debug, Default)]
pub struct ShadowQueue {
    busy_until_ns: u128,
}

impl ShadowQueue {
    /// Serves an event arriving at `arrival_ms` that takes `service_ns`; returns its wait.
    pub fn serve(&mut self, arrival_ms: u64, service_ns: u64) -> u64 {
        let arrival = u128::from(arrival_ms) * 1_000_000;
        let start = arrival.max(self.busy_until_ns);
        self.busy_until_ns = start + u128::from(service_ns);
        (start - arrival).min(u128::from(u64::MAX)) as u64
    }
}

/// The process's resident memory: (current, peak) in bytes, from `/proc/self/status`.
pub fn rss_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time this thread has used, in nanoseconds (`/proc/thread-self/schedstat`), to tell the
/// simulator's own cost from time the machine gave to other processes.
pub fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Resets the kernel's peak-RSS mark, so a run's VmHWM is its own (best effort; Linux ≥ 4.0).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_quantiles_close() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let b = bucket(v);
            assert!(b == last || b == last + 1, "gap at {v}");
            last = b;
        }
        assert!(bucket(u64::MAX) < BUCKETS);
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.035, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.quantile(1.0), 10_000);
    }

    #[test]
    fn shadow_queue_waits_only_when_busy() {
        let mut q = ShadowQueue::default();
        assert_eq!(q.serve(0, 500_000), 0); // busy until 0.5 ms
        assert_eq!(q.serve(0, 500_000), 500_000); // queued behind it
        assert_eq!(q.serve(2, 10), 0); // idle again by 2 ms
    }
}
