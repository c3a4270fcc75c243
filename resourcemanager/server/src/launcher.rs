//! Carries out the core's AM launches and container stops against NodeManagers (YARN's
//! AMLauncher) through `weft-client`. Launch outcomes go back to the core as events; stops are
//! best effort because the NM's next heartbeat reconciles anything it still runs that the RM
//! does not want.

use std::time::Duration;

use weft_client::{ClientError, Endpoint, Request, RetryPolicy, http_client};
use weft_common::error::ErrorCode;
use weft_common::protocol::{NM_CONTAINERS_PATH, StartContainerRequest, StopContainerRequest};

use super::{CoreHandle, error_chain};
use weft_rm_core::{AmLaunch, ContainerStop, Event};

/// A launch is retried (an unreachable NM, one not registered yet) for this long before the
/// core is told it failed and tries elsewhere.
fn launch_policy() -> RetryPolicy {
    RetryPolicy { deadline: Duration::from_secs(2), ..RetryPolicy::default() }
}

/// A stop is sent once: the heartbeat reconciles what it misses.
fn stop_policy() -> RetryPolicy {
    RetryPolicy { deadline: Duration::ZERO, ..RetryPolicy::default() }
}

pub(super) struct Launcher {
    http: reqwest::Client,
    core: CoreHandle,
}

impl Launcher {
    pub(super) fn new(core: CoreHandle) -> Self {
        let http = http_client().unwrap_or_else(|_| reqwest::Client::new());
        Self { http, core }
    }

    pub(super) fn launch_am(&self, launch: AmLaunch) {
        let http = self.http.clone();
        let core = self.core.clone();
        tokio::spawn(async move {
            let container = launch.container_id;
            let body = StartContainerRequest {
                container_token: launch.container_token,
                launch_context: launch.launch_context,
            };
            let outcome = start_container(http, &launch.node_http_address, &body).await;
            match outcome {
                Ok(()) => {
                    tracing::info!(%container, node = %launch.node_http_address, "AM container launched");
                    core.notify(Event::AmLaunched { container }).await;
                }
                Err(e) => {
                    let diagnostics = describe(&e);
                    tracing::warn!(%container, error = %diagnostics, "AM container launch failed");
                    core.notify(Event::AmLaunchFailed { container, diagnostics }).await;
                }
            }
        });
    }

    pub(super) fn stop(&self, stop: ContainerStop) {
        if stop.node_http_address.is_empty() {
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            let path = format!("{NM_CONTAINERS_PATH}/{}/stop", stop.container_id);
            let body =
                StopContainerRequest { container_token: stop.container_token, exit_status: Some(stop.exit_status) };
            let result = stop_container(http, &stop.node_http_address, &path, &body).await;
            if let Err(e) = result {
                tracing::debug!(container = %stop.container_id, error = %describe(&e), "stop request failed; the heartbeat will reconcile");
            }
        });
    }
}

async fn start_container(http: reqwest::Client, nm: &str, body: &StartContainerRequest) -> Result<(), ClientError> {
    let nm = Endpoint::new(http, &[nm.to_owned()], launch_policy())?;
    let attempted = nm.execute(&Request::post(NM_CONTAINERS_PATH).json_body(body)?).await;
    match attempted.result {
        Ok(_) => Ok(()),
        // An earlier try started it but its answer was lost.
        Err(e) if attempted.attempts > 1 && e.code() == Some(ErrorCode::NmDuplicateContainer) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn stop_container(
    http: reqwest::Client,
    nm: &str,
    path: &str,
    body: &StopContainerRequest,
) -> Result<(), ClientError> {
    let nm = Endpoint::new(http, &[nm.to_owned()], stop_policy())?;
    nm.call(&Request::post(path).json_body(body)?).await.map(drop)
}

/// The NM's refusal as it said it, or the transport failure with its causes.
fn describe(error: &ClientError) -> String {
    match error {
        ClientError::Remote { .. } | ClientError::Status { .. } => format!("NodeManager answered {error}"),
        other => error_chain(other),
    }
}
