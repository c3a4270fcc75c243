//! Simulated ApplicationMasters: what the RM launches into an AM container, run as a task. Each
//! registers with the token from its launch environment, asks for a few small containers,
//! long-polls `allocate` like the SDK does, has the simulated NMs run what it got, waits for
//! their completion and finishes the app SUCCEEDED.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::AbortHandle;
use weft_client::RetryPolicy;
use weft_common::ContainerId;
use weft_common::protocol::{
    AM_ALLOCATE_PATH, AM_FINISH_PATH, AM_REGISTER_PATH, ANY, AllocateRequest, AllocateResponse, AmCommand,
    ContainerLaunchContext, FinishAmRequest, FinishAmResponse, RegisterAmRequest, RegisterAmResponse, ResourceRequest,
    am_env,
};
use weft_common::states::{FinalStatus, exit_status};

use crate::nodes::{node_index, start_task_container};
use crate::stats::Histogram;
use crate::world::{Outcome, World, post_json, retrying};

const FINISH_POLL_INTERVAL: Duration = Duration::from_millis(200);
const TASK_PRIORITY: i32 = 1;

/// Starts the AM of AM container `container` on node `node`; its handle stops it (the RM
/// stopping the container kills the "process"). When it ends by itself, its container exits
/// with 0 if the app finished, 1 otherwise.
pub fn spawn(world: Arc<World>, node: usize, container: ContainerId, launch: ContainerLaunchContext) -> AbortHandle {
    let task = tokio::spawn(async move {
        let app = container.app();
        let outcome = match Am::new(&world, &launch) {
            Ok(am) => am.run().await,
            Err(e) => Outcome::Failed(e),
        };
        let exit = if outcome == Outcome::Succeeded { exit_status::SUCCESS } else { 1 };
        if let Outcome::Failed(reason) = &outcome {
            world.errors.record("app: AM failed", || format!("{app}: {reason}"));
        }
        world.update_app(app, |track| track.outcome = Some(outcome));
        world.metrics.total_apps_finished.inc();
        world.nodes[node].am_exited(container, exit);
    });
    task.abort_handle()
}

struct Am<'w> {
    world: &'w Arc<World>,
    register_url: Url,
    allocate_url: Url,
    finish_url: Url,
    bearer: HeaderValue,
}

