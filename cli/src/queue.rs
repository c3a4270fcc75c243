//! `weft queue list` and `weft queue status`: the ResourceManager's queues as it runs them
//! (`GET /ws/v1/weft/queues`), as a table like `mapred queue -list`, a report like
//! `yarn queue -status`, or the RM's JSON with `--json`.

use std::fmt::Write as _;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;
use weft_client::{Endpoint, Request, RetryPolicy, http_client};
use weft_common::Resource;
use weft_common::error::ErrorBody;

use crate::client::report_refusal;

const QUEUES_PATH: &str = "/ws/v1/weft/queues";
const RELOAD_PATH: &str = "/ws/v1/weft/queues/reload";

#[derive(Debug, Clone, clap::Subcommand)]
pub enum QueueCommand {
    /// List every queue: guarantee, maximum, usage, demand, fair share and applications
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one queue's report
    Status {
        /// Full path (`root.prod.etl`) or leaf name (`etl`)
        queue: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-read the RM's queues file and switch to it atomically (queue administrators only); an
    /// invalid file is refused and the running configuration stays
    Reload,
}

/// One entry of `GET /ws/v1/weft/queues` (the fields the CLI shows; `--json` prints them all).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueEntry {
    path: String,
    name: String,
    parent: Option<String>,
    leaf: bool,
    state: String,
    mode: String,
    configured: Option<String>,
    /// Percent of the cluster guaranteed (defined even before any node registers).
    #[serde(default)]
    absolute_capacity: f64,
    guaranteed: Resource,
    maximum: Resource,
    used: Resource,
    /// Percent of the guarantee, by the RM's resource calculator.
    #[serde(default)]
    used_capacity: f64,
    pending: Resource,
    #[serde(default)]
    pending_containers: u64,
    #[serde(default)]
    num_containers: u64,
    /// Fair mode only.
    fair_share: Option<Resource>,
    num_applications: u32,
    num_running_applications: u32,
    max_applications: Option<u32>,
    max_parallel_apps: Option<u32>,
    am_used: Resource,
    am_limit: Option<Resource>,
    #[serde(default = "preemptible_by_default")]
    preemptible: bool,
    users: Vec<QueueUser>,
}

fn preemptible_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueUser {
    user: String,
    used: Resource,
    am_used: Resource,
    num_applications: u32,
    num_running_applications: u32,
}

pub async fn run_queue(cmd: QueueCommand, rm: &[String], user: &str) -> anyhow::Result<i32> {
    if matches!(cmd, QueueCommand::Reload) {
        return match call_rm(rm, user, Request::post(RELOAD_PATH)).await? {
            Fetched::Answer(summary) => {
                let list = |key: &str| summary[key].as_array().map_or(0, Vec::len);
                println!(
                    "reloaded {}: {} queue(s) added, {} removed, {} changed",
                    summary["reloaded"].as_str().unwrap_or("the queues file"),
                    list("added"),
                    list("removed"),
                    list("changed")
                );
                Ok(0)
            }
            Fetched::Refused(body) => {
                report_refusal(&body);
                Ok(1)
            }
        };
    }
    let raw = match call_rm(rm, user, Request::get(QUEUES_PATH)).await? {
        Fetched::Answer(Value::Array(raw)) => raw,
        Fetched::Answer(other) => anyhow::bail!("the ResourceManager's queue list is not a list: {other}"),
        Fetched::Refused(body) => {
            report_refusal(&body);
            return Ok(1);
        }
    };
    let queues: Vec<QueueEntry> = serde_json::from_value(Value::Array(raw.clone()))
        .context("the ResourceManager's queue list is not in the expected shape")?;
    match cmd {
        QueueCommand::List { json: true } => print_json(&Value::Array(raw))?,
        QueueCommand::List { json: false } => print!("{}", queues_table(&queues)),
        QueueCommand::Reload => {} // answered above, before fetching the list
        QueueCommand::Status { queue, json } => {
            let index = match find_queue(&queues, &queue) {
                Ok(index) => index,
                Err(message) => {
                    eprintln!("error: {message}");
                    eprintln!("hint: `weft queue list` shows every queue");
                    return Ok(1);
                }
            };
            if json {
                print_json(&raw[index])?;
            } else {
                print!("{}", queue_report(&queues[index], &queues));
            }
        }
    }
    Ok(0)
}

enum Fetched {
    Answer(Value),
    /// The RM answered with an error the user has to act on.
    Refused(ErrorBody),
}

