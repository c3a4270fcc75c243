//! Lock-free counters and latency histograms shared by thousands of tasks, plus errors by kind.
//!
//! Recording must stay cheap: the generator shares the machine with the RM it measures, and
//! every heartbeat records a latency. A histogram is a fixed array of atomic buckets with ~3%
//! resolution, so recording is one `fetch_add` and memory does not grow with the run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Values below this are their own bucket; above, 32 buckets per power of two.
const LINEAR: u64 = 64;
const SUB_BUCKETS: u64 = 32;
const BUCKETS: usize = (LINEAR + (64 - 6) * SUB_BUCKETS) as usize;

/// Microsecond latencies with ~3% relative precision.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), max: AtomicU64::new(0) }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // >= 6
    let mantissa = (v >> (exp - 5)) & (SUB_BUCKETS - 1);
    (LINEAR + (exp - 6) * SUB_BUCKETS + mantissa) as usize
}

/// The smallest value that falls into `bucket`.
fn bucket_floor(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < LINEAR {
        return b;
    }
    let exp = (b - LINEAR) / SUB_BUCKETS + 6;
    let mantissa = (b - LINEAR) % SUB_BUCKETS;
    (SUB_BUCKETS | mantissa) << (exp - 5)
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    // Middle of the bucket: the error is at most half a bucket (~1.5%).
                    let lo = bucket_floor(i);
                    let hi = bucket_floor(i + 1);
                    return (lo + hi) as f64 / 2.0 / 1000.0;
                }
            }
            0.0
        };
        LatencySummary {
            count: total,
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            max_ms: self.max.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Exact percentiles of a set of samples (per-app latencies are few enough to keep).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            ms(samples[rank - 1])
        };
        Self {
            count: samples.len() as u64,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: ms(*samples.last().expect("not empty")),
        }
    }
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Errors by kind ("heartbeat: HTTP 503"), with the first message seen as an example. Errors
/// are rare on a healthy run, so one lock is fine.
#[derive(Default)]
pub struct Errors {
    by_kind: Mutex<BTreeMap<String, (u64, String)>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    pub kind: String,
    pub count: u64,
    pub example: String,
}

impl Errors {
    pub fn record(&self, kind: impl Into<String>, example: impl FnOnce() -> String) {
        let mut map = self.by_kind.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(kind.into()).or_insert_with(|| (0, String::new()));
        if entry.0 == 0 {
            let mut text = example();
            text.truncate(text.floor_char_boundary(300));
            entry.1 = text;
        }
        entry.0 += 1;
    }

    pub fn snapshot(&self) -> Vec<ErrorCount> {
        let map = self.by_kind.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, (n, ex))| ErrorCount { kind: k.clone(), count: *n, example: ex.clone() }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [0u64, 1, 63, 64, 65, 100, 1_000, 12_345, 1_000_000, 123_456_789] {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went backwards");
            last = b;
            assert!(bucket_floor(b) <= v && v < bucket_floor(b + 1), "{v} outside its bucket");
            assert!((bucket_floor(b + 1) - bucket_floor(b)) as f64 <= (v as f64 * 0.035).max(1.0));
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 2.0, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 3.0, "{s:?}");
        assert_eq!(s.max_ms, 100.0);
        let exact = LatencySummary::of((1..=100).map(Duration::from_millis).collect());
        assert_eq!((exact.p50_ms, exact.p99_ms, exact.max_ms), (50.0, 99.0, 100.0));
    }
}
