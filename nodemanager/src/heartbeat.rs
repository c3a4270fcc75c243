//! Registration with the ResourceManager and the heartbeat loop.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use weft_client::{Backoff, ClientError, Endpoint, Request, RetryPolicy, http_client};
use weft_common::Resource;
use weft_common::protocol::{
    NM_HEARTBEAT_PATH, NM_REGISTER_PATH, NodeAction, NodeHeartbeatRequest, NodeHeartbeatResponse, RegisterNodeRequest,
    RegisterNodeResponse,
};

use crate::containers::ContainerManager;

/// Guards against an RM that asks for absurdly frequent heartbeats.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);

/// Each call makes one round over the RM addresses, following a standby's redirect to the
/// active one; the loops below pace further rounds with the client's backoff (capped at 0.5 s,
/// so a new active RM is found within half a second of a failover) and notice a stop between
/// them.
fn rm_policy() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::ZERO,
        // A hung (e.g. paused) RM is given up on in this time, and the next address tried.
        request_timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

pub(crate) struct Heartbeat {
    pub manager: ContainerManager,
    pub rm: RmClient,
    pub http_address: String,
    pub total: Resource,
    /// Network location sent at every registration.
    pub rack: String,
    /// Set when the RM orders this node to shut down.
    pub rm_shutdown: watch::Sender<bool>,
}

/// Talks to the first RM that answers, failing over to the next address on errors.
pub(crate) struct RmClient {
    endpoint: Endpoint,
}

impl RmClient {
    pub fn new(addresses: &[String]) -> Result<Self, ClientError> {
        Ok(Self { endpoint: Endpoint::new(http_client()?, addresses, rm_policy())? })
    }

    async fn post<Req: Serialize, Resp: DeserializeOwned>(&self, path: &str, body: &Req) -> Result<Resp, ClientError> {
        self.endpoint.call_json(&Request::post(path).json_body(body)?).await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.endpoint.policy())
    }
}

enum Session {
    /// The RM no longer knows us: register again.
    Resync,
    /// The RM ordered a shutdown, or the NM is stopping.
    End,
}

impl Heartbeat {
    /// Registers, then heartbeats until `stop` turns true or the RM orders a shutdown.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.rm.backoff();
        loop {
            let Some(interval) = self.register(&mut stop, &mut backoff).await else { return };
            match self.heartbeat_until_resync(interval, &mut stop, &mut backoff).await {
                Session::Resync => tracing::warn!("the RM asked this node to resync; registering again"),
                Session::End => return,
            }
        }
    }

    /// Retries until registered; `None` if stopped meanwhile or the RM ordered a shutdown.
    async fn register(&mut self, stop: &mut watch::Receiver<bool>, backoff: &mut Backoff) -> Option<Duration> {
        loop {
            let request = RegisterNodeRequest {
                node_id: self.manager.node_id().clone(),
                http_address: self.http_address.clone(),
                total: self.total,
                containers: self.manager.live_reports(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                rack: Some(self.rack.clone()),
            };
            let failure = match self.rm.post::<_, RegisterNodeResponse>(NM_REGISTER_PATH, &request).await {
                Ok(response) if response.action == NodeAction::Shutdown => {
                    self.shut_down_by_rm(&response.diagnostics).await;
                    return None;
                }
                Ok(response) if response.action == NodeAction::Normal => {
                    tracing::info!(
                        node_id = %request.node_id,
                        rm_epoch = response.rm_epoch,
                        heartbeat_interval_ms = response.heartbeat_interval_ms,
                        "registered with the ResourceManager"
                    );
                    self.manager.set_token_keys(response.container_token_keys);
                    *backoff = self.rm.backoff();
                    return Some(heartbeat_interval(response.heartbeat_interval_ms));
                }
                Ok(response) => format!("the RM answered {:?}: {}", response.action, response.diagnostics),
                Err(e) => e.to_string(),
            };
            let delay = backoff.next_delay();
            tracing::warn!(error = %failure, retry_in_ms = delay.as_millis() as u64, "cannot register with any ResourceManager");
            if stopped_within(stop, delay).await {
                return None;
            }
        }
    }

    async fn heartbeat_until_resync(
        &mut self,
        interval: Duration,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> Session {
        let mut delay = interval;
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return Session::End,
                () = tokio::time::sleep(delay) => {}
                // A container completed: tell the RM now rather than at the next interval.
                () = self.manager.completed_since_last_call() => {}
            }
            let request = NodeHeartbeatRequest {
                node_id: self.manager.node_id().clone(),
                containers: self.manager.heartbeat_reports(),
                health: Default::default(),
                applications_with_dirs: self.manager.apps_with_dirs(),
            };
            let response = match self.rm.post::<_, NodeHeartbeatResponse>(NM_HEARTBEAT_PATH, &request).await {
                Ok(response) => response,
                Err(e) => {
                    delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "heartbeat failed");
                    continue;
                }
            };
            *backoff = self.rm.backoff();
            if let Some(keys) = response.container_token_keys {
                self.manager.set_token_keys(keys);
            }
            self.manager.ack_completed(&response.acked_completed);
            self.manager.apps_finished(&response.applications_to_cleanup);
            for id in response.containers_to_cleanup {
                self.manager.cleanup_for_rm(id);
            }
            delay = heartbeat_interval(response.heartbeat_interval_ms);
            match response.action {
                NodeAction::Normal => {}
                NodeAction::Resync => return Session::Resync,
                NodeAction::Shutdown => {
                    self.shut_down_by_rm("the RM answered a heartbeat with SHUTDOWN").await;
                    return Session::End;
                }
            }
        }
    }

    async fn shut_down_by_rm(&self, diagnostics: &str) {
        tracing::error!(%diagnostics, "the ResourceManager ordered this node to shut down; stopping every container");
        if let Err(e) = self.manager.shutdown().await {
            tracing::error!(error = %e, "cleanup after the RM's shutdown order failed");
        }
        self.rm_shutdown.send_replace(true);
    }
}

fn heartbeat_interval(ms: u64) -> Duration {
    Duration::from_millis(ms).max(MIN_HEARTBEAT_INTERVAL)
}

/// Sleeps `delay`; true if `stop` turned true (or its sender went away) meanwhile.
async fn stopped_within(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => true,
        () = tokio::time::sleep(delay) => false,
    }
}
