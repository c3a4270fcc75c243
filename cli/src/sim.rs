//! `weft sim`: run the scheduler core in the deterministic simulator (what-if runs, benchmarks)
//! and `weft sim sweep`: one scenario at several cluster sizes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use weft_sim::scenario::{Dur, parse_duration};
use weft_sim::{Outputs, Overrides, Report, Scenario, prepare, run, svg};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    command: Option<SimCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run one scenario at several cluster sizes: allocations/s against nodes (JSON + chart).
    Sweep(SweepArgs),
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (YAML; see docs/simulator.md).
    #[arg(long, short)]
    scenario: Option<PathBuf>,
    /// A queues file to use instead of the scenario's: the what-if case.
    #[arg(long)]
    queues: Option<PathBuf>,
    /// Replay this trace (JSONL) instead of the scenario's workload.
    #[arg(long)]
    trace: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    /// Virtual time to simulate, e.g. 90s, 10m, 1h.
    #[arg(long, value_parser = parse_dur)]
    duration: Option<Dur>,
    /// Virtual time left out of the steady-state figures.
    #[arg(long, value_parser = parse_dur)]
    warmup: Option<Dur>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Cluster size (a generated workload scales with it).
    #[arg(long)]
    nodes: Option<u32>,
    /// Write the full report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the per-queue usage chart (SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Write the decision log (JSONL, byte-identical for the same inputs) here.
    #[arg(long)]
    decisions: Option<PathBuf>,
    /// Write every submitted application as a trace (JSONL) here, to replay it later.
    #[arg(long)]
    write_trace: Option<PathBuf>,
    /// Also run with this queues file and compare, queue by queue (the current configuration
    /// against the proposed one from --queues or the scenario).
    #[arg(long)]
    baseline_queues: Option<PathBuf>,
    /// Exit with status 3 when a benchmark target is missed.
    #[arg(long)]
    check_targets: bool,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Cluster sizes, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<u32>,
    /// Write the sweep (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write allocations/s against cluster size (SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
}

