//! Carries out the core's AM launches and container stops against NodeManagers (YARN's
//! AMLauncher). Launch outcomes go back to the core as events; stops are best effort because the
//! NM's next heartbeat reconciles anything it still runs that the RM does not want.

use std::time::Duration;

use weft_common::protocol::{NM_CONTAINERS_PATH, StartContainerRequest, StopContainerRequest};

use super::{CoreHandle, error_chain};
use weft_rm_core::{AmLaunch, ContainerStop, Event};

const LAUNCH_ATTEMPTS: u32 = 3;

pub(super) struct Launcher {
    http: reqwest::Client,
    core: CoreHandle,
}

impl Launcher {
    pub(super) fn new(core: CoreHandle) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, core }
    }

    pub(super) fn launch_am(&self, launch: AmLaunch) {
        let http = self.http.clone();
        let core = self.core.clone();
        tokio::spawn(async move {
            let container = launch.container_id;
            let url = format!("{}{NM_CONTAINERS_PATH}", launch.node_http_address);
            let body = StartContainerRequest {
                container_token: launch.container_token,
                launch_context: launch.launch_context,
            };
            let mut last_error = String::new();
            for attempt in 1..=LAUNCH_ATTEMPTS {
                match http.post(&url).json(&body).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        tracing::info!(%container, node = %launch.node_http_address, "AM container launched");
                        core.notify(Event::AmLaunched { container }).await;
                        return;
                    }
                    Ok(resp) => {
                        let status = resp.status();
                        last_error =
                            format!("NodeManager answered {status}: {}", resp.text().await.unwrap_or_default());
                        // Only "not ready yet" is worth retrying; other refusals are final.
                        if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                            break;
                        }
                    }
                    Err(e) => last_error = error_chain(&e),
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            tracing::warn!(%container, error = %last_error, "AM container launch failed");
            core.notify(Event::AmLaunchFailed { container, diagnostics: last_error }).await;
        });
    }

    pub(super) fn stop(&self, stop: ContainerStop) {
        if stop.node_http_address.is_empty() {
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            let url = format!("{}{NM_CONTAINERS_PATH}/{}/stop", stop.node_http_address, stop.container_id);
            let body =
                StopContainerRequest { container_token: stop.container_token, exit_status: Some(stop.exit_status) };
            if let Err(e) = http.post(&url).json(&body).send().await {
                tracing::debug!(container = %stop.container_id, error = %error_chain(&e), "stop request failed; the heartbeat will reconcile");
            }
        });
    }
}
