//! Distributed shell: runs one command in N containers across the cluster (YARN's
//! DistributedShell).
//!
//! - `weft dshell [options] -- CMD ARGS...` ([`run_client`]) submits an application whose AM is
//!   this same `weft` executable, shipped as a local resource, and follows it to the end.
//! - `weft dshell-am` ([`run_am`]) is that AM: it asks for the containers, launches the command
//!   in each, replaces containers lost with their node or to preemption, and unregisters with
//!   SUCCEEDED once every container has exited 0, or FAILED naming each failed container.

mod am;
mod client;
mod command;
mod slots;

pub use am::{CONTAINER_PRIORITY, DshellAmArgs, ShellJob, run_am, run_job};
pub use client::{APPLICATION_TYPE, DshellArgs, run_client};
pub use command::COMMAND_ENV;
use weft_appmaster_sdk::ContainerAsk;

pub use slots::{AllocationDecision, ContainerFailure, ContainerVerdict, FailureCause, Outcome, SlotTracker};

/// What the job runs on, shared by `weft dshell` and the AM it starts (which gets it back
/// through [`JobSpec::am_flags`]).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct JobSpec {
    /// Number of containers that must run the command successfully
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub containers: u32,
    /// Memory of each container, in MiB
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_mb: u64,
    /// Virtual cores of each container
    #[arg(long, default_value_t = 1)]
    pub vcores: u32,
    /// Start all containers together or none (a gang ask); replacements for lost containers
    /// are asked for together too
    #[arg(long)]
    pub gang: bool,
    /// Where the containers should run: a host name, a node id (`host:port`) or a rack
    /// (`/rack1`). They go elsewhere if it stays full past the RM's locality delays, unless
    /// --strict-locality is given
    #[arg(long, value_name = "HOST|NODE|/RACK")]
    pub location: Option<String>,
    /// Never run the containers anywhere but --location
    #[arg(long, requires = "location")]
    pub strict_locality: bool,
}

impl JobSpec {
    pub fn capability(&self) -> weft_common::Resource {
        weft_common::Resource::new(self.memory_mb, self.vcores)
    }

    /// What the AM asks the RM for (at `priority`).
    pub fn ask(&self, priority: i32) -> ContainerAsk {
        let ask = match self.location.as_deref() {
            None => ContainerAsk::anywhere(priority, self.capability()),
            Some(rack) if rack.starts_with('/') => ContainerAsk::on_rack(priority, self.capability(), rack),
            Some(host) => ContainerAsk::on_host(priority, self.capability(), host),
        };
        if self.strict_locality { ask.strict() } else { ask }
    }

    /// The flags that make `weft dshell-am` parse this spec again.
    pub fn am_flags(&self) -> String {
        let mut flags =
            format!("--containers {} --memory-mb {} --vcores {}", self.containers, self.memory_mb, self.vcores);
        if self.gang {
            flags.push_str(" --gang");
        }
        if let Some(location) = &self.location {
            flags.push_str(&format!(" --location {location}"));
        }
        if self.strict_locality {
            flags.push_str(" --strict-locality");
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Am {
        #[command(flatten)]
        args: DshellAmArgs,
    }

    #[test]
    fn the_am_parses_back_the_job_the_client_renders() {
        for (gang, location, strict_locality) in
            [(false, None, false), (true, Some("n1:8042"), false), (false, Some("/rack2"), true)]
        {
            let location = location.map(str::to_owned);
            let job = JobSpec { containers: 7, memory_mb: 384, vcores: 2, gang, location, strict_locality };
            let flags = job.am_flags();
            let argv = std::iter::once("dshell-am").chain(flags.split(' '));
            assert_eq!(Am::parse_from(argv).args.job, job);
        }
    }
}
