//! State shared by every simulated node, AM and submission: settings, the measurement window,
//! per-app timestamps, latency histograms, counters and errors.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use weft_client::{Backoff, RetryPolicy, is_retryable_refusal};
use weft_common::error::{ErrorBody, ErrorCode};
use weft_common::{ApplicationId, Resource};

use crate::nodes::SimNode;
use crate::rawhttp::{IoFailure, RawClient, RawResponse};
use crate::stats::{Counter, Errors, Histogram};

/// What the simulation does, fixed for the run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_resource: Resource,
    pub am_resource: Resource,
    pub container_resource: Resource,
    pub containers_per_app: u32,
    /// How long a task container "runs" before it exits 0.
    pub container_runtime: Duration,
    /// `wait_ms` of the AMs' allocate long polls (the SDK's default is 1 s).
    pub am_long_poll: Duration,
    pub submit_rate: f64,
    pub max_in_flight_submissions: u64,
    pub user: String,
}

/// What we know about one submitted application. Times come from one monotonic clock.
#[derive(Debug, Clone)]
pub struct AppTrack {
    /// Taken just before `POST new-application`.
    pub submitted_at: Instant,
    /// Submitted inside the measurement window, so its latencies count.
    pub measured: bool,
    /// The RM answered the submission with 202.
    pub accepted: bool,
    /// The RM's AM launch request reached our NodeManager API.
    pub am_launched_at: Option<Instant>,
    /// An allocate response first carried a container for this app.
    pub first_container_at: Option<Instant>,
    pub am_attempts: u32,
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The RM confirmed `finish(SUCCEEDED)`.
    Succeeded,
    Failed(String),
}

/// Latencies and counts. Histograms cover the measurement window only; `total_*` counters cover
/// the whole run and feed the per-second timeline.
#[derive(Default)]
pub struct Metrics {
    pub heartbeat_rtt: Histogram,
    pub heartbeats_periodic: Counter,
    pub heartbeats_early: Counter,
    pub new_application_rtt: Histogram,
    pub submit_rtt: Histogram,
    pub am_register_rtt: Histogram,
    /// Allocate calls that were answered at once (no long poll involved).
    pub allocate_rtt: Histogram,
    pub am_finish_rtt: Histogram,

    pub submissions_scheduled: Counter,
    pub submissions_accepted: Counter,
    pub submissions_failed: Counter,
    /// Issued more than [`LATE`] after their scheduled time (the generator fell behind).
    pub submissions_late: Counter,
    /// Not issued because too many submissions were still waiting for the RM.
    pub submissions_shed: Counter,
    pub max_submit_lag_us: std::sync::atomic::AtomicU64,

    pub total_heartbeats: Counter,
    pub total_submissions_accepted: Counter,
    pub total_first_containers: Counter,
    pub total_apps_finished: Counter,
    pub am_launches: Counter,
    pub resyncs: Counter,
}

/// A submission issued later than this after its slot counts as late.
pub const LATE: Duration = Duration::from_millis(10);

pub struct World {
    pub settings: Settings,
    /// RM endpoints for reqwest, parsed once (parsing a URL per request shows in profiles).
    pub urls: Urls,
    pub nodes: Vec<SimNode>,
    pub apps: Mutex<HashMap<ApplicationId, AppTrack>>,
    pub metrics: Metrics,
    pub errors: Errors,
    window: OnceLock<(Instant, Instant)>,
    pub http: Clients,
}

pub struct Urls {
    pub new_application: Url,
    pub submit: Url,
    pub cluster_metrics: Url,
}

impl Urls {
    fn new(rm: &str, user: &str) -> anyhow::Result<Self> {
        let url = |path: &str| Url::parse(&format!("{rm}{path}")).with_context(|| format!("RM address {rm:?}"));
        Ok(Self {
            new_application: url(&format!("/ws/v1/cluster/apps/new-application?user.name={user}"))?,
            submit: url(&format!("/ws/v1/cluster/apps?user.name={user}"))?,
            cluster_metrics: url("/ws/v1/cluster/metrics")?,
        })
    }
}

/// A few shared HTTP/1.1 keep-alive clients: one per traffic kind, so a pile of long polls
/// cannot starve heartbeats of pooled connections. Each kind also has a cap on requests in
/// flight: reqwest opens a connection per concurrent request, and an overloaded RM would
/// otherwise drive the generator into its file descriptor limit, turning the RM's slowness into
/// the generator's own connect errors.
pub struct Clients {
    /// Register and heartbeat, 10k/s: see [`crate::rawhttp`] for why not reqwest.
    pub nodes: RawClient,
    pub submit: reqwest::Client,
    pub am: reqwest::Client,
    pub nodes_in_flight: Semaphore,
    pub am_in_flight: Semaphore,
}

/// With the submissions' cap and the RM's launch connections into the NM API this keeps the
/// generator well inside a 20k descriptor limit even when the RM answers nothing.
pub const MAX_NODE_REQUESTS_IN_FLIGHT: usize = 6000;
pub const MAX_AM_REQUESTS_IN_FLIGHT: usize = 3000;

impl Clients {
    pub fn new(rm: SocketAddr) -> anyhow::Result<Self> {
        let build = |idle: usize| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(idle)
                .pool_idle_timeout(Duration::from_secs(30))
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .build()
        };
        // Long polls hold a connection each, so the AM pool must keep many to avoid reconnects.
        Ok(Self {
            nodes: RawClient::new(rm, 512),
            submit: build(1024)?,
            am: build(MAX_AM_REQUESTS_IN_FLIGHT)?,
            nodes_in_flight: Semaphore::new(MAX_NODE_REQUESTS_IN_FLIGHT),
            am_in_flight: Semaphore::new(MAX_AM_REQUESTS_IN_FLIGHT),
        })
    }
}

