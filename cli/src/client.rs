//! `weft app`, `weft node` and `weft logs`: YARN-style client commands over the RM's REST API
//! (and the NMs' log API), with human-readable tables by default and JSON with `--json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use weft_appmaster_sdk::{AppsFilter, RetryPolicy, RmClient, SdkError};
use weft_common::rest::{AppAttemptInfo, AppInfo, ApplicationSubmissionContext, NodeInfo};
use weft_common::states::{AppState, FinalStatus, NodeState};
use weft_common::{ApplicationId, ContainerId, NodeId};

const WAIT_PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// Log reading gives up on an unreachable NodeManager sooner than the SDK's default, since the
/// remaining containers are still worth showing.
const LOGS_DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AppCommand {
    /// List applications
    List {
        /// Only applications in these states (comma-separated, e.g. RUNNING,ACCEPTED)
        #[arg(long, value_delimiter = ',')]
        states: Vec<AppState>,
        /// Only applications in this queue
        #[arg(long)]
        queue: Option<String>,
        /// Only applications of this user
        #[arg(long)]
        user: Option<String>,
        /// At most this many applications
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Show an application's report
    Status {
        id: ApplicationId,
        #[arg(long)]
        json: bool,
    },
    /// Kill an application
    Kill { id: ApplicationId },
    /// List an application's attempts
    Attempts {
        id: ApplicationId,
        #[arg(long)]
        json: bool,
    },
    /// Submit a YARN JSON application submission context (an id is obtained if it has none)
    Submit {
        #[arg(long)]
        file: PathBuf,
    },
    /// Wait for an application to finish; exits 0 only if it FINISHED with SUCCEEDED
    Wait { id: ApplicationId },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum NodeCommand {
    /// List NodeManagers
    List {
        /// Only nodes in these states (comma-separated, e.g. RUNNING,UNHEALTHY)
        #[arg(long, value_delimiter = ',')]
        states: Vec<NodeState>,
        #[arg(long)]
        json: bool,
    },
    /// Show a node's report
    Status {
        /// Node id, `host:port`
        id: NodeId,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Application whose container logs to show
    pub app: ApplicationId,
    /// Only this container (default: every container the RM knows for the application)
    #[arg(long)]
    pub container: Option<ContainerId>,
    /// Only these log files, comma-separated (default: every log file of each container,
    /// stdout and stderr included)
    #[arg(long, value_delimiter = ',')]
    pub file: Vec<String>,
}

pub async fn run_app(cmd: AppCommand, rm: &[String], user: &str) -> anyhow::Result<i32> {
    let client = RmClient::new(rm.to_vec(), user)?;
    let result = match cmd {
        AppCommand::List { states, queue, user, limit, json } => {
            let filter = AppsFilter { states, queue, user, limit, ..AppsFilter::default() };
            list_apps(&client, &filter, json).await
        }
        AppCommand::Status { id, json } => app_status(&client, id, json).await,
        AppCommand::Kill { id } => kill_app(&client, id).await,
        AppCommand::Attempts { id, json } => app_attempts(&client, id, json).await,
        AppCommand::Submit { file } => submit_app(&client, &file).await,
        AppCommand::Wait { id } => wait_for_app(&client, id).await,
    };
    explain_remote_error(result)
}

pub async fn run_node(cmd: NodeCommand, rm: &[String], user: &str) -> anyhow::Result<i32> {
    let client = RmClient::new(rm.to_vec(), user)?;
    let result = match cmd {
        NodeCommand::List { states, json } => list_nodes(&client, &states, json).await,
        NodeCommand::Status { id, json } => node_status(&client, &id, json).await,
    };
    explain_remote_error(result)
}

pub async fn run_logs(args: LogsArgs, rm: &[String], user: &str) -> anyhow::Result<i32> {
    let policy = RetryPolicy { deadline: LOGS_DEADLINE, ..RetryPolicy::default() };
    let client = RmClient::new(rm.to_vec(), user)?.with_retry_policy(policy);
    explain_remote_error(show_logs(&client, &args).await)
}

/// A refusal from the RM or an NM is the user's to fix: show its message and hint, exit 1.
/// Anything else goes up to the caller.
fn explain_remote_error(result: anyhow::Result<i32>) -> anyhow::Result<i32> {
    let Err(error) = result else { return result };
    let Some(body) = error.downcast_ref::<SdkError>().and_then(SdkError::remote_body) else { return Err(error) };
    report_refusal(body);
    Ok(1)
}

/// Prints a RemoteException's message, stable code and hint for a person.
pub fn report_refusal(body: &weft_common::error::ErrorBody) {
    let remote = &body.remote_exception;
    if remote.code.is_empty() {
        eprintln!("error: {}", remote.message);
    } else {
        eprintln!("error: {} ({})", remote.message, remote.code);
    }
    if !remote.hint.is_empty() {
        eprintln!("hint: {}", remote.hint);
    }
}

async fn list_apps(client: &RmClient, filter: &AppsFilter, json: bool) -> anyhow::Result<i32> {
    let apps = client.apps(filter).await?;
    if json {
        print_json(serde_json::to_value(&apps)?)?;
        return Ok(0);
    }
    let states = if filter.states.is_empty() {
        "all".to_owned()
    } else {
        filter.states.iter().map(AppState::as_str).collect::<Vec<_>>().join(", ")
    };
    println!("Total number of applications (states: [{states}]): {}", apps.len());
    print!("{}", apps_table(&apps));
    Ok(0)
}

fn apps_table(apps: &[AppInfo]) -> String {
    let headers = [
        "Application-Id",
        "Application-Name",
        "Application-Type",
        "User",
        "Queue",
        "State",
        "Final-State",
        "Progress",
        "Tracking-URL",
    ];
    let rows = apps
        .iter()
        .map(|app| {
            vec![
                app.id.to_string(),
                app.name.clone(),
                app.application_type.clone(),
                app.user.clone(),
                app.queue.clone(),
                app.state.to_string(),
                app.final_status.to_string(),
                percent(app.progress),
                or_na(&app.tracking_url),
            ]
        })
        .collect::<Vec<_>>();
    table(&headers, &rows)
}

async fn app_status(client: &RmClient, id: ApplicationId, json: bool) -> anyhow::Result<i32> {
    let app = client.app(id).await?;
    if json {
        print_json(serde_json::to_value(&app)?)?;
    } else {
        print!("{}", app_report(&app));
    }
    Ok(0)
}

fn app_report(app: &AppInfo) -> String {
    let fields = [
        ("Application-Id", app.id.to_string()),
        ("Application-Name", app.name.clone()),
        ("Application-Type", app.application_type.clone()),
        ("User", app.user.clone()),
        ("Queue", app.queue.clone()),
        ("Application Priority", app.priority.to_string()),
        ("Application-Tags", app.application_tags.clone()),
        ("Start-Time", app.started_time.to_string()),
        ("Launch-Time", app.launch_time.to_string()),
        ("Finish-Time", app.finished_time.to_string()),
        ("Progress", percent(app.progress)),
        ("State", app.state.to_string()),
        ("Final-State", app.final_status.to_string()),
        ("Tracking-URL", or_na(&app.tracking_url)),
        ("AM Host", or_na(&app.am_host_http_address)),
        ("AM Container Logs", or_na(&app.am_container_logs)),
        ("Running Containers", app.running_containers.to_string()),
        ("Allocated Resources", format!("{} MB, {} vcores", app.allocated_mb, app.allocated_vcores)),
        (
            "Aggregate Resource Allocation",
            format!("{} MB-seconds, {} vcore-seconds", app.memory_seconds, app.vcore_seconds),
        ),
        ("Max App Attempts", app.max_app_attempts.to_string()),
        ("Diagnostics", app.diagnostics.clone()),
    ];
    key_value_report("Application Report", &fields)
}

async fn kill_app(client: &RmClient, id: ApplicationId) -> anyhow::Result<i32> {
    let app = client.app(id).await?;
    if app.state.is_final() {
        println!("Application {id} has already finished with state {}", app.state);
        return Ok(0);
    }
    println!("Killing application {id}");
    let app = client.kill(id).await?;
    println!("Application {id} is {}", app.state);
    Ok(0)
}

async fn app_attempts(client: &RmClient, id: ApplicationId, json: bool) -> anyhow::Result<i32> {
    let attempts = client.attempts(id).await?;
    if json {
        print_json(serde_json::to_value(&attempts)?)?;
        return Ok(0);
    }
    println!("Total number of application attempts: {}", attempts.len());
    print!("{}", attempts_table(&attempts));
    Ok(0)
}

fn attempts_table(attempts: &[AppAttemptInfo]) -> String {
    let headers = ["ApplicationAttempt-Id", "State", "AM-Container-Id", "Node-Id", "Diagnostics"];
    let rows = attempts
        .iter()
        .map(|attempt| {
            vec![
                attempt.app_attempt_id.clone(),
                attempt.app_attempt_state.to_string(),
                or_na(&attempt.container_id),
                or_na(&attempt.node_id),
                first_line(&attempt.diagnostics),
            ]
        })
        .collect::<Vec<_>>();
    table(&headers, &rows)
}

async fn submit_app(client: &RmClient, file: &std::path::Path) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let context: ApplicationSubmissionContext = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a YARN application submission context", file.display()))?;
    let id = client.submit(&context).await?;
    println!("{id}");
    Ok(0)
}

async fn wait_for_app(client: &RmClient, id: ApplicationId) -> anyhow::Result<i32> {
    let mut last_state = None;
    let app = client
        .wait_for_final(id, WAIT_PROGRESS_INTERVAL, |app| {
            if last_state != Some(app.state) {
                eprintln!("{id} {}", app.state);
                last_state = Some(app.state);
            }
        })
        .await?;
    println!("{id} {}: final status {}", app.state, app.final_status);
    if !app.diagnostics.is_empty() {
        println!("{}", app.diagnostics);
    }
    Ok(if app.state == AppState::Finished && app.final_status == FinalStatus::Succeeded { 0 } else { 1 })
}

async fn list_nodes(client: &RmClient, states: &[NodeState], json: bool) -> anyhow::Result<i32> {
    let nodes: Vec<NodeInfo> =
        client.nodes().await?.into_iter().filter(|node| states.is_empty() || states.contains(&node.state)).collect();
    if json {
        print_json(serde_json::to_value(&nodes)?)?;
        return Ok(0);
    }
    println!("Total Nodes:{}", nodes.len());
    print!("{}", nodes_table(&nodes));
    Ok(0)
}

fn nodes_table(nodes: &[NodeInfo]) -> String {
    let headers = [
        "Node-Id",
        "Node-State",
        "Node-Http-Address",
        "Number-of-Running-Containers",
        "Memory-Used/Total(MB)",
        "VCores-Used/Total",
    ];
    let rows = nodes
        .iter()
        .map(|node| {
            vec![
                node.id.clone(),
                node.state.to_string(),
                node.node_http_address.clone(),
                node.num_containers.to_string(),
                format!("{}/{}", node.used_memory_mb, node.total_resource.memory_mb),
                format!("{}/{}", node.used_virtual_cores, node.total_resource.vcores),
            ]
        })
        .collect::<Vec<_>>();
    table(&headers, &rows)
}

async fn node_status(client: &RmClient, id: &NodeId, json: bool) -> anyhow::Result<i32> {
    let node = client.node(id).await?;
    if json {
        print_json(serde_json::to_value(&node)?)?;
        return Ok(0);
    }
    let fields = [
        ("Node-Id", node.id.clone()),
        ("Rack", node.rack.clone()),
        ("Node-State", node.state.to_string()),
        ("Node-Http-Address", node.node_http_address.clone()),
        ("Last-Health-Update", node.last_health_update.to_string()),
        ("Health-Report", node.health_report.clone()),
        ("Containers", node.num_containers.to_string()),
        ("Memory-Used", format!("{}MB", node.used_memory_mb)),
        ("Memory-Available", format!("{}MB", node.avail_memory_mb)),
        ("CPU-Used", format!("{} vcores", node.used_virtual_cores)),
        ("CPU-Available", format!("{} vcores", node.available_virtual_cores)),
        ("Total-Resource", node.total_resource.to_string()),
        ("Node-Manager-Version", node.version.clone()),
    ];
    print!("{}", key_value_report("Node Report", &fields));
    Ok(0)
}

/// Where a container's logs can be read.
#[derive(Debug)]
struct LogSource {
    node_id: String,
    node_http_address: String,
}

async fn show_logs(client: &RmClient, args: &LogsArgs) -> anyhow::Result<i32> {
    let mut sources = containers_with_logs(client, args.app).await?;
    if let Some(wanted) = args.container {
        let source = sources
            .remove(&wanted)
            .with_context(|| format!("the ResourceManager knows no container {wanted} of {}", args.app))?;
        sources = BTreeMap::from([(wanted, source)]);
    }
    let mut problems = 0;
    for (container, source) in &sources {
        println!("Container: {container} on {}", source.node_id);
        println!("{}", "=".repeat(70));
        let files = if args.file.is_empty() {
            match client.list_logs(&source.node_http_address, *container).await {
                Ok(files) => files,
                Err(error) => {
                    eprintln!("cannot list the logs of {container}: {}", describe(&error));
                    problems += 1;
                    continue;
                }
            }
        } else {
            args.file.clone()
        };
        for file in files {
            match client.container_logs(&source.node_http_address, *container, &file).await {
                Ok(text) => print!("{}", log_section(&file, &text)),
                Err(error) => {
                    eprintln!("cannot read {file} of {container}: {}", describe(&error));
                    problems += 1;
                }
            }
        }
    }
    Ok(if problems == 0 { 0 } else { 1 })
}

/// Every container the RM knows for the application's attempts. The AM container of each
/// attempt is known from the attempt itself, so it is listed even if the container listing
/// cannot be had.
async fn containers_with_logs(
    client: &RmClient,
    app: ApplicationId,
) -> anyhow::Result<BTreeMap<ContainerId, LogSource>> {
    let mut sources = BTreeMap::new();
    for attempt in client.attempts(app).await? {
        if let Ok(am_container) = attempt.container_id.parse::<ContainerId>()
            && !attempt.node_http_address.is_empty()
        {
            let source =
                LogSource { node_id: attempt.node_id.clone(), node_http_address: attempt.node_http_address.clone() };
            sources.insert(am_container, source);
        }
        match client.attempt_containers(app, &attempt.app_attempt_id).await {
            Ok(containers) => {
                for container in containers {
                    let source =
                        LogSource { node_id: container.node_id, node_http_address: container.node_http_address };
                    sources.insert(container.container_id, source);
                }
            }
            Err(error) => eprintln!(
                "warning: cannot list the containers of {}: {}; showing its AM container only",
                attempt.app_attempt_id,
                describe(&error)
            ),
        }
    }
    Ok(sources)
}

fn log_section(file: &str, text: &str) -> String {
    let mut section = format!("LogType:{file}\nLogLength:{}\nLogContents:\n{text}", text.len());
    if !text.is_empty() && !text.ends_with('\n') {
        section.push('\n');
    }
    let _ = writeln!(section, "End of LogType:{file}\n");
    section
}

/// One line for an SDK error: the remote message and hint when there is one.
fn describe(error: &SdkError) -> String {
    match error.remote_body() {
        Some(body) if !body.remote_exception.hint.is_empty() => {
            format!("{} (hint: {})", body.remote_exception.message, body.remote_exception.hint)
        }
        Some(body) => body.remote_exception.message.clone(),
        None => error.to_string(),
    }
}

fn print_json(value: serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&value)?);
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
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let line =
            row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect::<Vec<_>>().join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// YARN's `-status` layout: a title line, then tab-indented `Key : value` lines.
fn key_value_report(title: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("{title} :\n");
    for (key, value) in fields {
        let _ = writeln!(out, "\t{key} : {value}");
    }
    out
}

/// The RM reports progress in percent, as YARN's REST API does.
fn percent(progress: f32) -> String {
    format!("{progress:.0}%")
}

fn or_na(value: &str) -> String {
    if value.is_empty() { "N/A".to_owned() } else { value.to_owned() }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        app: AppCommand,
    }

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["Id", "State"],
            &[vec!["application_1_0001".into(), "RUNNING".into()], vec!["a".into(), "".into()]],
        );
        assert_eq!(out, "Id                  State\napplication_1_0001  RUNNING\na\n");
    }

    #[test]
    fn list_parses_comma_separated_states() {
        let cli = Cli::try_parse_from(["app", "list", "--states", "running,ACCEPTED", "--limit", "5"]).unwrap();
        let AppCommand::List { states, limit, .. } = cli.app else { panic!("not a list command") };
        assert_eq!(states, vec![AppState::Running, AppState::Accepted]);
        assert_eq!(limit, Some(5));
        assert!(Cli::try_parse_from(["app", "list", "--states", "BOGUS"]).is_err());
        assert!(Cli::try_parse_from(["app", "status", "not-an-id"]).is_err());
    }

    #[test]
    fn log_sections_end_with_a_newline() {
        assert_eq!(
            log_section("stdout", "hi"),
            "LogType:stdout\nLogLength:2\nLogContents:\nhi\nEnd of LogType:stdout\n\n"
        );
        assert_eq!(log_section("stderr", ""), "LogType:stderr\nLogLength:0\nLogContents:\nEnd of LogType:stderr\n\n");
    }
}
