//! The ResourceManager's settings that reach the core, with the RM's defaults. `rm.yaml` (the
//! server's `RmConfig`) and a simulator scenario's `rm:` section both start from
//! [`CoreSettings::default`] and override only what they name, so a what-if run cannot drift
//! from what the RM does by default.

use weft_common::Resource;

/// How often whoever drives the core sends [`crate::Event::Tick`] (expiry checks, long-poll
/// deadlines, the preemption monitor), by default: rm.yaml's `tick-interval-ms`, the simulator's
/// `rm.tick-interval`. The core itself only sees the ticks.
pub const DEFAULT_TICK_INTERVAL_MS: u64 = 100;

/// Tunable settings of the core; [`crate::CoreConfig`] adds who this RM incarnation is and the
/// queue configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreSettings {
    /// Requests are rounded up to multiples of this (YARN: 1024 MB / 1 vcore).
    pub min_allocation: Resource,
    /// Requests above this are rejected.
    pub max_allocation: Resource,
    /// Global maximum of AM attempts (per-app values above it are capped).
    pub max_app_attempts: u32,
    pub nm_heartbeat_interval_ms: u64,
    /// A node silent for longer is LOST (YARN: 600000).
    pub nm_expiry_ms: u64,
    /// An AM silent for longer fails its attempt (YARN: 600000).
    pub am_expiry_ms: u64,
    /// An allocated container never reported by its NM is reclaimed after this long.
    pub container_allocation_expiry_ms: u64,
    /// Containers still alive this long after their app finished are stopped.
    pub finished_app_container_grace_ms: u64,
    /// Completed applications kept (in memory and in the store).
    pub max_completed_apps: usize,
    /// A gang holds its reservation at most this long before another waiting gang may take it.
    pub gang_reservation_timeout_ms: u64,
    /// A host ask may use only its host this long after it appeared, then its host's rack too
    /// (delay scheduling; time-based, as Weft schedules per event rather than per heartbeat).
    pub node_locality_delay_ms: u64,
    /// A rack ask (or a host ask already relaxed to its rack) may use only that rack this much
    /// longer before it may go anywhere.
    pub rack_locality_delay_ms: u64,
}

impl Default for CoreSettings {
    /// The RM's defaults (`config/rm.yaml` documents each).
    fn default() -> Self {
        Self {
            min_allocation: Resource::new(128, 1),
            max_allocation: Resource::new(8192, 4),
            max_app_attempts: 2,
            nm_heartbeat_interval_ms: 1000,
            nm_expiry_ms: 30_000,
            am_expiry_ms: 60_000,
            container_allocation_expiry_ms: 600_000,
            finished_app_container_grace_ms: 10_000,
            max_completed_apps: 1000,
            gang_reservation_timeout_ms: 300_000,
            node_locality_delay_ms: 3_000,
            rack_locality_delay_ms: 3_000,
        }
    }
}
