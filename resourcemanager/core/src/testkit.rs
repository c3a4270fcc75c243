//! For tests of the core and of the crates around it (feature `testkit`): fixed, fast-expiring
//! settings.

use weft_common::Resource;
use weft_common::token::MasterKey;

use crate::queues::{QueuesConfig, SchedulerMode};
use crate::{CoreConfig, CoreSettings};

impl CoreConfig {
    /// Small, fast-expiring settings with fixed keys for tests: FIFO over `root.default`.
    pub fn for_tests() -> Self {
        CoreConfig {
            cluster_ts: 1_000,
            epoch: 1,
            container_token_key: MasterKey { key_id: 1, secret_hex: "00".repeat(32) },
            am_token_key: MasterKey { key_id: 2, secret_hex: "11".repeat(32) },
            rm_addresses: vec!["http://127.0.0.1:8088".into()],
            settings: CoreSettings {
                max_allocation: Resource::new(4096, 4),
                nm_expiry_ms: 10_000,
                am_expiry_ms: 20_000,
                container_allocation_expiry_ms: 60_000,
                finished_app_container_grace_ms: 5_000,
                max_completed_apps: 100,
                gang_reservation_timeout_ms: 60_000,
                ..CoreSettings::default()
            },
            queues: QueuesConfig { scheduler: SchedulerMode::Fifo, ..QueuesConfig::default() },
        }
    }
}
