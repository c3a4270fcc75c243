//! Rust SDK for Weft clients and ApplicationMasters.
//!
//! - [`RmClient`]: the ResourceManager's YARN REST API (submit, inspect, kill, wait), plus
//!   container logs from NodeManagers.
//! - [`AmRmClient`]: an ApplicationMaster's register / allocate / finish protocol with an asks
//!   table, release queue, lost-response replay and transparent resync.
//! - [`NmClient`]: starting, stopping and inspecting allocated containers.
//! - [`admin`]: one RM's high-availability state and planned handover (`weft rmadmin`).
//!
//! Every call goes through [`weft_client`]: transient failures (connection errors, timeouts,
//! refusals whose error code is retryable, a standby RM) are retried with jittered exponential
//! backoff, cycling through the given addresses and following a standby's redirect to the
//! active RM, until the [`RetryPolicy`] deadline; other errors surface at once as [`SdkError`].

pub mod admin;
mod amrm;
mod asks;
mod error;
mod nm;
mod rm;

pub use amrm::{Allocation, AmRmClient, DEFAULT_LONG_POLL};
pub use asks::ContainerAsk;
pub use error::SdkError;
pub use nm::NmClient;
pub use rm::{AppsFilter, RmClient};
pub use weft_client::{ClientError, RetryPolicy};
