//! The Weft ResourceManager.
//!
//! - [`core`]: the sans-IO scheduler core (state, lifecycles, scheduling, invariants).
//! - [`store`]: durable state behind [`store::StateStore`].
//! - [`server`]: the tokio/axum shell that feeds the core events and carries out its effects.

pub mod core;
pub mod queues;
pub mod server;
pub mod store;
