//! NodeManager configuration (`nm.yaml`), loaded with `WEFT_NM__…` environment overrides.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use weft_common::Resource;
use weft_common::config::{ConfigError, load_yaml};
use weft_common::protocol::DEFAULT_RACK;

use crate::NmError;
use crate::output::MIN_LOG_MAX_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NmConfig {
    /// `http://host:port` of every RM, tried in order; the NM fails over to the next one when a
    /// call fails.
    pub rm_addresses: Vec<String>,
    /// Listen address of the container API; port 0 picks an ephemeral port.
    pub bind: String,
    /// Host name advertised to the RM and to containers; the node id is `<hostname>:<port>`.
    pub hostname: String,
    /// Network location sent to the RM at registration (`/rack1`, `/dc1/rack7`); asks naming
    /// this rack prefer this node. Must start with `/`.
    pub rack: String,
    /// What this node offers to the scheduler.
    pub resources: NodeResources,
    /// Parent of every container's work dir (`<work-dir>/<app>/<container>`).
    pub work_dir: PathBuf,
    /// Parent of every container's log dir (`<log-dir>/<app>/<container>`).
    pub log_dir: PathBuf,
    pub isolation: IsolationConfig,
    /// Time between SIGTERM and SIGKILL when stopping a container.
    pub kill_grace_ms: u64,
    /// How often each container's memory use is sampled.
    pub monitor_interval_ms: u64,
    /// User the NM runs containers as (containers run as the NM's own user for now).
    pub user: String,
    /// Variables copied from the NM's environment into every container's (clean) environment.
    pub env_whitelist: Vec<String>,
    pub containers: ContainersConfig,
    pub applications: ApplicationsConfig,
}

/// Completed containers and container output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ContainersConfig {
    /// How long a completed container stays known (its status, a refused duplicate start) after
    /// the RM recorded its completion; YARN's `duration-to-track-stopped-containers`. Never
    /// shorter than its start token's validity.
    pub retain_completed_ms: u64,
    /// Cap on each container's `stdout` and `stderr` file: the head is kept, then one line says
    /// the rest was discarded.
    pub log_max_bytes: u64,
}

/// What happens to a finished application's directories once the RM names it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ApplicationsConfig {
    /// Delay before its work dirs (`<work-dir>/<app>`) are deleted; 0 deletes at once. Raise it
    /// to look at a failed application's files (YARN's `delete.debug-delay-sec`).
    pub delete_debug_delay_ms: u64,
    /// How long its logs (`<log-dir>/<app>`) are kept (YARN's `log.retain-seconds`).
    pub log_retain_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NodeResources {
    pub memory_mb: u64,
    pub vcores: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct IsolationConfig {
    pub mode: IsolationMode,
    /// Name of the cgroup holding all containers, relative to this process's own cgroup in each
    /// controller. Must be unique per NM sharing a cgroup: leftovers under it are killed at start.
    pub cgroup_root: String,
    /// Caps CPU time at `vcores` CPUs (CFS quota); otherwise vcores only weight CPU sharing.
    pub cpu_hard_quota: bool,
    /// Maximum number of processes/threads per container.
    pub pids_limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// cgroup v2 if its memory controller is available, else cgroup v1, else refuse to start.
    Auto,
    CgroupV1,
    CgroupV2,
    /// No cgroups: memory is still enforced by sampling process RSS, nothing else is.
    None,
}

impl IsolationMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            IsolationMode::Auto => "auto",
            IsolationMode::CgroupV1 => "cgroup-v1",
            IsolationMode::CgroupV2 => "cgroup-v2",
            IsolationMode::None => "none",
        }
    }
}

impl std::fmt::Display for IsolationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for NmConfig {
    fn default() -> Self {
        Self {
            rm_addresses: vec!["http://127.0.0.1:8088".into()],
            bind: "127.0.0.1:8042".into(),
            hostname: "127.0.0.1".into(),
            rack: DEFAULT_RACK.into(),
            resources: NodeResources::default(),
            work_dir: PathBuf::from("./weft-data/nm/work"),
            log_dir: PathBuf::from("./weft-data/nm/logs"),
            isolation: IsolationConfig::default(),
            kill_grace_ms: 2000,
            monitor_interval_ms: 500,
            user: current_user_name(),
            env_whitelist: ["PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME"].map(String::from).to_vec(),
            containers: ContainersConfig::default(),
            applications: ApplicationsConfig::default(),
        }
    }
}

impl Default for ContainersConfig {
    fn default() -> Self {
        Self { retain_completed_ms: 600_000, log_max_bytes: 64 * 1024 * 1024 }
    }
}