impl<'w> Am<'w> {
    fn new(world: &'w Arc<World>, launch: &ContainerLaunchContext) -> Result<Self, String> {
        let env = |name: &str| launch.environment.get(name).ok_or_else(|| format!("launch environment lacks {name}"));
        let token = env(am_env::AM_TOKEN)?;
        let rm = env(am_env::RM_ADDRESSES)?.split(',').next().unwrap_or_default().trim_end_matches('/').to_owned();
        let bearer =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("unusable AM token: {e}"))?;
        let url = |path: &str| Url::parse(&format!("{rm}{path}")).map_err(|e| format!("bad RM address {rm:?}: {e}"));
        Ok(Self {
            world,
            register_url: url(AM_REGISTER_PATH)?,
            allocate_url: url(AM_ALLOCATE_PATH)?,
            finish_url: url(AM_FINISH_PATH)?,
            bearer,
        })
    }

    async fn run(&self) -> Outcome {
        match self.work().await {
            Ok(FinalStatus::Succeeded) => Outcome::Succeeded,
            Ok(status) => Outcome::Failed(format!("finished {status:?}")),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Register, get and run the containers, finish. The final status the RM confirmed.
    async fn work(&self) -> Result<FinalStatus, String> {
        let world = self.world;
        let m = &world.metrics;
        let settings = &world.settings;
        let wanted = settings.containers_per_app;
        self.call::<_, RegisterAmResponse>(
            "am register",
            &self.register_url,
            &RegisterAmRequest::default(),
            Duration::ZERO,
            Some(&m.am_register_rtt),
        )
        .await?;
        let ask = ResourceRequest {
            priority: TASK_PRIORITY,
            capability: settings.container_resource,
            num_containers: wanted,
            resource_name: ANY.to_owned(),
            relax_locality: true,
            gang: false,
        };
        // Only the first request carries the ask: `num_containers` is a total the RM counts down,
        // so later requests leave it alone (as the SDK's asks table does).
        let mut asks = vec![ask.clone()];
        let mut response_id = 0;
        let (mut allocated, mut completed, mut failed) = (0u32, 0u32, 0u32);
        let mut first_call = true;
        let mut seen_first_container = false;
        while completed < wanted {
            let request = AllocateRequest {
                response_id,
                asks: std::mem::take(&mut asks),
                releases: Vec::new(),
                progress: completed as f32 / wanted.max(1) as f32,
                wait_ms: settings.am_long_poll.as_millis() as u64,
            };
            let rtt = if first_call { Some(&m.allocate_rtt) } else { None };
            first_call = false;
            let response: AllocateResponse =
                self.call("am allocate", &self.allocate_url, &request, settings.am_long_poll, rtt).await?;
            response_id = response.response_id;
            if !response.allocated.is_empty() && !seen_first_container {
                seen_first_container = true;
                let now = Instant::now();
                m.total_first_containers.inc();
                if let Some(c) = response.allocated.first() {
                    world.update_app(c.id.app(), |track| {
                        track.first_container_at.get_or_insert(now);
                    });
                }
            }
            for container in &response.allocated {
                allocated += 1;
                let started = node_index(&container.node_id)
                    .is_some_and(|i| start_task_container(world, i, container.id, &container.container_token));
                if !started {
                    // Not ours to run (or refused): it would never complete, so count it done.
                    world.errors.record("am: container could not be started", || {
                        format!("{} on {} ({})", container.id, container.node_id, container.node_http_address)
                    });
                    completed += 1;
                    failed += 1;
                }
            }
            for status in &response.completed {
                completed += 1;
                if status.exit_status != exit_status::SUCCESS {
                    failed += 1;
                    world.errors.record("am: container failed", || {
                        format!("{} exited {}: {}", status.container_id, status.exit_status, status.diagnostics)
                    });
                }
            }
            match response.am_command {
                None => {}
                Some(AmCommand::Shutdown) => return Err("the RM ordered the AM to shut down".into()),
                Some(AmCommand::Resync) => {
                    m.resyncs.inc();
                    self.call::<_, RegisterAmResponse>(
                        "am register",
                        &self.register_url,
                        &RegisterAmRequest::default(),
                        Duration::ZERO,
                        None,
                    )
                    .await?;
                    response_id = 0;
                    let outstanding = wanted.saturating_sub(allocated);
                    if outstanding > 0 {
                        asks.push(ResourceRequest { num_containers: outstanding, ..ask.clone() });
                    }
                }
            }
        }
        let status = if failed == 0 { FinalStatus::Succeeded } else { FinalStatus::Failed };
        let finish = FinishAmRequest { final_status: status, diagnostics: String::new(), tracking_url: String::new() };
        let started = Instant::now();
        loop {
            let response: FinishAmResponse =
                self.call("am finish", &self.finish_url, &finish, Duration::ZERO, Some(&m.am_finish_rtt)).await?;
            if response.is_unregistered {
                return Ok(status);
            }
            if started.elapsed() > RetryPolicy::default().deadline {
                return Err("the RM never confirmed the unregistration".into());
            }
            tokio::time::sleep(FINISH_POLL_INTERVAL).await;
        }
    }

    /// One AM → RM call, the same request retried on transient failures (so a lost allocate
    /// response is replayed by the RM rather than applied twice). `rtt` gets the round trip of
    /// a call made inside the measurement window.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        what: &str,
        url: &Url,
        request: &Req,
        long_poll: Duration,
        rtt: Option<&Histogram>,
    ) -> Result<Resp, String> {
        let world = self.world;
        let body = &serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let timeout = RetryPolicy::default().request_timeout + long_poll;
        retrying(world, what, || async move {
            let sent = Instant::now();
            let response = {
                let _slot = world.http.am_in_flight.acquire().await;
                post_json(&world.http.am, url, body.clone(), Some(&self.bearer), timeout).await?
            };
            if let Some(h) = rtt
                && world.in_window(sent)
            {
                h.record(sent.elapsed());
            }
            Ok(response)
        })
        .await
        .map_err(|e| format!("{what}: {e}"))
    }
}
