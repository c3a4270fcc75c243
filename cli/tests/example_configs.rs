//! The example configs in `config/` load with the real loaders and equal the defaults in code,
//! so the documented defaults cannot drift.

use std::path::PathBuf;

use weft_nodemanager::config::NmConfig;
use weft_rm_server::RmConfig;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config").join(name)
}

#[test]
fn rm_example_is_the_defaults() {
    assert_eq!(RmConfig::load(&example("rm.yaml")).unwrap(), RmConfig::default());
}

#[test]
fn nm_example_is_the_defaults() {
    let loaded = NmConfig::load(&example("nm.yaml")).unwrap();
    // `user` defaults to whoever runs the NodeManager, so the example leaves it out.
    assert_eq!(loaded, NmConfig::default());
}

/// The HA examples in `deploy/` load and say what the runbook says they do.
#[test]
fn deploy_ha_examples_load() {
    let deploy = |name: &str| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name);
    let rm = RmConfig::load(&deploy("rm-ha.yaml")).unwrap();
    assert!(rm.ha.enabled);
    assert_eq!(rm.ha.rm_addresses.len(), 2);
    assert!(matches!(rm.store, weft_rm_server::config::StoreConfig::Postgres { .. }));
    let nm = NmConfig::load(&deploy("nm-ha.yaml")).unwrap();
    assert_eq!(nm.rm_addresses, rm.ha.rm_addresses);
}