impl World {
    pub fn new(settings: Settings, rm: &str, nodes: Vec<SimNode>) -> anyhow::Result<Self> {
        Ok(Self {
            urls: Urls::new(rm, &settings.user)?,
            settings,
            nodes,
            apps: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            errors: Errors::default(),
            window: OnceLock::new(),
            http: Clients::new(socket_addr(rm)?)?,
        })
    }

    pub fn set_window(&self, start: Instant, end: Instant) {
        let _ = self.window.set((start, end));
    }

    pub fn in_window(&self, t: Instant) -> bool {
        self.window.get().is_some_and(|(start, end)| t >= *start && t < *end)
    }

    pub fn apps(&self) -> MutexGuard<'_, HashMap<ApplicationId, AppTrack>> {
        self.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn update_app(&self, id: ApplicationId, f: impl FnOnce(&mut AppTrack)) {
        if let Some(track) = self.apps().get_mut(&id) {
            f(track);
        }
    }

    /// Records `what` failing, keyed by what went wrong.
    pub fn error(&self, what: &str, e: &CallError) {
        self.errors.record(format!("{what}: {}", e.kind()), || e.to_string());
    }
}

/// The socket address of `http://host:port`, resolved once.
fn socket_addr(rm: &str) -> anyhow::Result<SocketAddr> {
    let url = Url::parse(rm).with_context(|| format!("RM address {rm:?}"))?;
    let host = url.host_str().with_context(|| format!("RM address {rm:?} has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    (host, port).to_socket_addrs()?.next().with_context(|| format!("cannot resolve {host}"))
}

/// Decodes a JSON answer of the raw client, or the RM's error body.
pub fn decode_raw<T: DeserializeOwned>(response: RawResponse, what: &str) -> Result<T, CallError> {
    if (200..300).contains(&response.status) {
        return serde_json::from_slice(&response.body).map_err(|e| CallError::Decode(format!("{what}: {e}")));
    }
    let code = serde_json::from_slice::<ErrorBody>(&response.body).map(|b| b.remote_exception.code).unwrap_or_default();
    Err(CallError::Status { status: response.status, code, text: String::from_utf8_lossy(&response.body).into_owned() })
}

/// Why an HTTP call failed.
#[derive(Debug)]
pub enum CallError {
    Transport(reqwest::Error),
    Io(IoFailure),
    Status { status: u16, code: String, text: String },
    Decode(String),
}

impl CallError {
    /// A short, low-cardinality description for counting.
    pub fn kind(&self) -> String {
        match self {
            CallError::Transport(e) if e.is_timeout() => "timeout".into(),
            CallError::Transport(e) if e.is_connect() => "connect failed".into(),
            CallError::Transport(_) => "transport error".into(),
            CallError::Io(e) => e.kind.into(),
            CallError::Status { status, code, .. } if code.is_empty() => format!("HTTP {status}"),
            CallError::Status { status, code, .. } => format!("HTTP {status} {code}"),
            CallError::Decode(_) => "unreadable response".into(),
        }
    }

    /// Worth retrying: the RM may answer next time (decided as every Weft client decides).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport(_) | CallError::Io(_) => true,
            CallError::Status { status, code, .. } => is_retryable_refusal(*status, code.parse::<ErrorCode>().ok()),
            CallError::Decode(_) => false,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => {
                write!(f, "{e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
            CallError::Io(e) => write!(f, "{}: {}", e.kind, e.message),
            CallError::Status { status, text, .. } => write!(f, "HTTP {status}: {text}"),
            CallError::Decode(e) => write!(f, "{e}"),
        }
    }
}

/// POSTs a JSON body and decodes a JSON answer; `timeout` bounds the whole exchange.
pub async fn post_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &Url,
    body: Vec<u8>,
    bearer: Option<&HeaderValue>,
    timeout: Duration,
) -> Result<T, CallError> {
    let bytes = post(client, url, body, bearer, timeout).await?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(format!("{url}: {e}")))
}

/// POSTs a JSON body; the successful answer's bytes (`axum::body::Bytes` is reqwest's `Bytes`).
pub async fn post(
    client: &reqwest::Client,
    url: &Url,
    body: Vec<u8>,
    bearer: Option<&HeaderValue>,
    timeout: Duration,
) -> Result<Bytes, CallError> {
    let mut request = client
        .post(url.clone())
        .timeout(timeout)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body);
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, token.clone());
    }
    let response = request.send().await.map_err(CallError::Transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(CallError::Transport)?;
    if status.is_success() {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let code = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.remote_exception.code).unwrap_or_default();
    Err(CallError::Status { status: status.as_u16(), code, text })
}

/// Runs `attempt` until it succeeds, fails for good or the deadline passes, recording each
/// failure as `what`. Simulated NMs and AMs retry with the policy and backoff of every Weft
/// client (`weft-client`), so the RM sees the retry traffic real clients would send.
pub async fn retrying<T, F: Future<Output = Result<T, CallError>>>(
    world: &World,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Result<T, CallError> {
    let policy = RetryPolicy::default();
    let deadline = Instant::now() + policy.deadline;
    let mut backoff = Backoff::new(&policy);
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        world.error(what, &error);
        let pause = backoff.next_delay();
        if !error.is_transient() || Instant::now() + pause > deadline {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
    }
}
