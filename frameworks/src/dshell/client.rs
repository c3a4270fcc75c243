//! `weft dshell`: submits a distributed shell application and follows it to the end.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use weft_appmaster_sdk::RmClient;
use weft_common::protocol::{LocalResourceType, LocalResourceVisibility};
use weft_common::rest::{AmContainerSpec, AppInfo, ApplicationSubmissionContext, Commands, Entries, LocalResourceInfo};
use weft_common::states::{AppState, FinalStatus};
use weft_common::{ApplicationId, Resource};

use super::JobSpec;
use super::command::{COMMAND_ENV, encode_command};

pub const APPLICATION_TYPE: &str = "DSHELL";
/// Name of the `weft` binary in the AM container's work dir.
const WEFT_RESOURCE: &str = "weft";
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, clap::Args)]
pub struct DshellArgs {
    #[command(flatten)]
    pub job: JobSpec,
    #[arg(long, default_value = "default")]
    pub queue: String,
    /// How many AM attempts the RM may make (default: the RM's setting)
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Application name
    #[arg(long, default_value = "dshell")]
    pub name: String,
    /// Memory of the ApplicationMaster's container, in MiB
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub am_memory_mb: u64,
    /// ResourceManager web address(es), comma-separated for RM high availability
    #[arg(long = "rm", env = "WEFT_RM", default_value = "http://127.0.0.1:8088", value_delimiter = ',')]
    pub rm: Vec<String>,
    /// User to submit as
    #[arg(long, env = "USER", default_value = "weft")]
    pub user: String,
    /// Print the application id and exit without waiting for the application to finish
    #[arg(long)]
    pub no_wait: bool,
    /// The command to run in every container; the words are joined and run by the container's
    /// shell, as with ssh (so `$CONTAINER_ID`, pipes and globs work; quote to pass them through)
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Submits the application, prints its id, and (unless `--no-wait`) follows it to the end.
/// Returns the process exit code: 0 only if the application FINISHED with SUCCEEDED.
pub async fn run_client(args: DshellArgs) -> anyhow::Result<i32> {
    let executable = std::env::current_exe().context("locating the weft executable to ship to the AM")?;
    let mut context = submission_context(&args, &executable)?;
    let rm = RmClient::new(args.rm.clone(), args.user.clone())?;
    let new_app = rm.new_application().await.context("asking the ResourceManager for an application id")?;
    // The AM could only fail on such an ask after being launched: refuse it up front.
    let maximum = new_app.maximum_resource_capability;
    for (what, wanted) in [("container", args.job.capability()), ("AM", Resource::new(args.am_memory_mb, 1))] {
        anyhow::ensure!(
            maximum.fits(&wanted),
            "the {what} size {wanted} exceeds the cluster's maximum allocation {maximum}"
        );
    }
    context.application_id = Some(new_app.application_id);
    let id = rm.submit(&context).await.context("submitting the distributed shell application")?;
    println!("{id}");
    if args.no_wait {
        return Ok(0);
    }

    let mut progress = ProgressView::new(id, args.job.containers)?;
    let app = rm.wait_for_final(id, PROGRESS_INTERVAL, |app| progress.update(app)).await;
    progress.finish();
    let app = app.with_context(|| format!("following {id}"))?;

    println!("{id} {}: final status {}", app.state, app.final_status);
    if !app.diagnostics.is_empty() {
        println!("{}", app.diagnostics);
    }
    Ok(if app.state == AppState::Finished && app.final_status == FinalStatus::Succeeded { 0 } else { 1 })
}

/// The AM runs this very executable, shipped as a local resource, with the command in
/// [`COMMAND_ENV`] rather than on its command line.
fn submission_context(args: &DshellArgs, executable: &Path) -> anyhow::Result<ApplicationSubmissionContext> {
    let weft = LocalResourceInfo {
        resource: format!("file://{}", executable.display()),
        kind: LocalResourceType::File,
        visibility: LocalResourceVisibility::Application,
        size: None,
        timestamp: None,
    };
    let am_command = format!(
        "./{WEFT_RESOURCE} dshell-am {} 1><LOG_DIR>/AppMaster.stdout 2><LOG_DIR>/AppMaster.stderr",
        args.job.am_flags()
    );
    Ok(ApplicationSubmissionContext {
        application_name: Some(args.name.clone()),
        queue: Some(args.queue.clone()),
        am_container_spec: AmContainerSpec {
            local_resources: Some(Entries::from_map(&BTreeMap::from([(WEFT_RESOURCE.to_owned(), weft)]))),
            environment: Some(Entries::from_map(&BTreeMap::from([(
                COMMAND_ENV.to_owned(),
                encode_command(&args.command)?,
            )]))),
            commands: Some(Commands { command: vec![am_command] }),
        },
        max_app_attempts: args.max_attempts,
        resource: Some(Resource::new(args.am_memory_mb, 1)),
        application_type: Some(APPLICATION_TYPE.to_owned()),
        ..ApplicationSubmissionContext::default()
    })
}

/// Containers done, from the application's progress. Like YARN's REST API, the RM reports
/// progress in percent; the dshell AM sets it to the share of successful containers.
fn containers_done(app: &AppInfo, total: u32) -> u32 {
    let fraction = f64::from(app.progress / 100.0).clamp(0.0, 1.0);
    (fraction * f64::from(total)).round() as u32
}

/// A live bar on a terminal; otherwise one line per change, which reads well in logs.
enum ProgressView {
    Bar { bar: ProgressBar, total: u32 },
    Lines { id: ApplicationId, total: u32, last: Option<(AppState, u32)> },
}

impl ProgressView {
    fn new(id: ApplicationId, total: u32) -> anyhow::Result<Self> {
        if !std::io::stdout().is_terminal() {
            return Ok(ProgressView::Lines { id, total, last: None });
        }
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg:9} [{bar:30}] {pos}/{len} containers done")?
            .progress_chars("=> ");
        let bar = ProgressBar::new(u64::from(total)).with_style(style).with_prefix(id.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Ok(ProgressView::Bar { bar, total })
    }

