//! Rust SDK for Weft clients and ApplicationMasters.
//!
//! - [`RmClient`]: the ResourceManager's YARN REST API (submit, inspect, kill, wait), plus
//!   container logs from NodeManagers.
//! - [`AmRmClient`]: an ApplicationMaster's register / allocate / finish protocol with an asks
//!   table, release queue, lost-response replay and transparent resync.
//! - [`NmClient`]: starting, stopping and inspecting allocated containers.
//! - [`admin`]: one RM's high-availability state and planned handover (`weft rmadmin`).
//!
//! Every call retries transient failures (connection errors, timeouts, 502/503/504, error codes
//! ending in `-RETRYABLE`, a standby RM) with jittered exponential backoff, cycling through the
//! given addresses, until the [`RetryPolicy`] deadline; other errors surface at once as
//! [`SdkError`].

pub mod admin;
mod amrm;
mod asks;
mod error;
mod nm;
mod retry;
mod rm;
mod transport;

pub use amrm::{Allocation, AmRmClient, DEFAULT_LONG_POLL};
pub use asks::ContainerAsk;
pub use error::{AM_NOT_REGISTERED, RETRYABLE_SUFFIX, RM_STANDBY, SdkError};
pub use nm::NmClient;
pub use retry::RetryPolicy;
pub use rm::{AppsFilter, RmClient};
