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
pub use slots::{AllocationDecision, ContainerFailure, ContainerVerdict, FailureCause, Outcome, SlotTracker};
