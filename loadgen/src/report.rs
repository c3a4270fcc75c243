//! The end-of-run report: every figure next to the issue's target, as text and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::procstat::CpuUse;
use crate::stats::{ErrorCount, LatencySummary};

/// The issue's targets: 10k simulated nodes heartbeating (YARN's 1 s interval, so 10k
/// heartbeats/s), 1,000 app submissions/s sustained, submit → first container p99 ≤ 500 ms.
pub const TARGET_NODES: usize = 10_000;
pub const TARGET_HEARTBEATS_PER_S: f64 = 10_000.0;
pub const TARGET_SUBMISSIONS_PER_S: f64 = 1_000.0;
pub const TARGET_FIRST_CONTAINER_P99_MS: f64 = 500.0;
/// Rates count as sustained at this share of the target (edges of the window cost a little).
const RATE_TOLERANCE: f64 = 0.99;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// All three targets met on this run.
    pub meets_targets: bool,
    pub rm: RmInfo,
    pub run: RunInfo,
    pub registration: Registration,
    pub heartbeats: Heartbeats,
    pub submissions: Submissions,
    pub submit_to_am_launch: AppLatency,
    pub submit_to_first_container: AppLatency,
    /// Round trips of the RM endpoints inside the measurement window.
    pub endpoints: BTreeMap<&'static str, LatencySummary>,
    pub apps: Apps,
    pub errors: Vec<ErrorCount>,
    pub resources: Resources,
    /// One point per second of the whole run (warm-up, measurement, drain).
    pub timeline: Vec<TimelinePoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RmInfo {
    pub address: String,
    /// Started by the generator (else `--rm`).
    pub spawned: bool,
    pub store: Option<String>,
    pub log: Option<String>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub quick: bool,
    pub nodes: usize,
    pub heartbeat_interval_ms: u64,
    pub offered_submissions_per_s: f64,
    pub warmup_s: f64,
    pub measure_s: f64,
    pub containers_per_app: u32,
    pub container_runtime_ms: u64,
    pub am_long_poll_ms: u64,
    pub cores: usize,
    pub run_dir: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub nodes_registered: usize,
    pub seconds: f64,
    pub per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Heartbeats {
    /// Periodic and early (container completed) heartbeats answered, per second.
    pub per_s: f64,
    pub periodic_per_s: f64,
    pub early_per_s: f64,
    pub target_per_s: f64,
    pub ok: bool,
    pub round_trip: LatencySummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Submissions {
    /// 202 answers received inside the window, per second.
    pub accepted_per_s: f64,
    pub target_per_s: f64,
    pub ok: bool,
    pub scheduled: u64,
    pub accepted: u64,
    pub failed: u64,
    /// Issued more than 10 ms after their slot (the generator fell behind).
    pub issued_late: u64,
    pub max_issue_lag_ms: f64,
    /// Not issued because too many submissions were waiting for the RM.
    pub shed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppLatency {
    /// Over apps submitted inside the window that got there.
    pub latency: LatencySummary,
    /// Apps submitted inside the window that never got there; they count as infinitely late.
    pub never: u64,
    /// p99 with the `never` apps counted as infinitely late; `None` if they exceed 1%.
    pub p99_ms_counting_never: Option<f64>,
    pub target_p99_ms: Option<f64>,
    pub ok: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Apps {
    /// Over the whole run, warm-up included.
    pub submitted: u64,
    pub accepted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub unfinished: u64,
    /// Apps that needed more than one AM attempt.
    pub retried: u64,
    /// The RM's own cluster metrics, counted from the start of the run to its end.
    pub rm_counters: Option<RmCounters>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RmCounters {
    pub apps_submitted: u64,
    pub apps_completed: u64,
    pub apps_failed: u64,
    pub apps_killed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub cores: usize,
    /// Over the measurement window.
    pub cpu: CpuUse,
    pub rm_rss_mb: Option<f64>,
    pub rm_peak_rss_mb: Option<f64>,
    pub generator_rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    pub t_s: f64,
    pub heartbeats_per_s: f64,
    pub submissions_accepted_per_s: f64,
    pub first_containers_per_s: f64,
    pub apps_finished_per_s: f64,
    pub apps_in_flight: u64,
    pub cpu: CpuUse,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "MISS" }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn lat(s: &LatencySummary) -> String {
    if s.count == 0 {
        return "no samples".into();
    }
    format!("p50 {}  p90 {}  p99 {}  max {}  (n={})", ms(s.p50_ms), ms(s.p90_ms), ms(s.p99_ms), ms(s.max_ms), s.count)
}

fn cores(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |c| format!("{c:.2} cores"))
}

impl Report {
    pub fn text(&self) -> String {
        let mut o = String::new();
        let r = &self.run;
        let _ = writeln!(
            o,
            "\n== weft-loadgen{}: {} simulated nodes (heartbeat every {} ms), {} apps/s offered, {} s measured after {} s warm-up ==",
            if r.quick { " (quick)" } else { "" },
            r.nodes,
            r.heartbeat_interval_ms,
            r.offered_submissions_per_s,
            r.measure_s,
            r.warmup_s
        );
        let rm = &self.rm;
        let _ = writeln!(
            o,
            "RM {} ({}{}{})",
            rm.address,
            if rm.spawned { "spawned" } else { "external" },
            rm.store.as_ref().map(|s| format!(", store {s}")).unwrap_or_default(),
            rm.log.as_ref().map(|l| format!(", log {l}")).unwrap_or_default()
        );
        let g = &self.registration;
        let _ = writeln!(
            o,
            "simulated nodes registered    {} in {:.1} s ({:.0}/s) (target ≥ {TARGET_NODES}) {}",
            g.nodes_registered,
            g.seconds,
            g.per_s,
            verdict(g.nodes_registered >= TARGET_NODES)
        );
        let h = &self.heartbeats;
        let _ = writeln!(
            o,
            "node heartbeats               {:.0}/s periodic + {:.0}/s early (target ≥ {TARGET_HEARTBEATS_PER_S:.0}/s periodic) {}",
            h.periodic_per_s,
            h.early_per_s,
            verdict(h.ok)
        );
        let _ = writeln!(o, "  heartbeat round trip        {}", lat(&h.round_trip));
        let s = &self.submissions;
        let _ = writeln!(
            o,
            "app submissions accepted      {:.0}/s (target ≥ {TARGET_SUBMISSIONS_PER_S:.0}/s) {}",
            s.accepted_per_s,
            verdict(s.ok)
        );
        let _ = writeln!(
            o,
            "  scheduled {}, accepted {}, failed {}, issued late {} (max lag {}), shed {}",
            s.scheduled,
            s.accepted,
            s.failed,
            s.issued_late,
            ms(s.max_issue_lag_ms),
            s.shed
        );
        let f = &self.submit_to_first_container;
        let p99 = f.p99_ms_counting_never.map_or_else(|| "not reached by >1% of apps".into(), ms);
        let _ = writeln!(
            o,
            "submit→first container p99    {p99} (target ≤ {TARGET_FIRST_CONTAINER_P99_MS:.0} ms) {}",
            verdict(f.ok == Some(true))
        );
        let _ = writeln!(o, "  submit→first container      {}; never allocated {}", lat(&f.latency), f.never);
        let a = &self.submit_to_am_launch;
        let _ = writeln!(o, "  submit→AM launch            {}; never launched {}", lat(&a.latency), a.never);
        for (name, summary) in &self.endpoints {
            let _ = writeln!(o, "  {name:<27} {}", lat(summary));
        }
        let apps = &self.apps;
        let _ = write!(
            o,
            "apps (whole run)              {} submitted, {} accepted, {} SUCCEEDED, {} failed, {} unfinished, {} retried",
            apps.submitted, apps.accepted, apps.succeeded, apps.failed, apps.unfinished, apps.retried
        );
        if let Some(c) = &apps.rm_counters {
            let _ = write!(
                o,
                "; RM counted {} submitted, {} completed, {} failed, {} killed",
                c.apps_submitted, c.apps_completed, c.apps_failed, c.apps_killed
            );
        }
        o.push('\n');
        let res = &self.resources;
        let mb = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.0} MB"));
        let _ = writeln!(
            o,
            "RM CPU                        {} of {}, runnable but waiting for a CPU {} (RSS {}, peak {})",
            cores(res.cpu.rm_cores),
            res.cores,
            cores(res.cpu.rm_waiting_for_cpu_cores),
            mb(res.rm_rss_mb),
            mb(res.rm_peak_rss_mb)
        );
        let _ = writeln!(
            o,
            "generator CPU                 {}, waiting for a CPU {} (RSS {}); whole host busy {}",
            cores(res.cpu.generator_cores),
            cores(res.cpu.generator_waiting_for_cpu_cores),
            mb(res.generator_rss_mb),
            cores(res.cpu.host_busy_cores)
        );
        if self.errors.is_empty() {
            let _ = writeln!(o, "errors                        none");
        } else {
            let _ = writeln!(o, "errors:");
            for e in &self.errors {
                let _ = writeln!(o, "  {:>7} × {}   e.g. {}", e.count, e.kind, e.example);
            }
        }
        let _ = writeln!(
            o,
            "verdict: {}",
            if self.meets_targets {
                "meets every target of the issue"
            } else {
                "does NOT meet every target of the issue"
            }
        );
        o
    }
}

/// p99 where `never` samples count as infinitely late: `None` if they reach into the top 1%.
pub fn p99_counting_never(mut samples: Vec<std::time::Duration>, never: u64) -> Option<f64> {
    let total = samples.len() as u64 + never;
    if total == 0 {
        return Some(0.0);
    }
    let rank = ((0.99 * total as f64).ceil() as u64).clamp(1, total);
    if rank > samples.len() as u64 {
        return None;
    }
    samples.sort_unstable();
    Some(samples[rank as usize - 1].as_secs_f64() * 1000.0)
}

/// A rate meets its target.
pub fn rate_ok(achieved: f64, target: f64) -> bool {
    achieved >= target * RATE_TOLERANCE
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn never_reached_apps_count_as_infinitely_late() {
        let samples: Vec<Duration> = (1..=99).map(Duration::from_millis).collect();
        assert_eq!(p99_counting_never(samples.clone(), 1), Some(99.0));
        assert_eq!(p99_counting_never(samples, 2), None);
    }
}