    fn update(&mut self, app: &AppInfo) {
        match self {
            ProgressView::Bar { bar, total } => {
                bar.set_message(app.state.to_string());
                if !app.state.is_final() {
                    bar.set_position(u64::from(containers_done(app, *total)));
                }
            }
            ProgressView::Lines { id, total, last } => {
                let now = (app.state, containers_done(app, *total));
                if *last == Some(now) {
                    return;
                }
                // A final application reports 100% whatever its containers did: no count then.
                if app.state.is_final() {
                    println!("{id} {}", app.state);
                } else {
                    println!("{id} {} ({}/{total} containers done)", now.0, now.1);
                }
                *last = Some(now);
            }
        }
    }

    fn finish(self) {
        if let ProgressView::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::command::decode_command;
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        dshell: DshellArgs,
    }

    fn parse(args: &[&str]) -> DshellArgs {
        Cli::try_parse_from(std::iter::once("dshell").chain(args.iter().copied())).unwrap().dshell
    }

    #[test]
    fn the_command_follows_the_double_dash_and_is_required() {
        let args = parse(&["--containers", "3", "--rm", "http://a:8088,http://b:8088", "--", "echo", "--containers"]);
        assert_eq!(args.job.containers, 3);
        assert_eq!(args.rm, vec!["http://a:8088", "http://b:8088"]);
        assert_eq!(args.command, vec!["echo", "--containers"]);
        assert!(Cli::try_parse_from(["dshell", "--containers", "2"]).is_err());
        assert!(Cli::try_parse_from(["dshell", "--containers", "0", "--", "true"]).is_err());
    }

    #[test]
    fn the_am_runs_this_executable_with_the_command_in_its_environment() {
        let args =
            parse(&["--containers", "2", "--memory-mb", "512", "--max-attempts", "3", "--", "sh", "-c", "echo 'hi'"]);
        let context = submission_context(&args, Path::new("/opt/weft/bin/weft")).unwrap();

        let spec = &context.am_container_spec;
        let commands = &spec.commands.as_ref().unwrap().command;
        assert_eq!(
            commands,
            &vec![
                "./weft dshell-am --containers 2 --memory-mb 512 --vcores 1 \
                 1><LOG_DIR>/AppMaster.stdout 2><LOG_DIR>/AppMaster.stderr"
                    .to_owned()
            ]
        );
        let resources = spec.local_resources.as_ref().unwrap().to_map();
        assert_eq!(resources["weft"].resource, "file:///opt/weft/bin/weft");
        let environment = spec.environment.as_ref().unwrap().to_map();
        assert_eq!(decode_command(&environment[COMMAND_ENV]).unwrap(), vec!["sh", "-c", "echo 'hi'"]);
        assert_eq!(context.application_type.as_deref(), Some("DSHELL"));
        assert_eq!(context.resource, Some(Resource::new(256, 1)));
        assert_eq!(context.max_app_attempts, Some(3));
        assert_eq!(context.queue.as_deref(), Some("default"));
        assert_eq!(context.application_id, None, "filled in by new-application at submit time");
    }
}
