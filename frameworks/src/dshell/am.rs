//! The distributed shell ApplicationMaster: runs the command in N containers, replacing lost
//! ones, and reports SUCCEEDED or FAILED with diagnostics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;
use weft_appmaster_sdk::{AmRmClient, ClientError, ContainerAsk, NmClient, SdkError};
use weft_common::ContainerId;
use weft_common::protocol::{Container, ContainerLaunchContext, RegisterAmRequest, container_env};

use super::JobSpec;
use super::command::{COMMAND_ENV, command_line, decode_command};
use super::slots::{AllocationDecision, ContainerVerdict, Outcome, SlotTracker};

/// Priority of the command containers (the AM container itself is at 0).
pub const CONTAINER_PRIORITY: i32 = 1;
/// When the RM answers an allocate at once with nothing new, wait this long between calls
/// rather than spinning.
const MIN_QUIET_HEARTBEAT: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, clap::Args)]
pub struct DshellAmArgs {
    #[command(flatten)]
    pub job: JobSpec,
    /// The command to run; when absent it is read from WEFT_DSHELL_COMMAND (base64 of a JSON
    /// argv), which is how `weft dshell` passes it
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// A container the NM could not start, reported back from its launch task.
struct LaunchFailure {
    container: ContainerId,
    node_unreachable: bool,
    message: String,
}

/// The distributed shell job as the AM runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellJob {
    pub containers: u32,
    /// Size, priority and location of every container.
    pub ask: ContainerAsk,
    pub argv: Vec<String>,
    /// Containers are asked for as a gang: they all start together or none do.
    pub gang: bool,
}

/// `weft dshell-am`: reads its RM connection from the environment the RM gave the AM
/// container, runs the job and unregisters.
pub async fn run_am(args: DshellAmArgs) -> anyhow::Result<()> {
    let argv = if args.command.is_empty() {
        let encoded =
            std::env::var(COMMAND_ENV).with_context(|| format!("no command given and {COMMAND_ENV} is not set"))?;
        decode_command(&encoded)?
    } else {
        args.command
    };
    anyhow::ensure!(!argv.is_empty(), "the command is empty");
    let job =
        ShellJob { containers: args.job.containers, ask: args.job.ask(CONTAINER_PRIORITY), argv, gang: args.job.gang };
    let mut rm = AmRmClient::from_env()?;
    let host = std::env::var(container_env::NM_HOST).unwrap_or_default();
    rm.register(RegisterAmRequest { host, ..Default::default() }).await?;
    run_job(&job, &mut rm, NmClient::new()?).await?;
    Ok(())
}

/// Runs `job` with a registered `rm` client until its outcome is decided, then unregisters
/// with that outcome and returns it.
pub async fn run_job(job: &ShellJob, rm: &mut AmRmClient, nm: NmClient) -> anyhow::Result<Outcome> {
    let launch_context = ContainerLaunchContext { commands: vec![command_line(&job.argv)], ..Default::default() };
    tracing::info!(
        containers = job.containers,
        capability = %job.ask.capability,
        location = %job.ask.resource_name,
        command = %launch_context.commands.join(" "),
        "distributed shell job starting"
    );
    let nm = Arc::new(nm);
    let mut slots = SlotTracker::new(job.containers);
    let (launch_failures_tx, mut launch_failures) = mpsc::unbounded_channel();
    let outcome = loop {
        if job.gang {
            rm.set_gang_request(&job.ask, slots.outstanding());
        } else {
            rm.set_outstanding(&job.ask, slots.outstanding());
        }
        let heartbeat_started = Instant::now();
        let allocation = rm.allocate(slots.progress()).await?;

        for container in allocation.allocated.iter().cloned() {
            match slots.on_allocated(container.id) {
                AllocationDecision::Launch => {
                    spawn_launch(nm.clone(), container, launch_context.clone(), launch_failures_tx.clone());
                }
                AllocationDecision::Release => {
                    tracing::info!(container = %container.id, "releasing a container the job does not need");
                    rm.release(container.id);
                }
            }
        }
        for status in &allocation.completed {
            let verdict = slots.on_completed(status);
            if verdict != ContainerVerdict::Ignored {
                tracing::info!(
                    container = %status.container_id,
                    exit_status = status.exit_status,
                    diagnostics = %status.diagnostics,
                    ?verdict,
                    "container completed"
                );
            }
        }
        if let Some(preemption) = &allocation.preemption {
            for container in slots.note_preemption(preemption.strict.iter().chain(&preemption.contract_containers)) {
                tracing::warn!(%container, "the RM will preempt this container; it will be replaced once it ends");
            }
        }
        while let Ok(failure) = launch_failures.try_recv() {
            let verdict = slots.on_launch_failed(failure.container, failure.node_unreachable, failure.message.clone());
            if verdict != ContainerVerdict::Ignored {
                tracing::warn!(container = %failure.container, error = %failure.message, ?verdict, "container launch failed");
                rm.release(failure.container);
            }
        }

        if let Some(outcome) = slots.outcome() {
            break outcome;
        }
        if allocation.is_quiet() {
            tokio::time::sleep(MIN_QUIET_HEARTBEAT.saturating_sub(heartbeat_started.elapsed())).await;
        }
    };

    tracing::info!(final_status = %outcome.final_status, diagnostics = %outcome.diagnostics, "unregistering");
    rm.finish(outcome.final_status, outcome.diagnostics.clone()).await?;
    Ok(outcome)
}

/// Starts the container in the background, so that an NM that is slow or gone does not hold up
/// the heartbeats; failures come back through `failures`.
fn spawn_launch(
    nm: Arc<NmClient>,
    container: Container,
    launch_context: ContainerLaunchContext,
    failures: mpsc::UnboundedSender<LaunchFailure>,
) {
    tokio::spawn(async move {
        match nm.start_container(&container, launch_context).await {
            Ok(_) => tracing::info!(container = %container.id, node = %container.node_id, "container launched"),
            Err(error) => {
                let failure = LaunchFailure {
                    container: container.id,
                    node_unreachable: matches!(error, SdkError::Client(ClientError::Timeout { .. }))
                        || error.is_retryable(),
                    message: error.to_string(),
                };
                // Sending fails only once the AM has stopped listening, when it no longer matters.
                let _ = failures.send(failure);
            }
        }
    });
}