/// Calls `path` on the RM group, failing over and following a standby's redirect like every
/// other client command.
async fn call_rm(rm: &[String], user: &str, request: Request<'_>) -> anyhow::Result<Fetched> {
    let endpoint = Endpoint::new(http_client()?, rm, RetryPolicy::default())
        .context("no usable ResourceManager address (use --rm or WEFT_RM)")?
        .with_user_name(user.to_owned());
    match endpoint.call_json(&request).await {
        Ok(answer) => Ok(Fetched::Answer(answer)),
        Err(error) => match error.remote_body() {
            Some(body) => Ok(Fetched::Refused(body.clone())),
            None => Err(anyhow::Error::new(error).context("no ResourceManager answered")),
        },
    }
}

/// A queue by full path, else by its name when exactly one queue has it (leaf names are unique).
fn find_queue(queues: &[QueueEntry], wanted: &str) -> Result<usize, String> {
    let wanted = wanted.trim();
    if let Some(index) = queues.iter().position(|q| q.path == wanted) {
        return Ok(index);
    }
    let named: Vec<usize> = (0..queues.len()).filter(|&i| queues[i].name == wanted).collect();
    match named.as_slice() {
        [index] => Ok(*index),
        [] => Err(format!("no queue named {wanted}")),
        several => {
            let paths: Vec<&str> = several.iter().map(|&i| queues[i].path.as_str()).collect();
            Err(format!("{wanted} names several queues ({}); give the full path", paths.join(", ")))
        }
    }
}

fn queues_table(queues: &[QueueEntry]) -> String {
    let headers = ["QUEUE", "STATE", "GUARANTEED", "MAX", "USED", "PENDING", "FAIR SHARE", "APPS"];
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            vec![
                q.path.clone(),
                q.state.clone(),
                format!("{} ({:.1}%)", resource(q.guaranteed), q.absolute_capacity),
                resource(q.maximum),
                format!("{} ({:.1}%)", resource(q.used), q.used_capacity),
                resource(q.pending),
                q.fair_share.map_or_else(|| "-".to_owned(), resource),
                format!("{} ({} running)", q.num_applications, q.num_running_applications),
            ]
        })
        .collect();
    let mode = queues.first().map_or("unknown", |q| q.mode.as_str());
    format!("Scheduler: {mode}, {} queues\n{}", queues.len(), table(&headers, &rows))
}

/// YARN's `queue -status` layout: a title line, then tab-indented `Key : value` lines.
fn queue_report(q: &QueueEntry, all: &[QueueEntry]) -> String {
    let limit = |value: Option<u32>| value.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    let mut fields = vec![
        ("Queue Name", q.name.clone()),
        ("Queue Path", q.path.clone()),
        ("Parent", q.parent.clone().unwrap_or_else(|| "-".to_owned())),
        ("Type", if q.leaf { "leaf" } else { "parent" }.to_owned()),
        ("State", q.state.clone()),
        ("Scheduler", q.mode.clone()),
        ("Configured", q.configured.clone().unwrap_or_else(|| "-".to_owned())),
        ("Guaranteed", format!("{} ({:.1}% of the cluster)", resource(q.guaranteed), q.absolute_capacity)),
        ("Maximum", resource(q.maximum)),
        ("Used", format!("{} ({:.1}% of guaranteed)", resource(q.used), q.used_capacity)),
        ("Pending", format!("{} ({} containers)", resource(q.pending), q.pending_containers)),
    ];
    if let Some(share) = q.fair_share {
        fields.push(("Fair Share", resource(share)));
    }
    fields.extend([
        ("Applications", format!("{} ({} running)", q.num_applications, q.num_running_applications)),
        ("Containers", q.num_containers.to_string()),
        ("AM Used", resource(q.am_used)),
        ("AM Limit", q.am_limit.map_or_else(|| "-".to_owned(), resource)),
        ("Max Applications", limit(q.max_applications)),
        ("Max Parallel Apps", limit(q.max_parallel_apps)),
        ("Preemptible", if q.preemptible { "yes" } else { "no" }.to_owned()),
    ]);
    if !q.leaf {
        let children: Vec<&str> =
            all.iter().filter(|c| c.parent.as_deref() == Some(q.path.as_str())).map(|c| c.path.as_str()).collect();
        fields.push(("Children", children.join(", ")));
    }
    let mut out = String::from("Queue Information :\n");
    for (key, value) in &fields {
        let _ = writeln!(out, "\t{key} : {value}");
    }
    if q.leaf {
        out.push_str("\tUsers :");
        if q.users.is_empty() {
            out.push_str(" none");
        }
        out.push('\n');
        for u in &q.users {
            let _ = writeln!(
                out,
                "\t\t{} : {} used, {} by AMs, {} applications ({} running)",
                u.user,
                resource(u.used),
                resource(u.am_used),
                u.num_applications,
                u.num_running_applications
            );
        }
    }
    out
}