fn parse_dur(text: &str) -> Result<Dur, String> {
    parse_duration(text).map(Dur)
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

fn write_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// The scenario and the directory its relative paths start from.
fn load_scenario(args: &ScenarioArgs) -> anyhow::Result<(Scenario, PathBuf)> {
    let Some(path) = &args.scenario else { bail!("give a scenario file: weft sim --scenario FILE.yaml") };
    let scenario = Scenario::load(path)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((scenario, base))
}

fn overrides(args: &ScenarioArgs, nodes: Option<u32>) -> Overrides {
    Overrides {
        seed: args.seed,
        nodes,
        duration: args.duration,
        warmup: args.warmup,
        queues_file: args.queues.clone(),
        trace: args.trace.clone(),
    }
}

pub fn run_sim(args: SimArgs) -> anyhow::Result<i32> {
    match args.command {
        Some(SimCommand::Sweep(sweep)) => run_sweep(sweep),
        None => run_one(args.run),
    }
}

fn run_one(args: RunArgs) -> anyhow::Result<i32> {
    let (scenario, base) = load_scenario(&args.scenario)?;
    let overrides = overrides(&args.scenario, args.nodes);
    let progress = !args.scenario.quiet;
    let baseline = match &args.baseline_queues {
        Some(old) => {
            let input =
                prepare(scenario.clone(), &base, &Overrides { queues_file: Some(old.clone()), ..overrides.clone() })?;
            if progress {
                eprintln!("baseline run with {}", old.display());
            }
            Some(run(input, Outputs { progress, ..Outputs::default() })?)
        }
        None => None,
    };
    let input = prepare(scenario.clone(), &base, &overrides)?;
    let mut outputs = Outputs { progress, ..Outputs::default() };
    if let Some(path) = &args.decisions {
        outputs.decisions = Some(Box::new(create(path)?));
    }
    if let Some(path) = &args.write_trace {
        outputs.trace = Some(Box::new(create(path)?));
    }
    let report = run(input, outputs)?;
    print!("{}", report.summary());
    if let Some(baseline) = &baseline {
        print!("\n{}", compare(baseline, &report));
    }
    if let Some(path) = &args.report {
        let mut out = create(path)?;
        match &baseline {
            Some(b) => serde_json::to_writer_pretty(&mut out, &serde_json::json!({"baseline": b, "proposed": report}))?,
            None => serde_json::to_writer_pretty(&mut out, &report)?,
        }
        out.flush()?;
        println!("report: {}", path.display());
    }
    if let Some(path) = &args.chart {
        write_file(path, svg::render(&report.usage_chart(&scenario.report.chart_queues)).as_bytes())?;
        println!("chart: {}", path.display());
    }
    if let Some(path) = &args.decisions {
        println!("decision log: {} ({} lines)", path.display(), report.decision_log_lines);
    }
    if let Some(path) = &args.write_trace {
        println!("trace: {} ({} apps)", path.display(), report.totals.apps_submitted);
    }
    Ok(if args.check_targets && !report.targets_met() { 3 } else { 0 })
}

/// Queue by queue, the baseline run against the proposed one.
fn compare(old: &Report, new: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "What-if: baseline queues → proposed queues (same workload and seed)");
    let mut paths: Vec<&str> = new.queues.iter().filter(|q| q.leaf).map(|q| q.path.as_str()).collect();
    for q in old.queues.iter().filter(|q| q.leaf) {
        if !paths.contains(&q.path.as_str()) {
            paths.push(&q.path);
        }
    }
    let w = paths.iter().map(|p| p.chars().count()).max().unwrap_or(0).max(5);
    let _ = writeln!(
        s,
        "  {:<w$} {:>15} {:>15} {:>17} {:>19} {:>21} {:>11}",
        "QUEUE", "GUARANTEE", "MEAN SHARE", "STARVED", "AM WAIT p99", "TURNAROUND p50", "PREEMPTED"
    );
    let seconds = |ms: f64| format!("{:.1}s", ms / 1000.0);
    for path in paths {
        let (a, b) = (old.queue(path), new.queue(path));
        if a.is_none_or(|q| q.apps_submitted == 0) && b.is_none_or(|q| q.apps_submitted == 0) {
            continue;
        }
        let both = |f: &dyn Fn(&weft_sim::report::QueueReport) -> String| {
            format!("{} → {}", a.map_or("-".into(), f), b.map_or("-".into(), f))
        };
        let _ = writeln!(
            s,
            "  {:<w$} {:>15} {:>15} {:>17} {:>19} {:>21} {:>11}",
            path,
            both(&|q| format!("{:.0}%", q.guarantee_share_mean * 100.0)),
            both(&|q| format!("{:.0}%", q.used_share_mean * 100.0)),
            both(&|q| format!("{:.0}%", q.starved_pct)),
            both(&|q| seconds(q.am_wait_ms.p99)),
            both(&|q| seconds(q.turnaround_ms.p50)),
            both(&|q| q.preempt_killed.to_string()),
        );
    }
    let _ = writeln!(
        s,
        "  apps finished {} → {}; preempted containers {} → {}",
        old.totals.apps_finished, new.totals.apps_finished, old.totals.preempt_killed, new.totals.preempt_killed
    );
    s
}

fn run_sweep(args: SweepArgs) -> anyhow::Result<i32> {
    let (scenario, base) = load_scenario(&args.scenario)?;
    let overrides = overrides(&args.scenario, None);
    let progress = !args.scenario.quiet;
    let sweep = weft_sim::sweep::sweep(&scenario, &base, &overrides, &args.nodes, progress, |report| {
        if progress {
            eprintln!(
                "  {} nodes: {:.0} allocations/s, p99 {:.1} µs",
                report.cluster.nodes, report.throughput.allocations_per_sec, report.handle_latency_us.all.p99
            );
        }
    })?;
    print!("{}", sweep.summary());
    if let Some(path) = &args.report {
        let mut out = create(path)?;
        serde_json::to_writer_pretty(&mut out, &sweep)?;
        out.flush()?;
        println!("report: {}", path.display());
    }
    if let Some(path) = &args.chart {
        write_file(path, svg::render(&sweep.chart()).as_bytes())?;
        println!("chart: {}", path.display());
    }
    Ok(0)
}
