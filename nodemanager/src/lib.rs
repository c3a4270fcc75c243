//! The Weft NodeManager: container launch in cgroups, monitoring, logs, RM heartbeats.
//!
//! [`start`] binds the HTTP API, sets up isolation (cleaning up after a crashed predecessor),
//! and spawns the server and the heartbeat loop; [`NodeManagerHandle::shutdown`] stops every
//! container and removes every cgroup before returning.

pub mod config;
pub mod containers;
mod error;
mod heartbeat;
pub mod http;
pub mod isolation;
mod launch;
mod ledger;
pub mod metrics;
mod output;
pub mod process;

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_common::NodeId;
use weft_common::config::ConfigError;

pub use crate::config::NmConfig;
use crate::containers::ContainerManager;
pub use crate::error::NmError;
use crate::heartbeat::{Heartbeat, RmClient};
use crate::http::ApiState;
use crate::metrics::NmMetrics;

/// A running NodeManager.
pub struct NodeManagerHandle {
    http_addr: SocketAddr,
    node_id: NodeId,
    manager: ContainerManager,
    stop: watch::Sender<bool>,
    rm_shutdown: watch::Receiver<bool>,
    server: JoinHandle<std::io::Result<()>>,
    heartbeat: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
}

/// Starts a NodeManager. Fails if the config is invalid, the address cannot be bound, or
/// isolation is configured but unusable. An unreachable RM is not an error: the heartbeat loop
/// keeps trying, and container starts are refused (503) until it registered.
pub async fn start(config: NmConfig, mut registry: Registry) -> Result<NodeManagerHandle, NmError> {
    config.validate("NodeManager config")?;
    let os_user = config::current_user_name();
    if os_user != config.user {
        return Err(NmError::Config(ConfigError::Invalid {
            source_name: "NodeManager config".into(),
            field: "user".into(),
            message: format!(
                "containers run as the NM's own user ({os_user}); running them as {:?} is not supported yet",
                config.user
            ),
        }));
    }

    let listener =
        TcpListener::bind(&config.bind).await.map_err(|source| NmError::Bind { addr: config.bind.clone(), source })?;
    let http_addr = listener.local_addr().map_err(|source| NmError::Bind { addr: config.bind.clone(), source })?;
    let node_id = NodeId(format!("{}:{}", config.hostname, http_addr.port()).into());
    let http_address = format!("http://{}:{}", config.hostname, http_addr.port());

    for dir in [&config.work_dir, &config.log_dir] {
        tokio::fs::create_dir_all(dir).await.map_err(NmError::io(dir))?;
    }
    let isolation_config = config.isolation.clone();
    let isolation = tokio::task::spawn_blocking(move || isolation::setup(&isolation_config))
        .await
        .map_err(|e| NmError::Task(e.to_string()))??;
    tracing::info!(mode = %isolation.mode(), roots = ?isolation.root_dirs(), "container isolation ready");

    let metrics = NmMetrics::register(&mut registry);
    let manager = ContainerManager::new(&config, node_id.clone(), isolation, metrics)?;
    let rm = RmClient::new(&config.rm_addresses).map_err(|e| NmError::HttpClient(e.to_string()))?;
    let (stop, stop_rx) = watch::channel(false);
    let (rm_shutdown_tx, rm_shutdown) = watch::channel(false);

    let api = http::router(Arc::new(ApiState {
        manager: manager.clone(),
        registry,
        http_address: http_address.clone(),
        total: config.resources.total(),
    }));
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, api)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stopped| *stopped).await;
            })
            .await
    });
    let heartbeat = Heartbeat {
        manager: manager.clone(),
        rm,
        http_address,
        total: config.resources.total(),
        rack: config.rack.clone(),
        rm_shutdown: rm_shutdown_tx,
    };
    let housekeeping = tokio::spawn(manager.clone().housekeeping(stop_rx.clone()));
    let heartbeat = tokio::spawn(heartbeat.run(stop_rx));
    tracing::info!(%node_id, %http_addr, rms = ?config.rm_addresses, "NodeManager started");
    Ok(NodeManagerHandle { http_addr, node_id, manager, stop, rm_shutdown, server, heartbeat, housekeeping })
}

impl NodeManagerHandle {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// Resolves when the RM ordered this node to shut down (its containers are then already
    /// stopped); the owner should then call [`Self::shutdown`] and exit.
    pub async fn rm_ordered_shutdown(&self) {
        let mut rm_shutdown = self.rm_shutdown.clone();
        let _ = rm_shutdown.wait_for(|ordered| *ordered).await;
    }

    /// Stops every container (SIGTERM to the group, SIGKILL after the grace), removes every
    /// cgroup, stops the server and the heartbeat loop.
    pub async fn shutdown(self) -> Result<(), NmError> {
        tracing::info!(node_id = %self.node_id, "NodeManager shutting down");
        self.stop.send_replace(true);
        // Heartbeating is over; an RM call in flight is simply dropped.
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
        // A deletion in progress finishes (it runs on a blocking thread); none starts after.
        let _ = self.housekeeping.await;
        let containers = self.manager.shutdown().await;
        let server = self.server.await.map_err(|e| NmError::Task(e.to_string()))?.map_err(NmError::Server);
        containers?;
        server
    }
}
