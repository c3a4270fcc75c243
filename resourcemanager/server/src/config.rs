//! ResourceManager configuration (`config/rm.yaml`). Every field has a default in code; env
//! overrides use the `WEFT_RM__` prefix (see `weft_common::config`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weft_common::Resource;

use weft_rm_core::queues::{QueueConfigError, QueuesConfig, ResourceAmount, SchedulerMode};
use weft_rm_core::records::MasterKeys;
use weft_rm_core::{CoreConfig, CoreSettings, DEFAULT_TICK_INTERVAL_MS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RmConfig {
    /// Address of the REST API, NM and AM protocols. Port 0 picks a free port.
    pub bind: String,
    /// Host name put into the RM address handed to AMs.
    pub hostname: String,
    /// Directory for the embedded state store.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    /// Active/standby high availability (off: this RM is the only one and active at once).
    pub ha: HaConfig,
    pub scheduler: SchedulerConfig,
    pub nodemanagers: NodeManagersConfig,
    pub applications: ApplicationsConfig,
    /// How often timers (expiry checks, long-poll deadlines) run.
    pub tick_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", rename_all_fields = "kebab-case", tag = "kind")]
pub enum StoreConfig {
    /// SQLite file (default `<data-dir>/rm-state.db`).
    Sqlite {
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// PostgreSQL: what an HA pair shares. Put the password in the URL through the
    /// `WEFT_RM__STORE__URL` environment variable rather than in the file.
    Postgres {
        /// `postgres://user:password@host:5432/database`.
        url: String,
        #[serde(default = "default_postgres_connections")]
        max_connections: u32,
    },
    /// Nothing survives a restart; for tests and demos.
    Memory,
}

fn default_postgres_connections() -> u32 {
    4
}

/// Leader election through the state store: the RM holding the store's lease is active, the
/// others are standby. Failover takes at most `lease-ms` plus `renew-interval-ms` plus the
/// recovery itself (loading the store and waiting for NodeManagers, at most two heartbeats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HaConfig {
    pub enabled: bool,
    /// Every RM's web address (`http://host:port`), handed to AMs so they can fail over. This
    /// RM's own address is added if missing.
    pub rm_addresses: Vec<String>,
    /// How long a lease lasts without renewal: a silent active is replaced after this long.
    pub lease_ms: u64,
    /// How often the active renews its lease and a standby tries to take it.
    pub renew_interval_ms: u64,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self { enabled: false, rm_addresses: Vec::new(), lease_ms: 1500, renew_interval_ms: 250 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SchedulerConfig {
    /// Queue file selecting the scheduler (capacity, fair or fifo) and describing the queue
    /// tree; without one, FIFO over a single `root.default` queue.
    pub queues_file: Option<PathBuf>,
    /// How often the queues file is checked for changes (reloaded when it changed).
    pub queues_reload_interval_ms: u64,
    /// Requests are rounded up to multiples of this (YARN: 1024 MB / 1 vcore; Weft: 128 MB).
    pub minimum_allocation: ResourceAmount,
    /// Requests above this are rejected.
    pub maximum_allocation: ResourceAmount,
    /// How long the oldest waiting gang ask may hold capacity back before another gang's turn.
    pub gang_reservation_timeout_ms: u64,
    /// A host ask may use only its host this long, then its host's rack too. YARN counts missed
    /// node heartbeats (`node-locality-delay`, 40); Weft schedules per event, so it counts time.
    pub node_locality_delay_ms: u64,
    /// A rack ask (or a host ask relaxed to its rack) may use only that rack this much longer,
    /// then any node (YARN: `rack-locality-additional-delay`, in missed heartbeats).
    pub rack_locality_delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NodeManagersConfig {
    pub heartbeat_interval_ms: u64,
    /// A node silent for longer is LOST (YARN: 600000).
    pub expiry_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ApplicationsConfig {
    /// Global cap on AM attempts (YARN `yarn.resourcemanager.am.max-attempts`).
    pub max_attempts: u32,
    /// An AM silent for longer fails its attempt (YARN: 600000).
    pub am_expiry_ms: u64,
    /// Allocated containers never started are reclaimed after this long (YARN: 600000).
    pub container_allocation_expiry_ms: u64,
    /// Grace for an AM container to exit after it unregistered.
    pub finished_app_container_grace_ms: u64,
    pub max_completed_apps: usize,
}

// The sections' defaults for what reaches the core come from `CoreSettings::default()`, which the
// simulator starts from too; `RmConfig::core_settings` maps them back.

impl Default for RmConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8088".into(),
            hostname: "127.0.0.1".into(),
            data_dir: PathBuf::from("weft-data/rm"),
            store: StoreConfig::Sqlite { path: None },
            ha: HaConfig::default(),
            scheduler: SchedulerConfig::default(),
            nodemanagers: NodeManagersConfig::default(),
            applications: ApplicationsConfig::default(),
            tick_interval_ms: DEFAULT_TICK_INTERVAL_MS,
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let core = CoreSettings::default();
        Self {
            queues_file: None,
            queues_reload_interval_ms: 5000,
            minimum_allocation: core.min_allocation.into(),
            maximum_allocation: core.max_allocation.into(),
            gang_reservation_timeout_ms: core.gang_reservation_timeout_ms,
            node_locality_delay_ms: core.node_locality_delay_ms,
            rack_locality_delay_ms: core.rack_locality_delay_ms,
        }
    }
}

impl Default for NodeManagersConfig {
    fn default() -> Self {
        let core = CoreSettings::default();
        Self { heartbeat_interval_ms: core.nm_heartbeat_interval_ms, expiry_ms: core.nm_expiry_ms }
    }
}

impl Default for ApplicationsConfig {
    fn default() -> Self {
        let core = CoreSettings::default();
        Self {
            max_attempts: core.max_app_attempts,
            am_expiry_ms: core.am_expiry_ms,
            container_allocation_expiry_ms: core.container_allocation_expiry_ms,
            finished_app_container_grace_ms: core.finished_app_container_grace_ms,
            max_completed_apps: core.max_completed_apps,
        }
    }
}

impl RmConfig {
    /// Cross-field checks that serde cannot express.
    pub fn validate(&self, source: &str) -> Result<(), weft_common::config::ConfigError> {
        let invalid = |field: &str, message: String| weft_common::config::ConfigError::Invalid {
            source_name: source.to_owned(),
            field: field.to_owned(),
            message,
        };
        let min = Resource::from(self.scheduler.minimum_allocation);
        let max = Resource::from(self.scheduler.maximum_allocation);
        if min.memory_mb == 0 || min.vcores == 0 {
            return Err(invalid("scheduler.minimum-allocation", format!("must be positive, got {min}")));
        }
        if !max.fits(&min) {
            return Err(invalid(
                "scheduler.maximum-allocation",
                format!("{max} is below the minimum allocation {min}"),
            ));
        }
        if self.applications.max_attempts == 0 {
            return Err(invalid("applications.max-attempts", "must be at least 1".into()));
        }
        if self.nodemanagers.expiry_ms <= self.nodemanagers.heartbeat_interval_ms {
            return Err(invalid(
                "nodemanagers.expiry-ms",
                format!("must exceed heartbeat-interval-ms ({})", self.nodemanagers.heartbeat_interval_ms),
            ));
        }
        if self.ha.enabled {
            if self.store == StoreConfig::Memory {
                return Err(invalid(
                    "store.kind",
                    "HA needs a store the RMs share (postgres, or sqlite on one host)".into(),
                ));
            }
            if self.ha.renew_interval_ms == 0 || self.ha.lease_ms < 2 * self.ha.renew_interval_ms {
                return Err(invalid(
                    "ha.lease-ms",
                    format!(
                        "must be at least twice ha.renew-interval-ms ({}), and the interval positive",
                        self.ha.renew_interval_ms
                    ),
                ));
            }
        }
        if let Some(bad) = self.ha.rm_addresses.iter().find(|a| !a.starts_with("http://")) {
            return Err(invalid("ha.rm-addresses", format!("{bad:?} is not an http:// URL")));
        }
        if let StoreConfig::Postgres { url, max_connections } = &self.store {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return Err(invalid("store.url", "must be a postgres:// URL".into()));
            }
            if *max_connections == 0 {
                return Err(invalid("store.max-connections", "must be at least 1".into()));
            }
        }
        if self.tick_interval_ms == 0 {
            return Err(invalid("tick-interval-ms", "must be positive".into()));
        }
        Ok(())
    }

    /// What the core takes from this file.
    pub fn core_settings(&self) -> CoreSettings {
        let (scheduler, nodemanagers, applications) = (&self.scheduler, &self.nodemanagers, &self.applications);
        CoreSettings {
            min_allocation: scheduler.minimum_allocation.into(),
            max_allocation: scheduler.maximum_allocation.into(),
            max_app_attempts: applications.max_attempts,
            nm_heartbeat_interval_ms: nodemanagers.heartbeat_interval_ms,
            nm_expiry_ms: nodemanagers.expiry_ms,
            am_expiry_ms: applications.am_expiry_ms,
            container_allocation_expiry_ms: applications.container_allocation_expiry_ms,
            finished_app_container_grace_ms: applications.finished_app_container_grace_ms,
            max_completed_apps: applications.max_completed_apps,
            gang_reservation_timeout_ms: scheduler.gang_reservation_timeout_ms,
            node_locality_delay_ms: scheduler.node_locality_delay_ms,
            rack_locality_delay_ms: scheduler.rack_locality_delay_ms,
        }
    }

    /// The core's configuration for an incarnation that started at `cluster_ts` with fencing
    /// epoch `epoch`, signing with `keys`, whose AMs reach the RMs at `rm_addresses`.
    pub fn core_config(
        &self,
        cluster_ts: u64,
        epoch: u32,
        keys: &MasterKeys,
        rm_addresses: Vec<String>,
    ) -> Result<CoreConfig, QueueConfigError> {
        Ok(CoreConfig {
            cluster_ts,
            epoch,
            container_token_key: keys.container_token.clone(),
            am_token_key: keys.am_token.clone(),
            rm_addresses,
            settings: self.core_settings(),
            queues: self.load_queues()?,
        })
    }

    /// The queue configuration in force: the queues file, or FIFO over one default queue.
    pub fn load_queues(&self) -> Result<QueuesConfig, QueueConfigError> {
        match &self.scheduler.queues_file {
            Some(path) => QueuesConfig::load(path),
            None => Ok(QueuesConfig { scheduler: SchedulerMode::Fifo, ..QueuesConfig::default() }),
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Self, weft_common::config::ConfigError> {
        let cfg: Self = weft_common::config::load_yaml(path, "WEFT_RM")?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_reaches_the_core_defaults_to_the_cores_own_defaults() {
        let rm = RmConfig::default();
        assert_eq!(rm.core_settings(), CoreSettings::default());
        assert_eq!(rm.tick_interval_ms, DEFAULT_TICK_INTERVAL_MS);
    }

    #[test]
    fn every_core_setting_comes_from_its_own_key() {
        let yaml = "\
scheduler:
  minimum-allocation: {memory-mb: 256, vcores: 2}
  maximum-allocation: {memory-mb: 16384, vcores: 8}
  gang-reservation-timeout-ms: 11
  node-locality-delay-ms: 12
  rack-locality-delay-ms: 13
nodemanagers: {heartbeat-interval-ms: 14, expiry-ms: 15}
applications:
  max-attempts: 16
  am-expiry-ms: 17
  container-allocation-expiry-ms: 18
  finished-app-container-grace-ms: 19
  max-completed-apps: 20
";
        let rm: RmConfig = weft_common::config::parse_yaml(yaml, "rm.yaml").unwrap();
        let expected = CoreSettings {
            min_allocation: Resource::new(256, 2),
            max_allocation: Resource::new(16384, 8),
            max_app_attempts: 16,
            nm_heartbeat_interval_ms: 14,
            nm_expiry_ms: 15,
            am_expiry_ms: 17,
            container_allocation_expiry_ms: 18,
            finished_app_container_grace_ms: 19,
            max_completed_apps: 20,
            gang_reservation_timeout_ms: 11,
            node_locality_delay_ms: 12,
            rack_locality_delay_ms: 13,
        };
        assert_eq!(rm.core_settings(), expected);
    }
}
