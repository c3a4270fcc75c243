//! cgroup v2: one unified hierarchy; the memory, cpu and pids controllers must be delegated to
//! this process's cgroup.

use std::ffi::CString;
use std::path::PathBuf;

use weft_common::Resource;

use super::cgroupfs::{self, cgroup_mounts, own_cgroup_dir, own_cgroup_path};
use super::{ContainerCgroup, Isolation, remove_dirs_best_effort};
use crate::NmError;
use crate::config::{IsolationConfig, IsolationMode};
use crate::process::is_alive;

const REQUIRED_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// cgroup v2's default `cpu.weight`; a container gets this much per vcore.
const CPU_WEIGHT_PER_VCORE: u64 = 100;
const CPU_MAX_PERIOD_US: u64 = 100_000;

pub struct CgroupV2 {
    root: PathBuf,
    cpu_hard_quota: bool,
    pids_limit: u64,
}

fn own_dir() -> Result<PathBuf, String> {
    let mount = cgroup_mounts().into_iter().find(|m| m.is_v2).ok_or("no cgroup2 file system is mounted")?;
    let own = own_cgroup_path(None).ok_or("/proc/self/cgroup lists no cgroup v2 path for this process")?;
    Ok(own_cgroup_dir(&mount, &own))
}

fn controllers(dir: &std::path::Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .map(|text| text.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Enables the required controllers for `dir`'s children (a no-op if already enabled).
fn delegate_controllers(dir: &std::path::Path) -> Result<(), String> {
    let enabled = controllers(dir, "cgroup.subtree_control");
    let missing: Vec<String> =
        REQUIRED_CONTROLLERS.iter().filter(|c| !enabled.iter().any(|e| e == *c)).map(|c| format!("+{c}")).collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::write(dir.join("cgroup.subtree_control"), missing.join(" ")).map_err(|e| {
        format!(
            "cannot enable {} in {}/cgroup.subtree_control: {e} (a cgroup that holds processes cannot delegate \
             controllers: run the NM in a leaf cgroup of a delegated subtree, e.g. systemd `Delegate=yes`)",
            missing.join(" "),
            dir.display()
        )
    })
}

impl CgroupV2 {
    /// True if a cgroup2 hierarchy offers the memory controller to this process's cgroup.
    pub fn is_available() -> bool {
        own_dir().is_ok_and(|dir| controllers(&dir, "cgroup.controllers").iter().any(|c| c == "memory"))
    }

    pub fn setup(config: &IsolationConfig) -> Result<Self, NmError> {
        let unusable =
            |reason: String| NmError::IsolationUnavailable { mode: IsolationMode::CgroupV2.to_string(), reason };
        let own = own_dir().map_err(unusable)?;
        let available = controllers(&own, "cgroup.controllers");
        let missing: Vec<&str> =
            REQUIRED_CONTROLLERS.into_iter().filter(|c| !available.iter().any(|a| a == c)).collect();
        if !missing.is_empty() {
            return Err(unusable(format!(
                "{}/cgroup.controllers lacks {} (available: {})",
                own.display(),
                missing.join(", "),
                if available.is_empty() { "none".to_owned() } else { available.join(" ") }
            )));
        }
        delegate_controllers(&own).map_err(unusable)?;
        let root = own.join(&config.cgroup_root);
        std::fs::create_dir_all(&root)
            .map_err(|e| unusable(format!("cannot create cgroup {}: {e}", root.display())))?;
        delegate_controllers(&root).map_err(unusable)?;
        Ok(Self { root, cpu_hard_quota: config.cpu_hard_quota, pids_limit: config.pids_limit })
    }

    fn configure(&self, dir: &std::path::Path, resource: Resource) -> Result<(), NmError> {
        cgroupfs::write_file(dir, "memory.max", &(resource.memory_mb * 1024 * 1024).to_string())?;
        // Absent when swap accounting is off, in which case there is nothing to disable.
        if dir.join("memory.swap.max").exists() {
            cgroupfs::write_file(dir, "memory.swap.max", "0")?;
        }
        let weight = (CPU_WEIGHT_PER_VCORE * u64::from(resource.vcores)).clamp(1, 10_000);
        cgroupfs::write_file(dir, "cpu.weight", &weight.to_string())?;
        if self.cpu_hard_quota {
            let quota = CPU_MAX_PERIOD_US * u64::from(resource.vcores.max(1));
            cgroupfs::write_file(dir, "cpu.max", &format!("{quota} {CPU_MAX_PERIOD_US}"))?;
        }
        cgroupfs::write_file(dir, "pids.max", &self.pids_limit.to_string())
    }
}

impl Isolation for CgroupV2 {
    fn mode(&self) -> IsolationMode {
        IsolationMode::CgroupV2
    }

    fn root_dirs(&self) -> Vec<PathBuf> {
        vec![self.root.clone()]
    }

    fn create(&self, name: &str, resource: Resource) -> Result<Box<dyn ContainerCgroup>, NmError> {
        let dir = self.root.join(name);
        std::fs::create_dir(&dir).map_err(NmError::cgroup(&dir))?;
        if let Err(e) = self.configure(&dir, resource) {
            remove_dirs_best_effort(std::slice::from_ref(&dir));
            return Err(e);
        }
        Ok(Box::new(ContainerCgroupV2 { dir }))
    }

    fn remove_all(&self, remove_root: bool) -> Result<(), NmError> {
        if remove_root {
            return cgroupfs::remove_tree(&self.root);
        }
        for leftover in cgroupfs::child_dirs(&self.root) {
            tracing::warn!(cgroup = %leftover.display(), "killing and removing a leftover container cgroup");
            cgroupfs::remove_tree(&leftover)?;
        }
        Ok(())
    }
}

struct ContainerCgroupV2 {
    dir: PathBuf,
}

impl ContainerCgroup for ContainerCgroupV2 {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn procs_files(&self) -> Result<Vec<CString>, NmError> {
        Ok(vec![cgroupfs::procs_file_cstring(&self.dir)?])
    }

    fn pids(&self, _leader: i32) -> Vec<i32> {
        let mut pids = cgroupfs::read_procs_recursive(&self.dir);
        pids.retain(|&pid| is_alive(pid));
        pids
    }

    fn memory_usage_bytes(&self, _leader: i32) -> u64 {
        cgroupfs::read_u64(&self.dir, "memory.current").unwrap_or(0)
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        // memory.peak exists since Linux 5.19.
        cgroupfs::read_u64(&self.dir, "memory.peak").or_else(|| cgroupfs::read_u64(&self.dir, "memory.current"))
    }

    fn oom_kills(&self) -> u64 {
        cgroupfs::read_keyed(&self.dir, "memory.events", "oom_kill").unwrap_or(0)
    }

    fn remove(&self) -> Result<(), NmError> {
        // cgroup.kill (Linux 5.14+) kills the whole subtree atomically, racing no fork.
        if self.dir.join("cgroup.kill").exists()
            && let Err(e) = cgroupfs::write_file(&self.dir, "cgroup.kill", "1")
        {
            tracing::debug!(error = %e, "cgroup.kill failed; killing pid by pid");
        }
        cgroupfs::remove_tree(&self.dir)
    }
}
