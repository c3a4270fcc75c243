//! cgroup v1: one hierarchy per controller (memory, cpu, pids), written through cgroupfs.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use weft_common::Resource;

use super::cgroupfs::{self, cgroup_mounts, own_cgroup_dir, own_cgroup_path};
use super::{ContainerCgroup, Isolation, remove_dirs_best_effort};
use crate::NmError;
use crate::config::{IsolationConfig, IsolationMode};
use crate::process::is_alive;

const MEMORY: &str = "memory";
const CPU: &str = "cpu";
const PIDS: &str = "pids";
const CONTROLLERS: [&str; 3] = [MEMORY, CPU, PIDS];
/// The kernel's default weight of one cgroup; a container gets this much per vcore.
const CPU_SHARES_PER_VCORE: u64 = 1024;
const CFS_PERIOD_US: u64 = 100_000;

pub struct CgroupV1 {
    /// `<own cgroup>/<cgroup-root>` per controller, in [`CONTROLLERS`] order.
    roots: [PathBuf; 3],
    cpu_hard_quota: bool,
    pids_limit: u64,
}

/// This process's own cgroup directory in the hierarchy of `controller`.
fn own_controller_dir(controller: &str) -> Result<PathBuf, String> {
    let mount = cgroup_mounts()
        .into_iter()
        .find(|m| !m.is_v2 && m.options.iter().any(|o| o == controller))
        .ok_or_else(|| format!("the `{controller}` controller is not mounted"))?;
    let own = own_cgroup_path(Some(controller))
        .ok_or_else(|| format!("/proc/self/cgroup lists no `{controller}` cgroup for this process"))?;
    Ok(own_cgroup_dir(&mount, &own))
}

impl CgroupV1 {
    /// True if the memory, cpu and pids controllers are mounted as v1 hierarchies.
    pub fn is_available() -> bool {
        CONTROLLERS.iter().all(|c| own_controller_dir(c).is_ok())
    }

    /// Creates `<own cgroup>/<cgroup-root>` in every controller, proving they are writable.
    pub fn setup(config: &IsolationConfig) -> Result<Self, NmError> {
        let unusable =
            |reason: String| NmError::IsolationUnavailable { mode: IsolationMode::CgroupV1.to_string(), reason };
        let mut roots = Vec::with_capacity(CONTROLLERS.len());
        for controller in CONTROLLERS {
            let root = own_controller_dir(controller).map_err(unusable)?.join(&config.cgroup_root);
            std::fs::create_dir_all(&root)
                .map_err(|e| unusable(format!("cannot create cgroup {}: {e}", root.display())))?;
            if !root.join("cgroup.procs").exists() {
                return Err(unusable(format!("{} is not a cgroup directory", root.display())));
            }
            roots.push(root);
        }
        let roots: [PathBuf; 3] = roots.try_into().map_err(|_| unusable("controller list mismatch".into()))?;
        Ok(Self { roots, cpu_hard_quota: config.cpu_hard_quota, pids_limit: config.pids_limit })
    }

    fn configure(&self, dirs: &[PathBuf; 3], resource: Resource) -> Result<(), NmError> {
        let [memory, cpu, pids] = dirs;
        cgroupfs::write_file(memory, "memory.limit_in_bytes", &(resource.memory_mb * 1024 * 1024).to_string())?;
        // Keep the container's anonymous memory out of swap so the limit means physical memory.
        if let Err(e) = cgroupfs::write_file(memory, "memory.swappiness", "0") {
            tracing::debug!(error = %e, "cannot disable swapping for the container");
        }
        let shares = (CPU_SHARES_PER_VCORE * u64::from(resource.vcores)).max(2);
        cgroupfs::write_file(cpu, "cpu.shares", &shares.to_string())?;
        if self.cpu_hard_quota {
            cgroupfs::write_file(cpu, "cpu.cfs_period_us", &CFS_PERIOD_US.to_string())?;
            let quota = CFS_PERIOD_US * u64::from(resource.vcores.max(1));
            cgroupfs::write_file(cpu, "cpu.cfs_quota_us", &quota.to_string())?;
        }
        cgroupfs::write_file(pids, "pids.max", &self.pids_limit.to_string())
    }
}

impl Isolation for CgroupV1 {
    fn mode(&self) -> IsolationMode {
        IsolationMode::CgroupV1
    }

    fn root_dirs(&self) -> Vec<PathBuf> {
        self.roots.to_vec()
    }

    fn create(&self, name: &str, resource: Resource) -> Result<Box<dyn ContainerCgroup>, NmError> {
        let dirs = self.roots.clone().map(|root| root.join(name));
        for (created, dir) in dirs.iter().enumerate() {
            if let Err(e) = std::fs::create_dir(dir) {
                remove_dirs_best_effort(&dirs[..created]);
                return Err(NmError::Cgroup { path: dir.clone(), source: e });
            }
        }
        if let Err(e) = self.configure(&dirs, resource) {
            remove_dirs_best_effort(&dirs);
            return Err(e);
        }
        Ok(Box::new(ContainerCgroupV1 { dirs }))
    }

    fn remove_all(&self, remove_root: bool) -> Result<(), NmError> {
        for root in &self.roots {
            if remove_root {
                cgroupfs::remove_tree(root)?;
            } else {
                for leftover in cgroupfs::child_dirs(root) {
                    tracing::warn!(cgroup = %leftover.display(), "killing and removing a leftover container cgroup");
                    cgroupfs::remove_tree(&leftover)?;
                }
            }
        }
        Ok(())
    }
}

struct ContainerCgroupV1 {
    /// memory, cpu, pids.
    dirs: [PathBuf; 3],
}

impl ContainerCgroupV1 {
    fn memory(&self) -> &Path {
        &self.dirs[0]
    }
}

impl ContainerCgroup for ContainerCgroupV1 {
    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.to_vec()
    }

    fn procs_files(&self) -> Result<Vec<CString>, NmError> {
        self.dirs.iter().map(|dir| cgroupfs::procs_file_cstring(dir)).collect()
    }

    fn pids(&self, _leader: i32) -> Vec<i32> {
        let mut pids: Vec<i32> = self.dirs.iter().flat_map(|dir| cgroupfs::read_procs_recursive(dir)).collect();
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|&pid| is_alive(pid));
        pids
    }

    fn memory_usage_bytes(&self, _leader: i32) -> u64 {
        cgroupfs::read_u64(self.memory(), "memory.usage_in_bytes").unwrap_or(0)
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        cgroupfs::read_u64(self.memory(), "memory.max_usage_in_bytes")
    }

    fn oom_kills(&self) -> u64 {
        cgroupfs::read_keyed(self.memory(), "memory.oom_control", "oom_kill").unwrap_or(0)
    }

    fn remove(&self) -> Result<(), NmError> {
        let mut first_error = None;
        for dir in &self.dirs {
            if let Err(e) = cgroupfs::remove_tree(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
