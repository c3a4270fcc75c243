//! Shared vocabulary of Weft: typed ids, resources, lifecycle states, the wire messages spoken
//! between the ResourceManager, NodeManagers and ApplicationMasters, signed tokens, REST error
//! bodies and YAML config loading.
//!
//! Architecture Invariant: this crate does no I/O beyond reading a config file and knows nothing
//! about tokio, HTTP frameworks or databases.

pub mod config;
pub mod deadlines;
pub mod error;
pub mod ids;
pub mod protocol;
pub mod resource;
pub mod rest;
pub mod states;
pub mod token;

pub use ids::{ApplicationId, AttemptId, ContainerId, IdParseError, NodeId};
pub use resource::Resource;

/// Milliseconds since the Unix epoch. The scheduler core never reads a clock: callers pass this in.
pub type Millis = u64;
