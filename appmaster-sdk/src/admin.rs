//! Administration of one ResourceManager of an HA group (`weft rmadmin`): unlike [`crate::RmClient`],
//! these calls go to exactly the given address, never failing over to another RM.

use std::time::Duration;

use weft_common::rest::{HA_STATE_PATH, HA_TRANSITION_TO_STANDBY_PATH, HaStateInfo};

use weft_client::{Endpoint, Request, RetryPolicy, http_client};

use crate::error::SdkError;

fn endpoint(address: &str) -> Result<Endpoint, SdkError> {
    let policy = RetryPolicy { deadline: Duration::from_secs(5), ..RetryPolicy::default() };
    Ok(Endpoint::new(http_client()?, &[address.to_owned()], policy)?)
}

/// Whether the RM at `address` is active or standby, and whom it knows as active.
pub async fn ha_state(address: &str) -> Result<HaStateInfo, SdkError> {
    Ok(endpoint(address)?.call_json(&Request::get(HA_STATE_PATH)).await?)
}

/// Asks the RM at `address` to step down (planned handover): an active RM finishes its current
/// store write, gives up its lease and becomes standby before this returns; another RM of the
/// group then takes over. Returns the RM's state afterwards.
pub async fn transition_to_standby(address: &str) -> Result<HaStateInfo, SdkError> {
    Ok(endpoint(address)?.call_json(&Request::post(HA_TRANSITION_TO_STANDBY_PATH)).await?)
}
