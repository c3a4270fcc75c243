//! One scenario at several cluster sizes: allocations per second (and latency, memory) against
//! the number of nodes, as JSON and as a chart.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::svg::{AxisFormat, Chart, Series, palette};
use crate::{Error, Outputs, Overrides, Report, Scenario, prepare, run};

#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub nodes: u32,
    pub allocations_per_sec: f64,
    pub allocations_per_core_sec: f64,
    pub p99_handle_us: f64,
    pub p99_heartbeat_us: f64,
    pub core_busy_fraction: f64,
    pub peak_rss_mb: Option<f64>,
    pub wall_seconds: f64,
    pub targets_met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub scenario: String,
    pub seed: u64,
    pub scheduler: String,
    pub target_allocations_per_sec: Option<f64>,
    pub points: Vec<SweepPoint>,
}

impl SweepPoint {
    fn from_report(r: &Report) -> Self {
        let heartbeat = r.handle_latency_us.per_kind.get("node_heartbeat").map_or(0.0, |k| k.handle_us.p99);
        Self {
            nodes: r.cluster.nodes,
            allocations_per_sec: r.throughput.allocations_per_sec,
            allocations_per_core_sec: r.throughput.allocations_per_core_sec,
            p99_handle_us: r.handle_latency_us.all.p99,
            p99_heartbeat_us: heartbeat,
            core_busy_fraction: r.throughput.core_busy_fraction,
            peak_rss_mb: r.memory.peak_rss_mb,
            wall_seconds: r.wall_seconds,
            targets_met: r.targets_met(),
        }
    }
}

/// Runs `scenario` once per size in `sizes` (smallest first, so each run's peak memory is its
/// own), calling `on_run` with each report as it completes.
pub fn sweep(
    scenario: &Scenario,
    base_dir: &Path,
    overrides: &Overrides,
    sizes: &[u32],
    progress: bool,
    mut on_run: impl FnMut(&Report),
) -> Result<SweepReport, Error> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let mut points = Vec::new();
    let mut scheduler = String::new();
    for nodes in sizes {
        let input = prepare(scenario.clone(), base_dir, &Overrides { nodes: Some(nodes), ..overrides.clone() })?;
        let report = run(input, Outputs { progress, ..Outputs::default() })?;
        scheduler = report.scheduler.clone();
        on_run(&report);
        points.push(SweepPoint::from_report(&report));
    }
    Ok(SweepReport {
        scenario: scenario.name.clone().unwrap_or_else(|| "scenario".into()),
        seed: overrides.seed.unwrap_or(scenario.seed),
        scheduler,
        target_allocations_per_sec: scenario.targets.allocations_per_sec,
        points,
    })
}

impl SweepReport {
    /// Allocations per second (wall clock, and inside the core alone) against cluster size.
    pub fn chart(&self) -> Chart {
        let xs = |f: &dyn Fn(&SweepPoint) -> f64| -> Vec<(f64, f64)> {
            self.points.iter().map(|p| (f64::from(p.nodes), f(p))).collect()
        };
        let mut series = vec![
            Series::line("allocations/s (wall clock)", xs(&|p| p.allocations_per_sec))
                .color(palette(0))
                .markers()
                .width(2.5),
            Series::line("allocations/s inside the core", xs(&|p| p.allocations_per_core_sec))
                .color(palette(1))
                .markers(),
        ];
        if let Some(target) = self.target_allocations_per_sec {
            series.push(Series::line(&format!("target {target:.0}/s"), xs(&|_| target)).color("#999999").dashed());
        }
        Chart {
            title: format!("Scheduling throughput vs cluster size: {}", self.scenario),
            subtitle: Some(format!("{} scheduler, seed {}, steady state", self.scheduler, self.seed)),
            x_label: "nodes".into(),
            y_label: "container allocations per second".into(),
            x_format: AxisFormat::Si,
            y_format: AxisFormat::Si,
            x_log: self.points.len() > 1,
            y_min: Some(0.0),
            series,
            ..Chart::default()
        }
    }

    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Sweep of {} ({} scheduler, seed {})", self.scenario, self.scheduler, self.seed);
        let _ = writeln!(
            s,
            "  {:>8} {:>14} {:>14} {:>12} {:>14} {:>10} {:>10} {:>9}",
            "NODES", "ALLOC/S", "CORE ALLOC/S", "P99 µs", "P99 HB µs", "CORE BUSY", "PEAK RSS", "WALL s"
        );
        for p in &self.points {
            let _ = writeln!(
                s,
                "  {:>8} {:>14.0} {:>14.0} {:>12.1} {:>14.1} {:>9.1}% {:>9} {:>9.1}",
                p.nodes,
                p.allocations_per_sec,
                p.allocations_per_core_sec,
                p.p99_handle_us,
                p.p99_heartbeat_us,
                p.core_busy_fraction * 100.0,
                p.peak_rss_mb.map_or("-".into(), |m| format!("{:.0}MB", m)),
                p.wall_seconds
            );
        }
        s
    }
}
