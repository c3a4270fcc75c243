//! Deterministic cluster simulator for Weft.
//!
//! It drives the ResourceManager's real scheduler core ([`weft_rm_core::Core`])
//! with a virtual clock and a seeded random number generator: simulated NodeManagers heartbeat,
//! simulated ApplicationMasters ask for containers and run tasks in them, nodes fail and come
//! back. The same scenario, seed and inputs give a byte-identical decision log. A run produces a
//! [`report::Report`] (JSON), a human summary with each benchmark figure next to its target, and
//! an SVG chart of per-queue usage against guarantees.
//!
//! - [`scenario`]: the scenario file (YAML).
//! - [`trace`]: the workload trace format (JSONL), read and written.
//! - [`workload`]: the workload generator.
//! - [`engine`]: the event loop, NodeManagers and ApplicationMasters.
//! - [`report`]: figures, the summary and the charts; [`svg`]: a small line-chart renderer.
//! - [`sweep`]: one scenario at several cluster sizes.

pub mod decisions;
pub mod engine;
pub mod metrics;
pub mod queue;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod svg;
pub mod sweep;
pub mod trace;
pub mod workload;

pub use engine::{Outputs, SimError, SimInput, Workload};
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};

use std::path::{Path, PathBuf};

use weft_rm_core::queues::{QueuesConfig, SchedulerMode};

use crate::scenario::Dur;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Command-line overrides of a scenario (`weft sim --seed … --nodes … --queues …`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub seed: Option<u64>,
    /// Cluster size; a generator workload with `scale-with-cluster` scales with it.
    pub nodes: Option<u32>,
    pub duration: Option<Dur>,
    pub warmup: Option<Dur>,
    /// A queues file to use instead of the scenario's (the what-if case). Relative to the
    /// working directory, unlike paths inside the scenario.
    pub queues_file: Option<PathBuf>,
    /// A trace to replay instead of the scenario's workload.
    pub trace: Option<PathBuf>,
}

/// The queue configuration the RM would run: the queues file through the RM's own loader, or
/// FIFO over `root.default` without one.
pub fn load_queues(path: Option<&Path>) -> Result<QueuesConfig, ScenarioError> {
    match path {
        Some(path) => Ok(QueuesConfig::load(path)?),
        None => Ok(QueuesConfig { scheduler: SchedulerMode::Fifo, ..QueuesConfig::default() }),
    }
}

/// Applies `overrides`, loads the queues file and the trace (paths in the scenario are relative
/// to `base_dir`, the scenario file's directory), and sets up the workload generator.
pub fn prepare(mut scenario: Scenario, base_dir: &Path, overrides: &Overrides) -> Result<SimInput, ScenarioError> {
    let scenario_nodes = scenario.cluster.nodes;
    if let Some(seed) = overrides.seed {
        scenario.seed = seed;
    }
    if let Some(nodes) = overrides.nodes {
        scenario.cluster.nodes = nodes;
        for f in &mut scenario.failures.scheduled {
            f.nodes.retain(|n| *n < nodes);
        }
        scenario.failures.scheduled.retain(|f| f.count.is_some() || !f.nodes.is_empty());
    }
    if let Some(duration) = overrides.duration {
        scenario.duration = duration;
        if scenario.warmup >= duration {
            scenario.warmup = Dur(duration.0 / 10);
        }
    }
    if let Some(warmup) = overrides.warmup {
        scenario.warmup = warmup;
    }
    if let Some(trace) = &overrides.trace {
        scenario.workload.trace = Some(trace.clone());
        scenario.workload.generator = None;
    }
    scenario.validate().map_err(|(field, message)| ScenarioError::Invalid {
        source_name: "the command line".into(),
        line: None,
        field,
        message,
    })?;
    let queues_path = match &overrides.queues_file {
        Some(path) => Some(path.clone()),
        None => scenario.rm.queues_file.as_ref().map(|p| base_dir.join(p)),
    };
    let queues = load_queues(queues_path.as_deref())?;
    let workload = match (&scenario.workload.trace, &scenario.workload.generator) {
        (Some(trace), _) => {
            let path = if overrides.trace.is_some() { trace.clone() } else { base_dir.join(trace) };
            Workload::Trace(trace::load_trace(&path)?)
        }
        (None, Some(generator)) => {
            let scale = f64::from(scenario.cluster.nodes) / f64::from(scenario_nodes.max(1));
            Workload::Generator(workload::Generator::new(generator, scenario.seed, scale, scenario.duration.0))
        }
        (None, None) => Workload::Trace(Vec::new()),
    };
    Ok(SimInput { scenario, queues, workload })
}

/// Runs a prepared simulation to its end.
pub fn run(input: SimInput, outputs: Outputs) -> Result<Report, SimError> {
    let engine = engine::Engine::new(input, outputs)?;
    Ok(Report::build(engine.run()?))
}
