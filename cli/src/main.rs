//! `weft`: one binary for the daemons (`rm`, `nm`, `up`), the client commands and the bundled
//! distributed shell.

mod client;
mod daemons;
mod queue;
mod sim;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use weft_frameworks::dshell::{DshellAmArgs, DshellArgs};

#[derive(Parser)]
#[command(name = "weft", version, about = "Weft: a YARN-class cluster resource manager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a ResourceManager.
    Rm {
        #[arg(long, env = "WEFT_RM_CONFIG")]
        config: Option<PathBuf>,
        /// Write {"http_address": …} here once listening.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Run a NodeManager.
    Nm {
        #[arg(long, env = "WEFT_NM_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Run a ResourceManager and NodeManagers on this machine, in the foreground.
    Up(daemons::UpArgs),
    /// Applications: list, status, kill, submit, wait.
    App {
        #[command(flatten)]
        rm: RmOptions,
        #[command(subcommand)]
        command: client::AppCommand,
    },
    /// NodeManagers as the ResourceManager sees them.
    Node {
        #[command(flatten)]
        rm: RmOptions,
        #[command(subcommand)]
        command: client::NodeCommand,
    },
    /// Queues as the ResourceManager runs them: list, status.
    Queue {
        #[command(flatten)]
        rm: RmOptions,
        #[command(subcommand)]
        command: queue::QueueCommand,
    },
    /// Container logs of an application.
    Logs {
        #[command(flatten)]
        rm: RmOptions,
        #[command(flatten)]
        args: client::LogsArgs,
    },
    /// Run a shell command in N containers (the bundled distributed shell) and wait for it.
    Dshell(DshellArgs),
    /// The distributed shell's ApplicationMaster (started by the ResourceManager, not by hand).
    #[command(hide = true)]
    DshellAm(DshellAmArgs),
    /// ResourceManager high availability: which RM is active, planned handover.
    Rmadmin {
        /// The ResourceManager(s) to ask, comma-separated; each is asked on its own.
        #[arg(long = "rm", env = "WEFT_RM", default_value = "http://127.0.0.1:8088", value_delimiter = ',')]
        addresses: Vec<String>,
        #[command(subcommand)]
        command: RmadminCommand,
    },
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Simulate a cluster with the real scheduler core: what-if runs and benchmarks.
    Sim(Box<sim::SimArgs>),
}

/// Where the ResourceManager is and who is asking.
#[derive(Args)]
struct RmOptions {
    /// ResourceManager web address(es), comma-separated.
    #[arg(long = "rm", env = "WEFT_RM", default_value = "http://127.0.0.1:8088", value_delimiter = ',')]
    addresses: Vec<String>,
    /// User to act as (YARN's ?user.name=).
    #[arg(long = "as-user", env = "USER", default_value = "weft")]
    user: String,
}

#[derive(Subcommand)]
enum RmadminCommand {
    /// Print each RM's HA state: ACTIVE or STANDBY (YARN: `rmadmin -getServiceState`).
    GetState,
    /// Make the active RM step down so another takes over (YARN: `rmadmin -transitionToStandby`).
    TransitionToStandby,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file without starting anything and print the effective settings.
    Check {
        file: PathBuf,
        /// rm, nm or queues (guessed from the file name when omitted).
        #[arg(long, value_enum)]
        kind: Option<daemons::ConfigKind>,
        /// Cluster size for a queues file's absolute numbers: <memory-mb>,<vcores>.
        #[arg(long, default_value = "102400,100", value_parser = daemons::parse_cluster_size)]
        cluster: weft_common::Resource,
    },
    /// Convert a YARN capacity-scheduler.xml or fair-scheduler.xml into a Weft queues file.
    ImportYarn {
        file: PathBuf,
        /// Write the YAML here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Prints `address  STATE  epoch N  active: …` per RM; exit code 1 if any RM could not be asked.
async fn rmadmin(addresses: &[String], to_standby: bool) -> anyhow::Result<i32> {
    use weft_appmaster_sdk::admin;
    let mut code = 0;
    for address in addresses {
        let state =
            if to_standby { admin::transition_to_standby(address).await } else { admin::ha_state(address).await };
        match state {
            Ok(s) => {
                let epoch = s.epoch.map_or_else(|| "-".to_owned(), |e| e.to_string());
                let active = s.active_address.as_deref().unwrap_or("unknown");
                println!("{address}\t{}\tepoch {epoch}\tactive: {active}", s.ha_state);
            }
            Err(e) => {
                eprintln!("{address}: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Rm { .. } | Command::Nm { .. } | Command::Up(_) | Command::DshellAm(_)) {
        // Client commands end quietly when their output is piped into `head`, like other CLI
        // tools; daemons keep Rust's default so a closed socket is an error, not a death.
        // SAFETY: restoring a signal's default action before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // The simulator drives the core thousands of times per second: its info lines would drown the summary.
    init_logging(if matches!(cli.command, Command::Sim(_)) { "warn" } else { "info,sqlx=warn,hyper=warn" });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<i32> = runtime.block_on(async {
        match cli.command {
            Command::Rm { config, ready_file } => daemons::run_rm(config, ready_file).await.map(|()| 0),
            Command::Nm { config, ready_file } => daemons::run_nm(config, ready_file).await.map(|()| 0),
            Command::Up(args) => daemons::run_up(args).await.map(|()| 0),
            Command::App { rm, command } => client::run_app(command, &rm.addresses, &rm.user).await,
            Command::Node { rm, command } => client::run_node(command, &rm.addresses, &rm.user).await,
            Command::Queue { rm, command } => queue::run_queue(command, &rm.addresses, &rm.user).await,
            Command::Logs { rm, args } => client::run_logs(args, &rm.addresses, &rm.user).await,
            Command::Dshell(args) => weft_frameworks::dshell::run_client(args).await,
            Command::DshellAm(args) => weft_frameworks::dshell::run_am(args).await.map(|()| 0),
            Command::Rmadmin { addresses, command: RmadminCommand::GetState } => rmadmin(&addresses, false).await,
            Command::Rmadmin { addresses, command: RmadminCommand::TransitionToStandby } => {
                rmadmin(&addresses, true).await
            }
            Command::Config(ConfigCommand::Check { file, kind, cluster }) => {
                daemons::check_config(&file, kind, cluster).map(|()| 0)
            }
            Command::Config(ConfigCommand::ImportYarn { file, output }) => {
                daemons::import_yarn(&file, output.as_deref()).map(|()| 0)
            }
            Command::Sim(args) => sim::run_sim(*args),
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