impl Default for ApplicationsConfig {
    fn default() -> Self {
        Self { delete_debug_delay_ms: 0, log_retain_ms: 3 * 3600 * 1000 }
    }
}

impl Default for NodeResources {
    fn default() -> Self {
        Self { memory_mb: 8192, vcores: 8 }
    }
}

impl Default for IsolationConfig {
    fn default() -> Self {
        Self { mode: IsolationMode::Auto, cgroup_root: "weft".into(), cpu_hard_quota: false, pids_limit: 4096 }
    }
}

impl NodeResources {
    pub fn total(&self) -> Resource {
        Resource::new(self.memory_mb, self.vcores)
    }
}

pub(crate) fn current_user_name() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

impl NmConfig {
    /// Reads `path`, applies `WEFT_NM__…` overrides and validates the result.
    pub fn load(path: &Path) -> Result<Self, NmError> {
        let config: NmConfig = load_yaml(path, "WEFT_NM")?;
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    /// Checks what serde cannot; `source_name` names the config in errors.
    pub fn validate(&self, source_name: &str) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            field: field.to_owned(),
            message,
        };
        if self.rm_addresses.is_empty() {
            return Err(invalid("rm-addresses", "list at least one RM address (http://host:port)".into()));
        }
        if let Some(bad) = self.rm_addresses.iter().find(|a| !a.starts_with("http://") && !a.starts_with("https://")) {
            return Err(invalid("rm-addresses", format!("{bad:?} is not an http:// or https:// URL")));
        }
        if self.hostname.is_empty() || self.hostname.contains([':', '/', ' ']) {
            return Err(invalid("hostname", format!("{:?} is not a host name", self.hostname)));
        }
        // Asks recognise rack names by their leading `/`, so a rack without one could never be asked for.
        if !self.rack.starts_with('/') || self.rack.len() < 2 || self.rack.contains(char::is_whitespace) {
            return Err(invalid("rack", format!("{:?} is not a rack name like /rack1", self.rack)));
        }
        if self.resources.memory_mb == 0 || self.resources.vcores == 0 {
            return Err(invalid("resources", "memory-mb and vcores must both be positive".into()));
        }
        if self.monitor_interval_ms == 0 {
            return Err(invalid("monitor-interval-ms", "must be positive".into()));
        }
        let root = Path::new(&self.isolation.cgroup_root);
        if self.isolation.cgroup_root.is_empty() || !root.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(invalid(
                "isolation.cgroup-root",
                format!("{:?} must be a relative cgroup name without `..`", self.isolation.cgroup_root),
            ));
        }
        if self.isolation.pids_limit == 0 {
            return Err(invalid("isolation.pids-limit", "must be positive".into()));
        }
        if self.containers.log_max_bytes < MIN_LOG_MAX_BYTES {
            return Err(invalid(
                "containers.log-max-bytes",
                format!("must be at least {MIN_LOG_MAX_BYTES}, to hold the line that says the log was truncated"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_common::config::parse_yaml;

    #[test]
    fn parses_every_field() {
        let yaml = r#"
rm-addresses: ["http://rm1:8088", "http://rm2:8088"]
bind: 0.0.0.0:0
hostname: node7.example.com
rack: /dc1/rack7
resources:
  memory-mb: 4096
  vcores: 4
work-dir: /var/lib/weft/nm/work
log-dir: /var/log/weft/nm
isolation:
  mode: cgroup-v1
  cgroup-root: weft/nm1
  cpu-hard-quota: true
  pids-limit: 512
kill-grace-ms: 500
monitor-interval-ms: 250
user: yarn
env-whitelist: [PATH, LANG]
containers:
  retain-completed-ms: 60000
  log-max-bytes: 1048576
applications:
  delete-debug-delay-ms: 600000
  log-retain-ms: 86400000
"#;
        let config: NmConfig = parse_yaml(yaml, "nm.yaml").unwrap();
        assert_eq!(
            config,
            NmConfig {
                rm_addresses: vec!["http://rm1:8088".into(), "http://rm2:8088".into()],
                bind: "0.0.0.0:0".into(),
                hostname: "node7.example.com".into(),
                rack: "/dc1/rack7".into(),
                resources: NodeResources { memory_mb: 4096, vcores: 4 },
                work_dir: "/var/lib/weft/nm/work".into(),
                log_dir: "/var/log/weft/nm".into(),
                isolation: IsolationConfig {
                    mode: IsolationMode::CgroupV1,
                    cgroup_root: "weft/nm1".into(),
                    cpu_hard_quota: true,
                    pids_limit: 512,
                },
                kill_grace_ms: 500,
                monitor_interval_ms: 250,
                user: "yarn".into(),
                env_whitelist: vec!["PATH".into(), "LANG".into()],
                containers: ContainersConfig { retain_completed_ms: 60_000, log_max_bytes: 1_048_576 },
                applications: ApplicationsConfig { delete_debug_delay_ms: 600_000, log_retain_ms: 86_400_000 },
            }
        );
        config.validate("nm.yaml").unwrap();
    }

    #[test]
    fn defaults_and_modes() {
        let config: NmConfig = parse_yaml("isolation:\n  mode: none\n", "nm.yaml").unwrap();
        assert_eq!(config.isolation.mode, IsolationMode::None);
        assert_eq!(config.bind, "127.0.0.1:8042");
        assert_eq!(config.resources.total(), Resource::new(8192, 8));
        assert_eq!(config.kill_grace_ms, 2000);
        assert!(!config.user.is_empty());
        for mode in [IsolationMode::Auto, IsolationMode::CgroupV1, IsolationMode::CgroupV2, IsolationMode::None] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }

    #[test]
    fn load_validates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nm.yaml");
        std::fs::write(&path, "hostname: n1\nresources:\n  vcores: 2\n").unwrap();
        let config = NmConfig::load(&path).unwrap();
        assert_eq!((config.hostname.as_str(), config.resources.memory_mb, config.resources.vcores), ("n1", 8192, 2));
        std::fs::write(&path, "resources:\n  vcores: 0\n").unwrap();
        let err = NmConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("nm.yaml") && err.contains("resources"), "{err}");
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let err = parse_yaml::<NmConfig>("isolation:\n  cgroup-rot: x\n", "nm.yaml").unwrap_err().to_string();
        assert!(err.contains("cgroup-rot"), "{err}");
        let config = NmConfig {
            isolation: IsolationConfig { cgroup_root: "../escape".into(), ..Default::default() },
            ..Default::default()
        };
        let err = config.validate("nm.yaml").unwrap_err().to_string();
        assert!(err.contains("isolation.cgroup-root"), "{err}");
        let config = NmConfig { rm_addresses: vec![], ..Default::default() };
        assert!(config.validate("nm.yaml").unwrap_err().to_string().contains("rm-addresses"));
        let config = NmConfig {
            containers: ContainersConfig { log_max_bytes: 100, ..Default::default() },
            ..Default::default()
        };
        assert!(config.validate("nm.yaml").unwrap_err().to_string().contains("containers.log-max-bytes"));
    }

    #[test]
    fn retention_and_log_settings_take_env_overrides() {
        let defaults = NmConfig::default();
        assert_eq!(defaults.containers, ContainersConfig { retain_completed_ms: 600_000, log_max_bytes: 67_108_864 });
        assert_eq!(defaults.applications, ApplicationsConfig { delete_debug_delay_ms: 0, log_retain_ms: 10_800_000 });
        let vars = [
            ("WEFT_NM__CONTAINERS__RETAIN_COMPLETED_MS", "1000"),
            ("WEFT_NM__CONTAINERS__LOG_MAX_BYTES", "4096"),
            ("WEFT_NM__APPLICATIONS__DELETE_DEBUG_DELAY_MS", "600000"),
            ("WEFT_NM__APPLICATIONS__LOG_RETAIN_MS", "0"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = weft_common::config::apply_env_overrides(defaults, "WEFT_NM", vars).unwrap();
        assert_eq!(config.containers, ContainersConfig { retain_completed_ms: 1000, log_max_bytes: 4096 });
        assert_eq!(config.applications, ApplicationsConfig { delete_debug_delay_ms: 600_000, log_retain_ms: 0 });
    }

    #[test]
    fn rack_defaults_to_the_default_rack_and_must_look_like_one() {
        let config: NmConfig = parse_yaml("hostname: n1\n", "nm.yaml").unwrap();
        assert_eq!(config.rack, "/default-rack");
        config.validate("nm.yaml").unwrap();
        for bad in ["rack1", "/", "/rack 1", ""] {
            let config = NmConfig { rack: bad.into(), ..Default::default() };
            let err = config.validate("nm.yaml").unwrap_err().to_string();
            assert!(err.contains("rack"), "{bad:?}: {err}");
        }
        let config: NmConfig = parse_yaml("rack: /rack2\n", "nm.yaml").unwrap();
        assert_eq!(config.rack, "/rack2");
    }
}
