//! The scenario file: cluster, RM settings, workload, failures, reporting and targets.
//!
//! YAML, strict (unknown keys are errors), kebab-case keys, every key optional except the
//! workload, defaults in code. Durations are written with a unit (`500ms`, `30s`, `10m`, `1h`,
//! `1m30s`) or as a plain number of milliseconds. Paths (queues file, trace) are relative to the
//! scenario file. `docs/simulator.md` documents every key.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use weft_common::config::ConfigError;
use weft_rm_core::queues::ResourceAmount;
use weft_rm_core::{CoreSettings, DEFAULT_TICK_INTERVAL_MS};

use crate::rng::Rng;

// ---------------------------------------------------------------------------------------------
// Durations.

/// A virtual duration in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub u64);

impl Dur {
    pub const fn ms(ms: u64) -> Self {
        Dur(ms)
    }
    pub const fn secs(s: u64) -> Self {
        Dur(s * 1000)
    }
}

/// Parses `1500`, `500ms`, `30s`, `1.5s`, `10m`, `2h`, `1d` and sums such as `1m30s`.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || format!("invalid duration {text:?}: write a number with a unit (ms, s, m, h, d), e.g. 30s or 1m30s");
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit.trim() {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = after;
    }
    Ok(total.round() as u64)
}

