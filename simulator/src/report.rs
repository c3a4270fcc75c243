//! What a run measured: the JSON report, the human summary (benchmark figures next to their
//! targets), and the per-queue usage chart.
//!
//! Shares are fractions of the cluster by the queues file's resource calculator (dominant share,
//! or memory). A queue's guarantee is its configured guaranteed resources in capacity mode, its
//! *instantaneous* fair share in fair mode, and the whole cluster for FIFO's `root.default`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use weft_rm_core::queues::ResourceCalculator;

use crate::engine::{QueueStats, RunResult, Totals};
use crate::metrics::{CoreTimings, Kind, Percentiles};
use crate::scenario::{Targets, format_duration};
use crate::svg::{AxisFormat, Chart, Series};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: Option<String>,
    pub seed: u64,
    pub scheduler: String,
    pub resource_calculator: String,
    pub cluster: ClusterReport,
    pub virtual_duration_ms: u64,
    pub warmup_ms: u64,
    pub wall_seconds: f64,
    pub throughput: Throughput,
    /// Time inside one `Core::handle` call, in microseconds.
    pub handle_latency_us: HandleLatency,
    /// How late a single-threaded RM would have started each event, in milliseconds.
    pub rm_lag_ms: RmLag,
    /// Ask-to-allocation wait as the core measures it (from when an ask key appeared), in ms.
    pub core_allocation_wait_ms: Percentiles,
    pub memory: MemoryReport,
    pub end_state: EndState,
    pub utilization: Utilization,
    pub queues: Vec<QueueReport>,
    pub totals: Totals,
    pub core_errors: ErrorsReport,
    pub targets: Vec<TargetCheck>,
    pub decision_log_lines: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub nodes: u32,
    pub memory_mb: u64,
    pub vcores: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub allocations: u64,
    pub steady_allocations: u64,
    /// Steady-state allocations per wall-clock second (the benchmark figure).
    pub allocations_per_sec: f64,
    /// Over the whole run, node registration and ramp-up included.
    pub allocations_per_sec_overall: f64,
    /// Allocations per second spent inside `Core::handle` (the core alone).
    pub allocations_per_core_sec: f64,
    /// Steady-state time inside `Core::handle` per virtual second: above 1.0 a real,
    /// single-threaded RM could not keep up with this cluster.
    pub core_busy_fraction: f64,
    /// CPU time outside the core per allocation: the simulator's own cost (the run's CPU time
    /// times its share of the wall time outside `Core::handle`).
    pub sim_overhead_ns_per_allocation: f64,
    /// The same per core event.
    pub sim_overhead_ns_per_event: f64,
    /// Share of the run's time spent inside `Core::handle`.
    pub core_cpu_share: f64,
    pub events_handled: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandleLatency {
    /// Steady state, every event kind.
    pub all: Percentiles,
    /// Whole run, every event kind.
    pub all_including_warmup: Percentiles,
    /// Steady state, per event kind (node_heartbeat, allocate, submit, tick, …).
    pub per_kind: BTreeMap<String, KindLatency>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindLatency {
    pub handle_us: Percentiles,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RmLag {
    pub heartbeat: Percentiles,
    pub all: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub peak_rss_mb: Option<f64>,
    pub rss_end_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndState {
    pub live_containers: u64,
    pub running_apps: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Utilization {
    /// Steady-state means of used ÷ capacity.
    pub mean_memory: f64,
    pub mean_vcores: f64,
    pub peak_memory: f64,
    pub peak_vcores: f64,
    pub series: UtilizationSeries,
}

#[derive(Debug, Clone, Serialize)]
pub struct UtilizationSeries {
    pub t_ms: Vec<u64>,
    pub memory: Vec<f64>,
    pub vcores: Vec<f64>,
    pub capacity_memory_mb: Vec<u64>,
    pub live_containers: Vec<u64>,
    pub pending_containers: Vec<u64>,
    pub running_apps: Vec<u64>,
    pub allocations: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub path: String,
    pub leaf: bool,
    pub guarantee_share_mean: f64,
    pub used_share_mean: f64,
    pub used_share_peak: f64,
    pub used_share_end: f64,
    /// Percent of steady-state samples in which the queue wanted more but held less than 95% of
    /// the smaller of its guarantee and what it wanted: time spent starved.
    pub starved_pct: f64,
    pub am_wait_ms: Percentiles,
    pub container_wait_ms: Percentiles,
    pub turnaround_ms: Percentiles,
    pub apps_submitted: u64,
    pub apps_rejected: u64,
    pub apps_finished: u64,
    pub apps_failed: u64,
    pub preempt_marked: u64,
    pub preempt_killed: u64,
    pub containers_lost: u64,
    pub series: QueueSeries,
}

/// Aligned with `utilization.series.t_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSeries {
    pub used_share: Vec<f64>,
    pub guarantee_share: Vec<f64>,
    pub used_memory_mb: Vec<u64>,
    pub used_vcores: Vec<u32>,
    pub pending_memory_mb: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorsReport {
    pub count: u64,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub name: String,
    pub value: f64,
    pub target: f64,
    /// `>=` or `<=`.
    pub comparison: &'static str,
    pub unit: &'static str,
    pub ok: bool,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

impl Report {
    pub fn build(r: RunResult) -> Report {
        let warmup = r.scenario.warmup.0;
        let steady: Vec<usize> = (0..r.samples.len()).filter(|&i| r.samples[i].t >= warmup).collect();
        let wall = r.wall.as_secs_f64();
        let steady_wall = r.steady_wall.as_secs_f64();
        let busy = r.busy.as_secs_f64();
        // Outside the core, in CPU time: wall time also counts what the machine gave to other
        // processes, which falls inside and outside `Core::handle` alike.
        let core_share = (busy / wall.max(1e-9)).min(1.0);
        let outside = r.cpu.map_or(wall, |c| c.as_secs_f64()) * (1.0 - core_share);
        let throughput = Throughput {
            allocations: r.allocations,
            steady_allocations: r.steady_allocations,
            allocations_per_sec: r.steady_allocations as f64 / steady_wall.max(1e-9),
            allocations_per_sec_overall: r.allocations as f64 / wall.max(1e-9),
            allocations_per_core_sec: r.allocations as f64 / busy.max(1e-9),
            core_busy_fraction: r.timings.steady_busy_ns as f64 / (r.steady_virtual_ms.max(1) as f64 * 1e6),
            sim_overhead_ns_per_allocation: outside * 1e9 / (r.allocations.max(1)) as f64,
            sim_overhead_ns_per_event: outside * 1e9 / (r.events_handled.max(1)) as f64,
            core_cpu_share: core_share,
            events_handled: r.events_handled,
        };
        let handle_latency_us = handle_latency(&r.timings);
        let lag_all = CoreTimings::all(&r.timings.lag).summary(1e6);
        let rm_lag_ms = RmLag { heartbeat: r.timings.lag[Kind::NodeHeartbeat as usize].summary(1e6), all: lag_all };
        let samples = &r.samples;
        let util = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { (0..samples.len()).map(f).collect() };
        let mem = util(&|i| {
            let s = &samples[i];
            if s.capacity.memory_mb == 0 { 0.0 } else { s.used.memory_mb as f64 / s.capacity.memory_mb as f64 }
        });
        let vc = util(&|i| {
            let s = &samples[i];
            if s.capacity.vcores == 0 { 0.0 } else { f64::from(s.used.vcores) / f64::from(s.capacity.vcores) }
        });
        let utilization = Utilization {
            mean_memory: mean(steady.iter().map(|&i| mem[i])),
            mean_vcores: mean(steady.iter().map(|&i| vc[i])),
            peak_memory: mem.iter().copied().fold(0.0, f64::max),
            peak_vcores: vc.iter().copied().fold(0.0, f64::max),
            series: UtilizationSeries {
                t_ms: samples.iter().map(|s| s.t).collect(),
                memory: mem.clone(),
                vcores: vc.clone(),
                capacity_memory_mb: samples.iter().map(|s| s.capacity.memory_mb).collect(),
                live_containers: samples.iter().map(|s| s.live_containers).collect(),
                pending_containers: samples.iter().map(|s| s.pending_containers).collect(),
                running_apps: samples.iter().map(|s| s.running_apps).collect(),
                allocations: samples.iter().map(|s| s.allocations).collect(),
            },
        };
        let queues: Vec<QueueReport> =
            r.queues.iter().map(|q| queue_report(q, &steady, samples, r.calculator)).collect();
        let t = &r.totals;
        let totals = t.clone();
        let memory = MemoryReport {
            peak_rss_mb: r.rss_peak.map(|b| b as f64 / (1024.0 * 1024.0)),
            rss_end_mb: r.rss_end.map(|b| b as f64 / (1024.0 * 1024.0)),
        };
        let end_state = EndState { live_containers: r.live_containers, running_apps: r.running_apps };
        let targets =
            check_targets(&r.scenario.targets, &throughput, &handle_latency_us, &rm_lag_ms, &memory, &end_state);
        Report {
            scenario: r.scenario.name.clone().unwrap_or_else(|| "scenario".into()),
            description: r.scenario.description.clone(),
            seed: r.scenario.seed,
            scheduler: r.scheduler,
            resource_calculator: format!("{:?}", r.calculator).to_lowercase(),
            cluster: ClusterReport {
                nodes: r.cluster_nodes,
                memory_mb: r.cluster_capacity.memory_mb,
                vcores: r.cluster_capacity.vcores,
            },
            virtual_duration_ms: r.virtual_ms,
            warmup_ms: warmup,
            wall_seconds: wall,
            throughput,
            handle_latency_us,
            rm_lag_ms,
            core_allocation_wait_ms: r.core_wait_ms.summary(1.0),
            memory,
            end_state,
            utilization,
            queues,
            totals,
            core_errors: ErrorsReport { count: t.core_errors, examples: t.core_error_examples.clone() },
            targets,
            decision_log_lines: r.decision_lines,
        }
    }

    pub fn queue(&self, path: &str) -> Option<&QueueReport> {
        self.queues.iter().find(|q| q.path == path)
    }

    /// A queue's used share at the sample nearest to virtual time `t_ms` (at or before it).
    pub fn share_at(&self, path: &str, t_ms: u64) -> Option<f64> {
        let q = self.queue(path)?;
        let i = self.utilization.series.t_ms.iter().rposition(|t| *t <= t_ms)?;
        q.series.used_share.get(i).copied()
    }

    pub fn targets_met(&self) -> bool {
        self.targets.iter().all(|t| t.ok)
    }
}

fn handle_latency(t: &CoreTimings) -> HandleLatency {
    let steady = CoreTimings::all(&t.steady_handle);
    let all = CoreTimings::all(&t.handle);
    let per_kind = Kind::ALL
        .iter()
        .filter(|k| t.handle[**k as usize].count() > 0)
        .map(|k| {
            // Steady state when there is one, else the whole run (e.g. node registration).
            let h = if t.steady_handle[*k as usize].count() > 0 {
                &t.steady_handle[*k as usize]
            } else {
                &t.handle[*k as usize]
            };
            (k.name().to_owned(), KindLatency { handle_us: h.summary(1e3), total_ms: h.sum() as f64 / 1e6 })
        })
        .collect();
    HandleLatency { all: steady.summary(1e3), all_including_warmup: all.summary(1e3), per_kind }
}

fn queue_report(
    q: &QueueStats,
    steady: &[usize],
    samples: &[crate::engine::Sample],
    calculator: ResourceCalculator,
) -> QueueReport {
    let starved = steady
        .iter()
        .filter(|&&i| {
            let pending = q.pending[i];
            if pending.is_zero() {
                return false;
            }
            let demand = calculator.share(q.used[i] + pending, samples[i].capacity);
            let target = q.guarantee_share[i].min(demand);
            q.used_share[i] < 0.95 * target - 1e-9
        })
        .count();
    QueueReport {
        path: q.path.clone(),
        leaf: q.leaf,
        guarantee_share_mean: mean(steady.iter().map(|&i| q.guarantee_share[i])),
        used_share_mean: mean(steady.iter().map(|&i| q.used_share[i])),
        used_share_peak: q.used_share.iter().copied().fold(0.0, f64::max),
        used_share_end: q.used_share.last().copied().unwrap_or(0.0),
        starved_pct: if steady.is_empty() { 0.0 } else { 100.0 * starved as f64 / steady.len() as f64 },
        am_wait_ms: q.am_wait_ms.summary(1.0),
        container_wait_ms: q.container_wait_ms.summary(1.0),
        turnaround_ms: q.turnaround_ms.summary(1.0),
        apps_submitted: q.submitted,
        apps_rejected: q.rejected,
        apps_finished: q.finished,
        apps_failed: q.failed,
        preempt_marked: q.preempt_marked,
        preempt_killed: q.preempt_killed,
        containers_lost: q.lost,
        series: QueueSeries {
            used_share: q.used_share.clone(),
            guarantee_share: q.guarantee_share.clone(),
            used_memory_mb: q.used.iter().map(|r| r.memory_mb).collect(),
            used_vcores: q.used.iter().map(|r| r.vcores).collect(),
            pending_memory_mb: q.pending.iter().map(|r| r.memory_mb).collect(),
        },
    }
}

fn check_targets(
    targets: &Targets,
    throughput: &Throughput,
    latency: &HandleLatency,
    lag: &RmLag,
    memory: &MemoryReport,
    end: &EndState,
) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let mut at_least = |name: &str, value: f64, target: Option<f64>, unit: &'static str| {
        if let Some(target) = target {
            out.push(TargetCheck { name: name.into(), value, target, comparison: ">=", unit, ok: value >= target });
        }
    };
    at_least(
        "allocations/s (steady state, wall clock)",
        throughput.allocations_per_sec,
        targets.allocations_per_sec,
        "/s",
    );
    at_least(
        "running containers at the end",
        end.live_containers as f64,
        targets.running_containers.map(|v| v as f64),
        "",
    );
    at_least("running apps at the end", end.running_apps as f64, targets.running_apps.map(|v| v as f64), "");
    let heartbeat = latency.per_kind.get(Kind::NodeHeartbeat.name()).map_or(0.0, |k| k.handle_us.p99 / 1e3);
    let peak_gib = memory.peak_rss_mb.map_or(f64::NAN, |mb| mb / 1024.0);
    let mut at_most = |name: &str, value: f64, target: Option<f64>, unit: &'static str| {
        if let Some(target) = target {
            out.push(TargetCheck { name: name.into(), value, target, comparison: "<=", unit, ok: value <= target });
        }
    };
    at_most("p99 Core::handle latency (steady state)", latency.all.p99 / 1e3, targets.p99_handle_ms, "ms");
    at_most("p99 heartbeat handle latency", heartbeat, targets.p99_heartbeat_ms, "ms");
    at_most("p99 heartbeat lag in a single-threaded RM", lag.heartbeat.p99, targets.heartbeat_lag_p99_ms, "ms");
    at_most("peak RSS", peak_gib, targets.peak_rss_gib, "GiB");
    out
}

// ---------------------------------------------------------------------------------------------
// The human summary.

fn thousands(n: f64) -> String {
    let n = n.round() as i128;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn ms(v: f64) -> String {
    if v >= 60_000.0 {
        format_duration((v / 1000.0).round() as u64 * 1000)
    } else if v >= 1000.0 {
        format!("{:.1}s", v / 1000.0)
    } else {
        format!("{v:.0}ms")
    }
}

fn target_value(t: &TargetCheck) -> String {
    match t.unit {
        "/s" | "" => thousands(t.value),
        "ms" => format!("{:.3} ms", t.value),
        "GiB" => format!("{:.2} GiB", t.value),
        other => format!("{} {other}", t.value),
    }
}

fn target_goal(t: &TargetCheck) -> String {
    let sign = if t.comparison == ">=" { "≥" } else { "≤" };
    match t.unit {
        "/s" | "" => format!("{sign} {}", thousands(t.target)),
        unit => format!("{sign} {} {unit}", t.target),
    }
}

impl Report {
    /// The readable summary `weft sim` prints.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let gib = self.cluster.memory_mb as f64 / 1024.0;
        let _ = writeln!(
            s,
            "Scenario {} (seed {}): {} scheduler, {} calculator, {} nodes ({} GiB, {} vcores)",
            self.scenario,
            self.seed,
            self.scheduler,
            self.resource_calculator,
            thousands(f64::from(self.cluster.nodes)),
            thousands(gib),
            thousands(f64::from(self.cluster.vcores))
        );
        let _ = writeln!(
            s,
            "Simulated {} (warm-up {}) in {:.1} s of wall time; {} container allocations; {} apps finished, {} failed, {} rejected",
            format_duration(self.virtual_duration_ms),
            format_duration(self.warmup_ms),
            self.wall_seconds,
            thousands(self.throughput.allocations as f64),
            thousands(self.totals.apps_finished as f64),
            self.totals.apps_failed,
            self.totals.apps_rejected,
        );
        if !self.targets.is_empty() {
            let _ = writeln!(s, "\nBenchmark figures");
            let width = self.targets.iter().map(|t| t.name.chars().count()).max().unwrap_or(0);
            for t in &self.targets {
                let _ = writeln!(
                    s,
                    "  {:<width$}  {:>14}  (target {}) {}",
                    t.name,
                    target_value(t),
                    target_goal(t),
                    if t.ok { "OK" } else { "MISS" }
                );
            }
        }
        let th = &self.throughput;
        let _ = writeln!(s, "\nThroughput");
        let _ = writeln!(
            s,
            "  allocations/s: {} steady, {} overall, {} per second inside the core",
            thousands(th.allocations_per_sec),
            thousands(th.allocations_per_sec_overall),
            thousands(th.allocations_per_core_sec)
        );
        let _ = writeln!(
            s,
            "  core busy {:.1}% of virtual time (a single-threaded RM keeps up below 100%); {} core events",
            th.core_busy_fraction * 100.0,
            thousands(th.events_handled as f64)
        );
        let _ = writeln!(
            s,
            "  simulator overhead: {:.2} µs per allocation, {:.2} µs per core event; the core took {:.1}% of the time",
            th.sim_overhead_ns_per_allocation / 1e3,
            th.sim_overhead_ns_per_event / 1e3,
            th.core_cpu_share * 100.0
        );
        let _ = writeln!(s, "\nCore::handle latency, steady state (µs)");
        let _ = writeln!(
            s,
            "  {:<17} {:>11} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "EVENT", "COUNT", "P50", "P90", "P99", "MAX", "TOTAL s"
        );
        for (kind, k) in &self.handle_latency_us.per_kind {
            let h = &k.handle_us;
            let _ = writeln!(
                s,
                "  {:<17} {:>11} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10.2}",
                kind,
                thousands(h.count as f64),
                h.p50,
                h.p90,
                h.p99,
                h.max,
                k.total_ms / 1e3
            );
        }
        let a = &self.handle_latency_us.all;
        let _ = writeln!(
            s,
            "  {:<17} {:>11} {:>9.1} {:>9.1} {:>9.1} {:>10.1}",
            "all",
            thousands(a.count as f64),
            a.p50,
            a.p90,
            a.p99,
            a.max
        );
        let lag = &self.rm_lag_ms.heartbeat;
        let _ = writeln!(
            s,
            "  heartbeat lag in a single-threaded RM: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lag.p50, lag.p99, lag.max
        );
        let u = &self.utilization;
        let _ = writeln!(
            s,
            "\nUtilization (steady state): memory {} (peak {}), vcores {} (peak {}); at the end {} containers in {} running apps",
            pct(u.mean_memory),
            pct(u.peak_memory),
            pct(u.mean_vcores),
            pct(u.peak_vcores),
            thousands(self.end_state.live_containers as f64),
            thousands(self.end_state.running_apps as f64)
        );
        if let Some(peak) = self.memory.peak_rss_mb {
            let _ = writeln!(s, "Memory: peak RSS {:.2} GiB", peak / 1024.0);
        }
        let _ = writeln!(s, "\nQueues (shares of the cluster; waits p50/p99)");
        let shown: Vec<&QueueReport> =
            self.queues.iter().filter(|q| q.leaf && (q.apps_submitted > 0 || q.used_share_peak > 0.0)).collect();
        let w = shown.iter().map(|q| q.path.chars().count()).max().unwrap_or(0).max(5);
        let _ = writeln!(
            s,
            "  {:<w$} {:>6} {:>6} {:>6} {:>7}  {:>15}  {:>15}  {:>15}  {:>14}  {:>9}",
            "QUEUE",
            "GUAR",
            "MEAN",
            "PEAK",
            "STARVED",
            "AM WAIT",
            "TASK WAIT",
            "TURNAROUND",
            "APPS done/sub",
            "PREEMPTED"
        );
        for q in shown {
            let pair =
                |p: &Percentiles| if p.count == 0 { "-".to_owned() } else { format!("{}/{}", ms(p.p50), ms(p.p99)) };
            let _ = writeln!(
                s,
                "  {:<w$} {:>6} {:>6} {:>6} {:>6.1}%  {:>15}  {:>15}  {:>15}  {:>14}  {:>9}",
                q.path,
                pct(q.guarantee_share_mean),
                pct(q.used_share_mean),
                pct(q.used_share_peak),
                q.starved_pct,
                pair(&q.am_wait_ms),
                pair(&q.container_wait_ms),
                pair(&q.turnaround_ms),
                format!("{}/{}", q.apps_finished, q.apps_submitted),
                q.preempt_killed,
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "\nPreemption: {} marked, {} killed. Nodes: {} failures, {} declared lost. Tasks re-run: {}; AM attempts restarted: {}; containers released: {}",
            t.preempt_marked,
            t.preempt_killed,
            t.node_failures,
            t.nodes_lost,
            t.tasks_rerun,
            t.attempts_restarted,
            t.containers_released
        );
        if self.core_errors.count > 0 {
            let _ = writeln!(
                s,
                "Core errors: {} (first: {})",
                self.core_errors.count,
                self.core_errors.examples.join("; ")
            );
        }
        s
    }

    /// The queues the chart shows: those the scenario names, else the leaves if there are at
    /// most 12, else root's children.
    fn chart_queues(&self, wanted: &[String]) -> Vec<&QueueReport> {
        if !wanted.is_empty() {
            return wanted.iter().filter_map(|w| self.queue(w)).collect();
        }
        let leaves: Vec<&QueueReport> = self.queues.iter().filter(|q| q.leaf && q.path != "?").collect();
        if leaves.len() <= 12 {
            return leaves;
        }
        self.queues.iter().filter(|q| q.path.matches('.').count() == 1).collect()
    }

    /// Per-queue usage over time (solid) against each queue's guarantee (dashed, same colour),
    /// with the cluster's utilization.
    pub fn usage_chart(&self, wanted: &[String]) -> Chart {
        let t: Vec<f64> = self.utilization.series.t_ms.iter().map(|t| *t as f64).collect();
        let dominant = self.resource_calculator == "dominant";
        let util: Vec<(f64, f64)> = t
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let m = self.utilization.series.memory[i];
                let v = self.utilization.series.vcores[i];
                (*x, if dominant { m.max(v) } else { m })
            })
            .collect();
        // Drawn first, so the queues' lines stay visible where they reach 100%.
        let mut series = vec![Series::line("cluster utilization", util).color("#b0b0b0").width(4.0)];
        for (i, q) in self.chart_queues(wanted).into_iter().enumerate() {
            let color = crate::svg::palette(i);
            let points = |v: &[f64]| t.iter().zip(v).map(|(x, y)| (*x, *y)).collect::<Vec<_>>();
            series.push(Series::line(&q.path, points(&q.series.used_share)).color(color));
            series.push(
                Series::line(&format!("{} guarantee", q.path), points(&q.series.guarantee_share))
                    .color(color)
                    .dashed()
                    .no_legend(),
            );
        }
        series.push(Series::line("guarantee (dashed)", Vec::new()).color("#555555").dashed());
        Chart {
            title: format!("Queue usage over time: {}", self.scenario),
            subtitle: Some(format!(
                "{} scheduler, {} nodes, seed {} — solid: used share, dashed: guarantee{}",
                self.scheduler,
                thousands(f64::from(self.cluster.nodes)),
                self.seed,
                if self.scheduler == "fair" { " (instantaneous fair share)" } else { "" }
            )),
            x_label: "virtual time".into(),
            y_label: format!("share of the cluster ({})", if dominant { "dominant resource" } else { "memory" }),
            x_format: AxisFormat::Duration,
            y_format: AxisFormat::Percent,
            y_min: Some(0.0),
            y_max: Some(1.0),
            series,
            ..Chart::default()
        }
    }
}
