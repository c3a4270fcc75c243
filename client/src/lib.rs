//! The one HTTP client of every Weft protocol: the SDK's RM, AM and NM clients, the NodeManager's
//! heartbeat loop, the ResourceManager's AM launcher, the CLI and the load generator all send
//! through an [`Endpoint`].
//!
//! - Transport: JSON over HTTP/1.1 with reqwest, a connect timeout, and a per-exchange timeout
//!   that allows for a long poll's wait.
//! - Retries ([`RetryPolicy`], [`Backoff`]): transient failures ([`ClientError::is_retryable`]:
//!   connection failures, timeouts, refusals whose [`ErrorCode`](weft_common::error::ErrorCode)
//!   is retryable) are retried across every address of the endpoint with jittered exponential
//!   backoff until the policy's deadline.
//! - Redirects: a standby RM answers 307 naming the active one. The client retries there and
//!   remembers it for later calls, so a client given one RM address still finds the active after
//!   a handover. A bearer token goes only to an address the caller gave or one a given address
//!   named; other redirects are not followed.

mod error;
#[cfg(any(test, feature = "fake-server"))]
pub mod fake_server;
mod retry;
mod transport;

pub use error::{ClientError, is_retryable_refusal};
pub use retry::{Backoff, RetryPolicy};
pub use transport::{Attempted, CONNECT_TIMEOUT, Endpoint, Reply, Request, http_client, parse_address};