fn resource(r: Resource) -> String {
    format!("{} MB, {} vc", r.memory_mb, r.vcores)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Left-aligned columns, each as wide as its widest cell, separated by two spaces.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header_cells).chain(rows) {
        let line =
            row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect::<Vec<_>>().join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use serde_json::json;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        queue: QueueCommand,
    }

    fn r(memory: u64, vcores: u32) -> Value {
        json!({"memory": memory, "vCores": vcores})
    }

    /// The shape `GET /ws/v1/weft/queues` answers with (fair mode, two queues).
    fn sample() -> Vec<QueueEntry> {
        let entry = |path: &str, name: &str, parent: Option<&str>, leaf: bool, users: Value| {
            json!({
                "path": path, "name": name, "parent": parent, "leaf": leaf, "state": "RUNNING", "mode": "fair",
                "capacityMode": null, "configured": "weight 1", "absoluteCapacity": 100.0,
                "guaranteed": r(10_240, 10), "maximum": r(20_480, 20), "used": r(2048, 2), "usedCapacity": 20.0,
                "pending": r(1024, 1), "fairShare": r(3072, 3), "numApplications": 1, "numRunningApplications": 1,
                "numContainers": 2, "pendingContainers": 1, "maxApplications": null, "maxParallelApps": 5,
                "amUsed": r(1024, 1), "amLimit": if leaf { r(5120, 5) } else { Value::Null },
                "preemptible": true, "users": users,
            })
        };
        let alice = json!([{"user": "alice", "used": r(2048, 2), "amUsed": r(1024, 1), "numApplications": 1, "numRunningApplications": 1}]);
        serde_json::from_value(json!([
            entry("root", "root", None, false, json!([])),
            entry("root.etl", "etl", Some("root"), true, alice),
        ]))
        .unwrap()
    }

    #[test]
    fn the_list_is_a_table_with_one_row_per_queue() {
        let out = queues_table(&sample());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Scheduler: fair, 2 queues");
        assert!(lines[1].starts_with("QUEUE     STATE    GUARANTEED                MAX"), "{out}");
        assert!(lines[1].ends_with("FAIR SHARE     APPS"), "{out}");
        assert!(
            lines[3].starts_with("root.etl  RUNNING  10240 MB, 10 vc (100.0%)  20480 MB, 20 vc  2048 MB, 2 vc (20.0%)"),
            "{out}"
        );
        assert!(lines[3].ends_with("3072 MB, 3 vc  1 (1 running)"), "{out}");
    }

    #[test]
    fn status_finds_a_queue_by_path_or_leaf_name_and_reports_it() {
        let queues = sample();
        assert_eq!(find_queue(&queues, "root.etl"), Ok(1));
        assert_eq!(find_queue(&queues, "etl"), Ok(1));
        assert_eq!(find_queue(&queues, "nope"), Err("no queue named nope".to_owned()));
        let report = queue_report(&queues[1], &queues);
        assert!(report.starts_with("Queue Information :\n\tQueue Name : etl\n\tQueue Path : root.etl\n"), "{report}");
        assert!(report.contains("\tFair Share : 3072 MB, 3 vc\n"), "{report}");
        assert!(report.contains("\tMax Applications : unlimited\n\tMax Parallel Apps : 5\n"), "{report}");
        assert!(report.contains("\t\talice : 2048 MB, 2 vc used, 1024 MB, 1 vc by AMs, 1 applications (1 running)\n"));
        let root = queue_report(&queues[0], &queues);
        assert!(root.contains("\tChildren : root.etl\n") && !root.contains("Users"), "{root}");
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from(["q", "status", "root.etl", "--json"]).unwrap();
        assert!(matches!(cli.queue, QueueCommand::Status { ref queue, json: true } if queue == "root.etl"));
        let cli = Cli::try_parse_from(["q", "list"]).unwrap();
        assert!(matches!(cli.queue, QueueCommand::List { json: false }));
    }
}
