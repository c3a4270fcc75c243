//! Registration with the ResourceManager and the heartbeat loop.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use weft_common::Resource;
use weft_common::error::ErrorBody;
use weft_common::protocol::{
    NM_HEARTBEAT_PATH, NM_REGISTER_PATH, NodeAction, NodeHeartbeatRequest, NodeHeartbeatResponse, RegisterNodeRequest,
    RegisterNodeResponse,
};

use crate::containers::ContainerManager;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Short, so an NM finds a new active RM within half a second of a failover.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Guards against an RM that asks for absurdly frequent heartbeats.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);
/// A hung (e.g. paused) RM is given up on in this time, and the next address tried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

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
    http: reqwest::Client,
    addresses: Vec<String>,
    current: usize,
}

impl RmClient {
    pub fn new(addresses: &[String]) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT).build()?;
        let addresses = addresses.iter().map(|a| a.trim_end_matches('/').to_owned()).collect();
        Ok(Self { http, addresses, current: 0 })
    }

    /// Posts to the current RM, then to each other one in turn; the error of the last try.
    async fn post<Req: Serialize, Resp: DeserializeOwned>(&mut self, path: &str, body: &Req) -> Result<Resp, String> {
        let mut last_error = String::new();
        for _ in 0..self.addresses.len() {
            let url = format!("{}{path}", self.addresses[self.current]);
            match self.try_post(&url, body).await {
                Ok(response) => return Ok(response),
                Err(e) => {
                    tracing::debug!(%url, error = %e, "RM call failed");
                    last_error = format!("{url}: {e}");
                    self.current = (self.current + 1) % self.addresses.len();
                }
            }
        }
        Err(last_error)
    }

    async fn try_post<Req: Serialize, Resp: DeserializeOwned>(&self, url: &str, body: &Req) -> Result<Resp, String> {
        let response = self.http.post(url).json(body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(|e| format!("unreadable response: {e}"));
        }
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => format!("HTTP {status}: {body}"),
            Err(_) => format!("HTTP {status}: {text}"),
        })
    }
}

/// Exponential backoff with jitter for retrying an unreachable RM.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self { next: MIN_BACKOFF }
    }

    fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        let jitter_ms = rand::random_range(0..=delay.as_millis() as u64 / 4);
        delay + Duration::from_millis(jitter_ms)
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
        let mut backoff = Backoff::new();
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
                    backoff.reset();
                    return Some(heartbeat_interval(response.heartbeat_interval_ms));
                }
                Ok(response) => format!("the RM answered {:?}: {}", response.action, response.diagnostics),
                Err(e) => e,
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
            backoff.reset();
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