/// `90500` → `1m30.5s`; the inverse of [`parse_duration`] for display.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, rem) = (ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || rem > 0 {
        if rem > 0 {
            let frac = format!("{:03}", rem);
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 30s, 10m or 1500 (milliseconds)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v).map(Dur).map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Dur(v.round() as u64))
                } else {
                    Err(E::custom("a duration must be a non-negative number of milliseconds"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(DurVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Distributions.

/// A value drawn per app or per task. Written as a plain value (fixed) or one of
/// `{uniform: {min, max}}`, `{exponential: {mean, max}}`, `{lognormal: {median, sigma, max}}`
/// (`max` optional: it cuts long tails).
#[derive(Debug, Clone, PartialEq)]
pub enum Dist<V> {
    Fixed(V),
    Uniform { min: V, max: V },
    Exponential { mean: V, max: Option<V> },
    Lognormal { median: V, sigma: f64, max: Option<V> },
}

/// Values a [`Dist`] can describe.
pub trait Magnitude: Copy {
    fn to_f64(self) -> f64;
}

impl Magnitude for Dur {
    fn to_f64(self) -> f64 {
        self.0 as f64
    }
}

impl Magnitude for u64 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl<V: Magnitude> Dist<V> {
    /// A draw; fixed values consume no randomness, so they never shift other draws.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let cap = |v: f64, max: &Option<V>| max.map_or(v, |m| v.min(m.to_f64()));
        match self {
            Dist::Fixed(v) => v.to_f64(),
            Dist::Uniform { min, max } => rng.uniform(min.to_f64(), max.to_f64()),
            Dist::Exponential { mean, max } => cap(rng.exponential(mean.to_f64()), max),
            Dist::Lognormal { median, sigma, max } => cap(rng.lognormal(median.to_f64(), *sigma), max),
        }
    }

    pub fn mean(&self) -> f64 {
        match self {
            Dist::Fixed(v) => v.to_f64(),
            Dist::Uniform { min, max } => (min.to_f64() + max.to_f64()) / 2.0,
            Dist::Exponential { mean, .. } => mean.to_f64(),
            Dist::Lognormal { median, sigma, .. } => median.to_f64() * (sigma * sigma / 2.0).exp(),
        }
    }

    fn problem(&self) -> Option<String> {
        match self {
            Dist::Uniform { min, max } if min.to_f64() > max.to_f64() => Some("uniform: min is above max".into()),
            Dist::Exponential { mean, .. } if mean.to_f64() <= 0.0 => Some("exponential: mean must be > 0".into()),
            Dist::Lognormal { median, .. } if median.to_f64() <= 0.0 => Some("lognormal: median must be > 0".into()),
            Dist::Lognormal { sigma, .. } if !(sigma.is_finite() && *sigma >= 0.0) => {
                Some("lognormal: sigma must be ≥ 0".into())
            }
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UniformSpec<V> {
    min: V,
    max: V,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExponentialSpec<V> {
    mean: V,
    #[serde(default = "none")]
    max: Option<V>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LognormalSpec<V> {
    median: V,
    sigma: f64,
    #[serde(default = "none")]
    max: Option<V>,
}

fn none<V>() -> Option<V> {
    None
}

const DIST_KINDS: &[&str] = &["fixed", "uniform", "exponential", "lognormal"];

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Dist<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DistVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for DistVisitor<V> {
            type Value = Dist<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a value, or one of {uniform: {min, max}}, {exponential: {mean, max}}, {lognormal: {median, sigma, max}}",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dist<V>, E> {
                V::deserialize(v.into_deserializer()).map(Dist::Fixed)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dist<V>, E> {
                V::deserialize(v.into_deserializer()).map(Dist::Fixed)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dist<V>, E> {
                V::deserialize(v.into_deserializer()).map(Dist::Fixed)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dist<V>, E> {
                V::deserialize(v.into_deserializer()).map(Dist::Fixed)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dist<V>, A::Error> {
                let Some(kind) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("empty map: expected one of fixed, uniform, exponential, lognormal"));
                };
                let dist = match kind.as_str() {
                    "fixed" => Dist::Fixed(map.next_value()?),
                    "uniform" => {
                        let u: UniformSpec<V> = map.next_value()?;
                        Dist::Uniform { min: u.min, max: u.max }
                    }
                    "exponential" => {
                        let e: ExponentialSpec<V> = map.next_value()?;
                        Dist::Exponential { mean: e.mean, max: e.max }
                    }
                    "lognormal" => {
                        let l: LognormalSpec<V> = map.next_value()?;
                        Dist::Lognormal { median: l.median, sigma: l.sigma, max: l.max }
                    }
                    other => return Err(de::Error::unknown_variant(other, DIST_KINDS)),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "`{kind}` is followed by another key: one distribution per value"
                    )));
                }
                Ok(dist)
            }
        }
        d.deserialize_any(DistVisitor(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario.

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scenario {
    /// Shown in the report; defaults to the file name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual time simulated.
    #[serde(default = "default_duration")]
    pub duration: Dur,
    /// Steady-state figures (allocations/s, latencies) leave out this much virtual time at the
    /// start, where nodes register and the cluster fills.
    #[serde(default)]
    pub warmup: Dur,
    #[serde(default)]
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub rm: RmSpec,
    #[serde(default)]
    pub nm: NmSpec,
    #[serde(default)]
    pub am: AmSpec,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub failures: FailureSpec,
    #[serde(default)]
    pub report: ReportSpec,
    #[serde(default)]
    pub targets: Targets,
}

fn default_seed() -> u64 {
    1
}

fn default_duration() -> Dur {
    Dur::secs(600)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ClusterSpec {
    pub nodes: u32,
    /// Every node's resources.
    pub node: ResourceAmount,
    /// Nodes are spread over this many racks (`/rack1` …) round-robin.
    pub racks: u32,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self { nodes: 100, node: ResourceAmount { memory_mb: 65_536, vcores: 16 }, racks: 1 }
    }
}

/// The ResourceManager settings the core uses, rm.yaml's under the scenario's names. Whatever a
/// scenario leaves out is the RM's default ([`CoreSettings::default`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RmSpec {
    /// The RM's queues file (same YAML). Without one: FIFO over `root.default`.
    pub queues_file: Option<PathBuf>,
    pub heartbeat_interval: Dur,
    pub nm_expiry: Dur,
    pub am_expiry: Dur,
    pub tick_interval: Dur,
    pub minimum_allocation: ResourceAmount,
    pub maximum_allocation: ResourceAmount,
    pub max_attempts: u32,
    pub max_completed_apps: usize,
    pub container_allocation_expiry: Dur,
    pub finished_app_container_grace: Dur,
    pub gang_reservation_timeout: Dur,
    pub node_locality_delay: Dur,
    pub rack_locality_delay: Dur,
}

impl Default for RmSpec {
    fn default() -> Self {
        let core = CoreSettings::default();
        Self {
            queues_file: None,
            heartbeat_interval: Dur(core.nm_heartbeat_interval_ms),
            nm_expiry: Dur(core.nm_expiry_ms),
            am_expiry: Dur(core.am_expiry_ms),
            tick_interval: Dur(DEFAULT_TICK_INTERVAL_MS),
            minimum_allocation: core.min_allocation.into(),
            maximum_allocation: core.max_allocation.into(),
            max_attempts: core.max_app_attempts,
            max_completed_apps: core.max_completed_apps,
            container_allocation_expiry: Dur(core.container_allocation_expiry_ms),
            finished_app_container_grace: Dur(core.finished_app_container_grace_ms),
            gang_reservation_timeout: Dur(core.gang_reservation_timeout_ms),
            node_locality_delay: Dur(core.node_locality_delay_ms),
            rack_locality_delay: Dur(core.rack_locality_delay_ms),
        }
    }
}

impl RmSpec {
    /// What the core takes from this section.
    pub fn core_settings(&self) -> CoreSettings {
        CoreSettings {
            min_allocation: self.minimum_allocation.into(),
            max_allocation: self.maximum_allocation.into(),
            max_app_attempts: self.max_attempts,
            nm_heartbeat_interval_ms: self.heartbeat_interval.0,
            nm_expiry_ms: self.nm_expiry.0,
            am_expiry_ms: self.am_expiry.0,
            container_allocation_expiry_ms: self.container_allocation_expiry.0,
            finished_app_container_grace_ms: self.finished_app_container_grace.0,
            max_completed_apps: self.max_completed_apps,
            gang_reservation_timeout_ms: self.gang_reservation_timeout.0,
            node_locality_delay_ms: self.node_locality_delay.0,
            rack_locality_delay_ms: self.rack_locality_delay.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NmSpec {
    /// Heartbeat as soon as a container exits (as Weft's NodeManager does), besides every
    /// heartbeat interval.
    pub out_of_band_heartbeat: bool,
}

impl Default for NmSpec {
    fn default() -> Self {
        Self { out_of_band_heartbeat: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AmSpec {
    /// How often an AM calls allocate when it does not long-poll.
    pub heartbeat_interval: Dur,
    /// `0s`: poll every heartbeat interval with `wait_ms: 0`. Above 0: long-poll (the SDK's
    /// default is 1s): the RM answers as soon as something is allocated or completes, and the
    /// AM calls again at once.
    pub long_poll: Dur,
    /// From the RM's AM launch to `AmLaunched` (the NM starting the container).
    pub launch_delay: Dur,
    /// From `AmLaunched` to the AM registering.
    pub register_delay: Dur,
    /// From an AM receiving a container to the task running in it.
    pub container_start_delay: Dur,
}

impl Default for AmSpec {
    fn default() -> Self {
        Self {
            heartbeat_interval: Dur::secs(1),
            long_poll: Dur::ms(0),
            launch_delay: Dur::ms(200),
            register_delay: Dur::ms(300),
            container_start_delay: Dur::ms(0),
        }
    }
}

/// Exactly one of `trace` and `generator`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkloadSpec {
    /// A trace file (JSONL, see `trace.rs`), relative to the scenario file.
    #[serde(default)]
    pub trace: Option<PathBuf>,
    #[serde(default)]
    pub generator: Option<GeneratorSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GeneratorSpec {
    /// With `--nodes` (or a sweep) changing the cluster size, arrival rates and closed-loop app
    /// counts scale with it, so a saturated scenario stays saturated.
    #[serde(default = "yes")]
    pub scale_with_cluster: bool,
    pub streams: Vec<StreamSpec>,
}

fn yes() -> bool {
    true
}

/// One source of applications: where they go, who submits them, when, and what they run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StreamSpec {
    #[serde(default)]
    pub name: Option<String>,
    /// Queue named at submission (placement rules apply as in the RM); none: the rules decide.
    #[serde(default)]
    pub queue: Option<String>,
    /// Submitting users, picked uniformly per app. `etl{1..8}` expands to etl1 … etl8.
    #[serde(default = "default_users")]
    pub users: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    pub arrival: Arrival,
    #[serde(default)]
    pub start: Dur,
    /// No submissions after this (default: the scenario duration).
    #[serde(default)]
    pub end: Option<Dur>,
    #[serde(default)]
    pub max_apps: Option<u64>,
    #[serde(default = "default_am")]
    pub am: ResourceAmount,
    /// Run in order; a stage starts when every task of the previous one succeeded.
    pub stages: Vec<StageSpec>,
}

fn default_users() -> Vec<String> {
    vec!["sim".into()]
}

fn default_am() -> ResourceAmount {
    ResourceAmount { memory_mb: 1024, vcores: 1 }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Arrival {
    /// Poisson arrivals: `{poisson: {per-minute: 30}}`.
    Poisson(PoissonSpec),
    /// One app every interval: `{every: 10s}`.
    Every(Dur),
    /// Closed loop: keep this many apps of the stream unfinished; when one ends, the next is
    /// submitted after `think`. `{closed: {apps: 100, think: 5s}}`.
    Closed(ClosedSpec),
    /// `count` apps at once at `at`: `{burst: {count: 50, at: 30s}}`.
    Burst(BurstSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoissonSpec {
    pub per_minute: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClosedSpec {
    pub apps: u64,
    #[serde(default)]
    pub think: Dur,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BurstSpec {
    pub count: u64,
    #[serde(default)]
    pub at: Dur,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StageSpec {
    /// Tasks in the stage (one container each), drawn per app.
    pub count: Dist<u64>,
    /// Container size of every task of the stage, or…
    #[serde(default)]
    pub size: Option<ResourceAmount>,
    /// …sizes to choose from per app, by weight.
    #[serde(default)]
    pub sizes: Vec<SizeChoice>,
    /// Per task. Required unless `long-running`.
    #[serde(default)]
    pub duration: Option<Dist<Dur>>,
    /// Tasks run until the simulation ends (services, the scale scenario).
    #[serde(default)]
    pub long_running: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SizeChoice {
    pub memory_mb: u64,
    pub vcores: u32,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FailureSpec {
    /// Random failures: each node fails after an exponentially distributed time with this mean
    /// (mean time between failures), again after every recovery.
    #[serde(default)]
    pub node_mtbf: Option<Dur>,
    /// How long a randomly failed node stays down.
    #[serde(default = "default_down_for")]
    pub down_for: Dist<Dur>,
    #[serde(default)]
    pub scheduled: Vec<ScheduledFailure>,
}

impl Default for FailureSpec {
    fn default() -> Self {
        Self { node_mtbf: None, down_for: default_down_for(), scheduled: Vec::new() }
    }
}

fn default_down_for() -> Dist<Dur> {
    Dist::Fixed(Dur::secs(300))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScheduledFailure {
    pub at: Dur,
    /// These node indices (0-based)…
    #[serde(default)]
    pub nodes: Vec<u32>,
    /// …or this many nodes chosen at random.
    #[serde(default)]
    pub count: Option<u32>,
    /// Omitted: the nodes never come back.
    #[serde(default)]
    pub down_for: Option<Dur>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ReportSpec {
    /// Time-series resolution (virtual time).
    pub sample_interval: Dur,
    /// Queues drawn in the chart (full paths). Empty: the leaves if there are at most 12,
    /// otherwise root's children.
    pub chart_queues: Vec<String>,
}

impl Default for ReportSpec {
    fn default() -> Self {
        Self { sample_interval: Dur::secs(5), chart_queues: Vec::new() }
    }
}

/// Figures the summary prints next to what was measured (`OK` / `MISS`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Targets {
    /// Steady-state container allocations per wall-clock second, at least.
    pub allocations_per_sec: Option<f64>,
    /// p99 of one `Core::handle` call over all event kinds, at most.
    pub p99_handle_ms: Option<f64>,
    /// p99 of node heartbeat handling, at most.
    pub p99_heartbeat_ms: Option<f64>,
    /// p99 of how late a single-threaded RM would start a heartbeat, at most (see docs).
    pub heartbeat_lag_p99_ms: Option<f64>,
    /// Peak resident memory of the process, at most.
    pub peak_rss_gib: Option<f64>,
    /// Containers running at the end, at least.
    pub running_containers: Option<u64>,
    /// Applications running at the end, at least.
    pub running_apps: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Loading and validation.

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Unreadable file, malformed YAML, unknown key or wrong type (file, line, field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid scenario {source_name}{}: field `{field}`: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid { source_name: String, line: Option<usize>, field: String, message: String },
    #[error(transparent)]
    Queues(#[from] weft_rm_core::queues::QueueConfigError),
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut scenario = Scenario::parse(&text, &path.display().to_string())?;
        if scenario.name.is_none() {
            scenario.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        Ok(scenario)
    }

    /// Parses and validates YAML text; `source_name` (usually the path) appears in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = weft_common::config::parse_yaml(text, source_name)?;
        scenario.validate().map_err(|(field, message)| ScenarioError::Invalid {
            source_name: source_name.to_owned(),
            line: line_of(text, &field),
            field,
            message,
        })?;
        Ok(scenario)
    }

    /// The first rule broken, as (field path, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
        if self.duration.0 == 0 {
            return fail("duration", "must be positive");
        }
        if self.warmup >= self.duration {
            return fail("warmup", "must be shorter than the duration");
        }
        if self.cluster.nodes == 0 {
            return fail("cluster.nodes", "must be at least 1");
        }
        if self.cluster.node.memory_mb == 0 || self.cluster.node.vcores == 0 {
            return fail("cluster.node", "memory-mb and vcores must be positive");
        }
        if self.cluster.racks == 0 {
            return fail("cluster.racks", "must be at least 1");
        }
        let rm = &self.rm;
        for (field, d) in [
            ("rm.heartbeat-interval", rm.heartbeat_interval),
            ("rm.tick-interval", rm.tick_interval),
            ("rm.nm-expiry", rm.nm_expiry),
            ("rm.am-expiry", rm.am_expiry),
            ("am.heartbeat-interval", self.am.heartbeat_interval),
            ("report.sample-interval", self.report.sample_interval),
        ] {
            if d.0 == 0 {
                return fail(field, "must be positive");
            }
        }
        if rm.nm_expiry <= rm.heartbeat_interval {
            return fail("rm.nm-expiry", "must be longer than rm.heartbeat-interval, or every node is lost");
        }
        let am_silence = if self.am.long_poll.0 > 0 { self.am.long_poll } else { self.am.heartbeat_interval };
        if rm.am_expiry <= am_silence {
            return fail("rm.am-expiry", "must be longer than the AM's heartbeat interval (or long poll)");
        }
        if rm.max_attempts == 0 {
            return fail("rm.max-attempts", "must be at least 1");
        }
        let (min, max) = (rm.minimum_allocation, rm.maximum_allocation);
        if min.memory_mb == 0 || min.vcores == 0 || max.memory_mb < min.memory_mb || max.vcores < min.vcores {
            return fail("rm.maximum-allocation", "must be positive and at least rm.minimum-allocation");
        }
        match (&self.workload.trace, &self.workload.generator) {
            (Some(_), Some(_)) => return fail("workload", "give either trace or generator, not both"),
            (None, None) => return fail("workload", "give a trace file or a generator"),
            _ => {}
        }
        if let Some(generator) = &self.workload.generator {
            if generator.streams.is_empty() {
                return fail("workload.generator.streams", "needs at least one stream");
            }
            for (i, stream) in generator.streams.iter().enumerate() {
                stream.validate().map_err(|(field, m)| (format!("workload.generator.streams[{i}].{field}"), m))?;
            }
        }
        if let Some(mtbf) = self.failures.node_mtbf
            && mtbf.0 == 0
        {
            return fail("failures.node-mtbf", "must be positive");
        }
        if let Some(problem) = self.failures.down_for.problem() {
            return fail("failures.down-for", &problem);
        }
        for (i, f) in self.failures.scheduled.iter().enumerate() {
            let field = format!("failures.scheduled[{i}]");
            match (f.nodes.is_empty(), f.count) {
                (true, None) => return Err((field, "give nodes (indices) or count".into())),
                (false, Some(_)) => return Err((field, "give nodes or count, not both".into())),
                _ => {}
            }
            if let Some(bad) = f.nodes.iter().find(|n| **n >= self.cluster.nodes) {
                return Err((format!("{field}.nodes"), format!("node {bad} does not exist (nodes are 0-based)")));
            }
        }
        Ok(())
    }
}

impl StreamSpec {
    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((field.to_owned(), message));
        if self.users.is_empty() {
            return fail("users", "needs at least one user".into());
        }
        for user in &self.users {
            expand_braces(user).map_err(|m| ("users".to_owned(), m))?;
        }
        match &self.arrival {
            Arrival::Poisson(p) if !(p.per_minute.is_finite() && p.per_minute > 0.0) => {
                return fail("arrival.poisson.per-minute", "must be positive".into());
            }
            Arrival::Every(d) if d.0 == 0 => return fail("arrival.every", "must be positive".into()),
            Arrival::Closed(c) if c.apps == 0 => return fail("arrival.closed.apps", "must be at least 1".into()),
            _ => {}
        }
        if self.am.memory_mb == 0 || self.am.vcores == 0 {
            return fail("am", "memory-mb and vcores must be positive".into());
        }
        if self.stages.is_empty() {
            return fail("stages", "needs at least one stage".into());
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let at = |f: &str| format!("stages[{i}].{f}");
            if let Some(p) = stage.count.problem() {
                return Err((at("count"), p));
            }
            match (&stage.size, stage.sizes.is_empty()) {
                (None, true) => return Err((at("size"), "give size or sizes".into())),
                (Some(_), false) => return Err((at("sizes"), "give size or sizes, not both".into())),
                _ => {}
            }
            let sizes: Vec<(u64, u32, f64)> = match &stage.size {
                Some(s) => vec![(s.memory_mb, s.vcores, 1.0)],
                None => stage.sizes.iter().map(|s| (s.memory_mb, s.vcores, s.weight)).collect(),
            };
            if sizes.iter().any(|(m, v, w)| *m == 0 || *v == 0 || !(w.is_finite() && *w >= 0.0)) {
                return Err((at("size"), "memory-mb and vcores must be positive, weights ≥ 0".into()));
            }
            if sizes.iter().all(|(_, _, w)| *w == 0.0) {
                return Err((at("sizes"), "at least one weight must be positive".into()));
            }
            match (&stage.duration, stage.long_running) {
                (None, false) => return Err((at("duration"), "give a duration, or long-running: true".into())),
                (Some(_), true) => return Err((at("duration"), "a long-running stage has no duration".into())),
                (Some(d), false) => {
                    if let Some(p) = d.problem() {
                        return Err((at("duration"), p));
                    }
                }
                _ => {}
            }
            if stage.long_running && i + 1 != self.stages.len() {
                return Err((at("long-running"), "only the last stage can be long-running".into()));
            }
        }
        Ok(())
    }
}

/// `etl{1..3}` → `etl1, etl2, etl3`; names without braces stand for themselves.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else { return Ok(vec![pattern.to_owned()]) };
    let bad = || format!("{pattern:?}: write a range as name{{1..8}}");
    let close = pattern[open..].find('}').map(|c| open + c).ok_or_else(bad)?;
    let (from, to) = pattern[open + 1..close].split_once("..").ok_or_else(bad)?;
    let (from, to): (u64, u64) = (from.trim().parse().map_err(|_| bad())?, to.trim().parse().map_err(|_| bad())?);
    if from > to || to - from >= 100_000 {
        return Err(bad());
    }
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    Ok((from..=to).map(|n| format!("{prefix}{n}{suffix}")).collect())
}

/// The line (1-based) of `field` in the text, following its dotted path (`rm.nm-expiry` finds
/// the key under `rm:`); the deepest segment found, or None.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut at, mut from) = (None, 0);
    for segment in field.split('.') {
        let name = segment.split('[').next().unwrap_or(segment);
        let found = lines.iter().enumerate().skip(from).find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix(name).is_some_and(|rest| rest.starts_with(':'))
        });
        match found {
            Some((i, _)) => {
                at = Some(i + 1);
                from = i;
            }
            None => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use weft_common::Resource;

    use super::*;

    const WORKLOAD: &str = "workload: {trace: apps.jsonl}\n";

    #[test]
    fn an_empty_rm_section_gives_exactly_the_rms_default_core_settings() {
        for rm in ["", "rm: {}\n"] {
            let scenario = Scenario::parse(&format!("{rm}{WORKLOAD}"), "scenario.yaml").unwrap();
            assert_eq!(scenario.rm.core_settings(), CoreSettings::default());
            assert_eq!(scenario.rm.tick_interval, Dur(DEFAULT_TICK_INTERVAL_MS));
        }
    }

    #[test]
    fn an_rm_section_overrides_only_what_it_names_each_in_its_own_setting() {
        let yaml =
            "rm:\n  nm-expiry: 45s\n  node-locality-delay: 1s\n  maximum-allocation: {memory-mb: 4096, vcores: 2}\n";
        let scenario = Scenario::parse(&format!("{yaml}{WORKLOAD}"), "scenario.yaml").unwrap();
        let expected = CoreSettings {
            nm_expiry_ms: 45_000,
            node_locality_delay_ms: 1_000,
            max_allocation: Resource::new(4096, 2),
            ..CoreSettings::default()
        };
        assert_eq!(scenario.rm.core_settings(), expected);
    }
}
