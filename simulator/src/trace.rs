//! Workload traces: one application per line of JSON (JSONL).
//!
//! ```json
//! {"submit_ms": 1200, "queue": "root.eng.etl", "user": "alice", "priority": 0,
//!  "am": {"memory_mb": 1024, "vcores": 1},
//!  "tasks": [{"count": 20, "memory_mb": 2048, "vcores": 1, "duration_ms": 30000},
//!            {"count": 2, "memory_mb": 4096, "vcores": 2, "durations_ms": [60000, 75000]}]}
//! ```
//!
//! (one line in the file). `tasks` lists stages that run in order (map → reduce): a stage
//! starts once every task of the previous one has succeeded. Each stage gives its tasks' duration
//! as `duration_ms` (all the same), `durations_ms` (one per task) or `"long_running": true`
//! (runs until the simulation ends; last stage only). `name`, `queue` (placement rules decide
//! without it), `user` (default `sim`) and `priority` (default 0) are optional. Blank lines and
//! lines starting with `#` are ignored. Lines need not be sorted by `submit_ms`.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use weft_common::Resource;

/// One application of a workload: from a trace line or drawn by the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// Virtual time of submission.
    pub submit_ms: u64,
    pub name: Option<String>,
    pub queue: Option<String>,
    pub user: String,
    pub priority: i32,
    pub am: Resource,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub count: u32,
    pub resource: Resource,
    pub durations: Durations,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Durations {
    Fixed(u64),
    PerTask(Box<[u64]>),
    LongRunning,
}

impl Durations {
    /// How long task `task` runs; None: until the end.
    pub fn of(&self, task: u32) -> Option<u64> {
        match self {
            Durations::Fixed(ms) => Some(*ms),
            Durations::PerTask(all) => all.get(task as usize).copied(),
            Durations::LongRunning => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read trace {path}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid trace {source_name} line {line}: {message}")]
    Invalid { source_name: String, line: usize, message: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceLine {
    submit_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue: Option<String>,
    #[serde(default = "default_user")]
    user: String,
    #[serde(default)]
    priority: i32,
    am: TraceResource,
    tasks: Vec<TraceStage>,
}

fn default_user() -> String {
    "sim".into()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceResource {
    memory_mb: u64,
    vcores: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceStage {
    count: u32,
    memory_mb: u64,
    vcores: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    durations_ms: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    long_running: bool,
}

/// Parses one trace line (without its line number: the caller adds it).
fn parse_line(text: &str) -> Result<AppSpec, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let line: TraceLine = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string().replace(" at line 1 column", " at column");
        if path == "." { message } else { format!("field `{path}`: {message}") }
    })?;
    if line.am.memory_mb == 0 || line.am.vcores == 0 {
        return Err("field `am`: memory_mb and vcores must be positive".into());
    }
    if line.user.is_empty() || line.user.contains(char::is_whitespace) {
        return Err("field `user`: must be a non-empty name without spaces".into());
    }
    if line.tasks.is_empty() {
        return Err("field `tasks`: needs at least one stage".into());
    }
    let last = line.tasks.len() - 1;
    let mut stages = Vec::with_capacity(line.tasks.len());
    for (i, t) in line.tasks.into_iter().enumerate() {
        let field = |f: &str| format!("field `tasks[{i}].{f}`");
        if t.count == 0 {
            return Err(format!("{}: must be at least 1", field("count")));
        }
        if t.memory_mb == 0 || t.vcores == 0 {
            return Err(format!("{}: memory_mb and vcores must be positive", field("memory_mb")));
        }
        let durations = match (t.duration_ms, t.durations_ms, t.long_running) {
            (Some(ms), None, false) => Durations::Fixed(ms),
            (None, Some(list), false) if list.len() == t.count as usize => Durations::PerTask(list.into()),
            (None, Some(list), false) => {
                return Err(format!("{}: has {} entries for count {}", field("durations_ms"), list.len(), t.count));
            }
            (None, None, true) if i == last => Durations::LongRunning,
            (None, None, true) => {
                return Err(format!("{}: only the last stage can be long-running", field("long_running")));
            }
            (None, None, false) => {
                return Err(format!("{}: give duration_ms, durations_ms or long_running: true", field("duration_ms")));
            }
            _ => {
                return Err(format!(
                    "{}: give only one of duration_ms, durations_ms, long_running",
                    field("duration_ms")
                ));
            }
        };
        stages.push(Stage { count: t.count, resource: Resource::new(t.memory_mb, t.vcores), durations });
    }
    Ok(AppSpec {
        submit_ms: line.submit_ms,
        name: line.name,
        queue: line.queue,
        user: line.user,
        priority: line.priority,
        am: Resource::new(line.am.memory_mb, line.am.vcores),
        stages,
    })
}

/// Parses a whole trace; apps come back sorted by submit time (file order among equals).
pub fn parse_trace(reader: impl BufRead, source_name: &str) -> Result<Vec<AppSpec>, TraceError> {
    let mut apps = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| TraceError::Read { path: source_name.to_owned(), source })?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let app = parse_line(trimmed).map_err(|message| TraceError::Invalid {
            source_name: source_name.to_owned(),
            line: i + 1,
            message,
        })?;
        apps.push(app);
    }
    apps.sort_by_key(|a| a.submit_ms);
    Ok(apps)
}

pub fn load_trace(path: &Path) -> Result<Vec<AppSpec>, TraceError> {
    let file =
        std::fs::File::open(path).map_err(|source| TraceError::Read { path: path.display().to_string(), source })?;
    parse_trace(std::io::BufReader::new(file), &path.display().to_string())
}

/// One trace line (no newline) for `app`: what `--write-trace` writes, and what
/// [`parse_trace`] reads back into an equal [`AppSpec`].
pub fn to_line(app: &AppSpec) -> String {
    let line = TraceLine {
        submit_ms: app.submit_ms,
        name: app.name.clone(),
        queue: app.queue.clone(),
        user: app.user.clone(),
        priority: app.priority,
        am: TraceResource { memory_mb: app.am.memory_mb, vcores: app.am.vcores },
        tasks: app
            .stages
            .iter()
            .map(|s| {
                let (duration_ms, durations_ms, long_running) = match &s.durations {
                    Durations::Fixed(ms) => (Some(*ms), None, false),
                    Durations::PerTask(all) => (None, Some(all.to_vec()), false),
                    Durations::LongRunning => (None, None, true),
                };
                TraceStage {
                    count: s.count,
                    memory_mb: s.resource.memory_mb,
                    vcores: s.resource.vcores,
                    duration_ms,
                    durations_ms,
                    long_running,
                }
            })
            .collect(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Writes apps as they are submitted, so a generated (or closed-loop) workload can be replayed.
pub struct TraceWriter {
    out: Box<dyn Write>,
}

impl TraceWriter {
    pub fn new(out: Box<dyn Write>) -> Self {
        Self { out }
    }

    pub fn write(&mut self, app: &AppSpec) -> std::io::Result<()> {
        self.out.write_all(to_line(app).as_bytes())?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
