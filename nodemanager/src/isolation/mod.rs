//! Resource isolation of containers: cgroup v1, cgroup v2, or none.
//!
//! Every container gets its own cgroup (one per controller on v1) named after the container id,
//! under `<own cgroup>/<cgroup-root>`, where `<own cgroup>` is this process's cgroup in that
//! controller (the NM may itself run in a delegated, non-root cgroup).

mod cgroupfs;
mod v1;
mod v2;

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;

use weft_common::Resource;

pub use self::v1::CgroupV1;
pub use self::v2::CgroupV2;
use crate::NmError;
use crate::config::{IsolationConfig, IsolationMode};
use crate::process::process_group_members;

/// Creates container cgroups and cleans up after them.
pub trait Isolation: Send + Sync {
    /// The mode in effect (never `Auto`).
    fn mode(&self) -> IsolationMode;
    /// The `<own cgroup>/<cgroup-root>` directories holding every container cgroup.
    fn root_dirs(&self) -> Vec<PathBuf>;
    /// Creates the cgroup `name` limited to `resource`.
    fn create(&self, name: &str, resource: Resource) -> Result<Box<dyn ContainerCgroup>, NmError>;
    /// Kills every process under the cgroup root and removes every container cgroup; with
    /// `remove_root` the root directories go too. Blocks; call it off the async runtime.
    fn remove_all(&self, remove_root: bool) -> Result<(), NmError>;
}

/// One container's cgroup.
pub trait ContainerCgroup: Send + Sync {
    /// Its directories (one per v1 controller, one on v2, none without isolation).
    fn dirs(&self) -> Vec<PathBuf>;
    /// `cgroup.procs` files the container's first process writes its pid into before exec.
    fn procs_files(&self) -> Result<Vec<CString>, NmError>;
    /// Live processes of the container whose first process is `leader`: everything in the
    /// cgroup (also processes that left the leader's process group, e.g. with setsid); without
    /// a cgroup, the leader's process group.
    fn pids(&self, leader: i32) -> Vec<i32>;
    /// Current memory use: the cgroup's charge, or without a cgroup the RSS summed over the
    /// leader's process group.
    fn memory_usage_bytes(&self, leader: i32) -> u64;
    /// Highest memory charge seen.
    fn peak_memory_bytes(&self) -> Option<u64>;
    /// How many processes the kernel OOM killer killed in this cgroup.
    fn oom_kills(&self) -> u64;
    /// Kills whatever is left and removes the directories. Blocks; call it off the runtime.
    fn remove(&self) -> Result<(), NmError>;
}

/// Sets up the configured isolation, refusing (never falling back) when cgroups are configured
/// but unusable. Leftover container cgroups of a previous NM with the same root are killed and
/// removed.
pub fn setup(config: &IsolationConfig) -> Result<Arc<dyn Isolation>, NmError> {
    let isolation: Arc<dyn Isolation> = match config.mode {
        IsolationMode::None => return Ok(Arc::new(NoIsolation)),
        IsolationMode::CgroupV1 => Arc::new(CgroupV1::setup(config)?),
        IsolationMode::CgroupV2 => Arc::new(CgroupV2::setup(config)?),
        IsolationMode::Auto => {
            if CgroupV2::is_available() {
                Arc::new(CgroupV2::setup(config)?)
            } else if CgroupV1::is_available() {
                Arc::new(CgroupV1::setup(config)?)
            } else {
                return Err(NmError::IsolationUnavailable {
                    mode: IsolationMode::Auto.to_string(),
                    reason: "found neither a cgroup2 mount with the memory controller nor cgroup v1 memory, cpu \
                             and pids controllers; set `isolation.mode: none` to run containers without \
                             isolation"
                        .into(),
                });
            }
        }
    };
    isolation.remove_all(false)?;
    Ok(isolation)
}

/// `isolation: none`: containers share the NM's cgroups; a container is its process group, and
/// memory is still enforced by the container monitor from process RSS.
pub struct NoIsolation;

impl Isolation for NoIsolation {
    fn mode(&self) -> IsolationMode {
        IsolationMode::None
    }

    fn root_dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn create(&self, _name: &str, _resource: Resource) -> Result<Box<dyn ContainerCgroup>, NmError> {
        Ok(Box::new(NoCgroup))
    }

    fn remove_all(&self, _remove_root: bool) -> Result<(), NmError> {
        Ok(())
    }
}

struct NoCgroup;

impl ContainerCgroup for NoCgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn procs_files(&self) -> Result<Vec<CString>, NmError> {
        Ok(Vec::new())
    }

    fn pids(&self, leader: i32) -> Vec<i32> {
        process_group_members(leader).iter().map(|p| p.pid).collect()
    }

    fn memory_usage_bytes(&self, leader: i32) -> u64 {
        process_group_members(leader).iter().map(|p| p.rss_bytes).sum()
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        None
    }

    fn oom_kills(&self) -> u64 {
        0
    }

    fn remove(&self) -> Result<(), NmError> {
        Ok(())
    }
}

/// Removes the directories created so far when creating a container cgroup fails half-way.
fn remove_dirs_best_effort(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(e) = cgroupfs::remove_tree(dir) {
            tracing::warn!(error = %e, "cannot remove cgroup after a failed setup");
        }
    }
}
