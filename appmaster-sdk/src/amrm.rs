//! The ApplicationMaster's side of the AM ↔ RM protocol: register, allocate, finish.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use weft_common::protocol::{
    AM_ALLOCATE_PATH, AM_FINISH_PATH, AM_REGISTER_PATH, AllocateRequest, AllocateResponse, AmCommand, Container,
    ContainerStatus, FinishAmRequest, FinishAmResponse, PreemptionMessage, RegisterAmRequest, RegisterAmResponse,
    am_env,
};
use weft_common::states::FinalStatus;
use weft_common::{ContainerId, Resource};

use weft_client::{ClientError, Endpoint, Request, RetryPolicy, http_client};
use weft_common::error::ErrorCode;

use crate::asks::{AskTable, ContainerAsk};
use crate::error::SdkError;

/// How long the RM may hold an allocate call that has nothing new to say.
pub const DEFAULT_LONG_POLL: Duration = Duration::from_secs(1);
/// More resync requests in quick succession than this means re-registering does not help.
const MAX_CONSECUTIVE_RESYNCS: u32 = 3;
/// Resyncs further apart than this are separate events (e.g. one per failover), not a loop.
const RESYNC_LOOP_WINDOW: Duration = Duration::from_millis(250);
const FINISH_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What one [`AmRmClient::allocate`] brought.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    pub allocated: Vec<Container>,
    pub completed: Vec<ContainerStatus>,
    pub preemption: Option<PreemptionMessage>,
    /// Resources this application could still get (headroom).
    pub limit: Resource,
    pub num_cluster_nodes: u32,
}

impl Allocation {
    fn absorb(&mut self, response: AllocateResponse) {
        self.allocated.extend(response.allocated);
        self.completed.extend(response.completed);
        if response.preemption.is_some() {
            self.preemption = response.preemption;
        }
        self.limit = response.limit;
        self.num_cluster_nodes = response.num_cluster_nodes;
    }

    /// True when nothing was allocated or completed.
    pub fn is_quiet(&self) -> bool {
        self.allocated.is_empty() && self.completed.is_empty()
    }
}

/// An AM's connection to the ResourceManager.
///
/// Keeps the asks table and pending releases, tracks the allocate `response_id`, retries a
/// request whose response was lost with the same id (the RM then replays its answer), and
/// transparently re-registers and re-sends every outstanding ask when the RM has lost this AM
/// (RESYNC, or `WEFT-AM-NOT-REGISTERED` after an RM restart or failover).
pub struct AmRmClient {
    endpoint: Endpoint,
    long_poll: Duration,
    /// Kept to register again on resync.
    registration: Option<RegisterAmRequest>,
    asks: AskTable,
    /// Releases not yet acknowledged by an allocate response.
    pending_releases: BTreeSet<ContainerId>,
    /// A request sent without learning whether the RM acted on it: it is sent again unchanged,
    /// so that the RM can replay its answer.
    unanswered: Option<AllocateRequest>,
    last_response_id: u64,
    /// Set by a resync: the RM lost every ask, so the next request carries the whole table.
    resend_all_asks: bool,
}

impl AmRmClient {
    pub fn new(rm_addresses: Vec<String>, am_token: String) -> Result<Self, SdkError> {
        let endpoint =
            Endpoint::new(http_client()?, &rm_addresses, RetryPolicy::default())?.with_bearer_token(am_token);
        Ok(Self {
            endpoint,
            long_poll: DEFAULT_LONG_POLL,
            registration: None,
            asks: AskTable::default(),
            pending_releases: BTreeSet::new(),
            unanswered: None,
            last_response_id: 0,
            resend_all_asks: false,
        })
    }

    /// Reads `WEFT_RM_ADDRESSES` and `WEFT_AM_TOKEN`, which the RM puts into the AM container.
    pub fn from_env() -> Result<Self, SdkError> {
        let var = |name: &'static str| std::env::var(name).map_err(|_| SdkError::MissingEnv { name });
        let addresses = var(am_env::RM_ADDRESSES)?.split(',').map(str::to_owned).collect();
        Self::new(addresses, var(am_env::AM_TOKEN)?)
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.endpoint.set_policy(policy);
        self
    }

    /// How long the RM may hold an allocate call when nothing has happened (0: answer at once).
    pub fn with_long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait;
        self
    }

    pub async fn register(&mut self, request: RegisterAmRequest) -> Result<RegisterAmResponse, SdkError> {
        let response = self.send_registration(&request).await?;
        self.registration = Some(request);
        Ok(response)
    }

    /// Adds `count` containers to what is outstanding at `ask`.
    pub fn add_request(&mut self, ask: &ContainerAsk, count: u32) {
        let total = self.asks.outstanding(ask).saturating_add(count);
        self.asks.set(ask, total);
    }

    /// Withdraws up to `count` outstanding containers at `ask`.
    pub fn remove_request(&mut self, ask: &ContainerAsk, count: u32) {
        let total = self.asks.outstanding(ask).saturating_sub(count);
        self.asks.set(ask, total);
    }

    /// Asks for `count` containers that the RM allocates all together or not at all (a gang).
    /// They arrive in one allocate response.
    pub fn set_gang_request(&mut self, ask: &ContainerAsk, count: u32) {
        self.asks.set_gang(ask, count);
    }

    /// Sets the number of containers still wanted at `ask`, YARN-style.
    pub fn set_outstanding(&mut self, ask: &ContainerAsk, total: u32) {
        self.asks.set(ask, total);
    }

    /// Containers wanted at `ask` and not yet allocated, as far as this client knows.
    pub fn outstanding(&self, ask: &ContainerAsk) -> u32 {
        self.asks.outstanding(ask)
    }

    /// Gives a container back to the RM with the next allocate call.
    pub fn release(&mut self, container: ContainerId) {
        self.pending_releases.insert(container);
    }

    /// One heartbeat: sends changed asks and pending releases, reports `progress` (0.0–1.0)
    /// and returns what the RM allocated and what completed. Fails with
    /// [`SdkError::ShutdownRequested`] when the RM ended this attempt.
    pub async fn allocate(&mut self, progress: f32) -> Result<Allocation, SdkError> {
        let mut allocation = Allocation::default();
        let mut resyncs = Resyncs::default();
        loop {
            let request = match self.unanswered.take() {
                Some(request) => request,
                None => self.next_request(progress),
            };
            let http_request = Request::post(AM_ALLOCATE_PATH).json_body(&request)?.long_poll(self.long_poll);
            let response: AllocateResponse = match self.endpoint.call_json(&http_request).await {
                Ok(response) => response,
                Err(error) if error.code() == Some(ErrorCode::AmNotRegistered) => {
                    resyncs.count()?;
                    self.resync().await?;
                    continue;
                }
                Err(error @ (ClientError::Remote { .. } | ClientError::Status { .. })) => {
                    // Refused, so not applied: its asks are still news for the RM.
                    self.asks.mark_changed(&request.asks);
                    return Err(error.into());
                }
                Err(error) => {
                    // The RM may have acted on it: only this exact request may be sent next.
                    self.unanswered = Some(request);
                    return Err(error.into());
                }
            };
            self.last_response_id = response.response_id;
            for container in &response.allocated {
                self.asks.on_allocated(container);
            }
            let command = response.am_command;
            allocation.absorb(response);
            match command {
                None => {
                    for id in &request.releases {
                        self.pending_releases.remove(id);
                    }
                    return Ok(allocation);
                }
                Some(AmCommand::Shutdown) => return Err(SdkError::ShutdownRequested),
                Some(AmCommand::Resync) => {
                    resyncs.count()?;
                    self.resync().await?;
                }
            }
        }
    }

    /// Unregisters with `final_status`, polling until the RM confirms (it may first need to
    /// persist the outcome). Gives up after the retry policy's deadline.
    pub async fn finish(&mut self, final_status: FinalStatus, diagnostics: impl Into<String>) -> Result<(), SdkError> {
        let request = FinishAmRequest { final_status, diagnostics: diagnostics.into(), tracking_url: String::new() };
        let http_request = Request::post(AM_FINISH_PATH).json_body(&request)?;
        let started = Instant::now();
        let mut resyncs = Resyncs::default();
        loop {
            match self.endpoint.call_json::<FinishAmResponse>(&http_request).await {
                Ok(response) if response.is_unregistered => return Ok(()),
                Ok(_) => {}
                Err(error) if error.code() == Some(ErrorCode::AmNotRegistered) => {
                    resyncs.count()?;
                    self.send_registration_again().await?;
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
            let elapsed = started.elapsed();
            if elapsed >= self.endpoint.policy().deadline {
                return Err(SdkError::Incomplete { what: "unregistering the ApplicationMaster".into(), elapsed });
            }
            tokio::time::sleep(FINISH_POLL_INTERVAL).await;
        }
    }

    fn next_request(&mut self, progress: f32) -> AllocateRequest {
        let asks =
            if std::mem::take(&mut self.resend_all_asks) { self.asks.take_all() } else { self.asks.take_changed() };
        AllocateRequest {
            response_id: self.last_response_id,
            asks,
            releases: self.pending_releases.iter().copied().collect(),
            progress,
            wait_ms: u64::try_from(self.long_poll.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Registers again and queues every outstanding ask; the RM starts a new response sequence.
    async fn resync(&mut self) -> Result<(), SdkError> {
        tracing::info!("the ResourceManager lost this ApplicationMaster; registering again");
        self.send_registration_again().await?;
        self.last_response_id = 0;
        self.unanswered = None;
        self.resend_all_asks = true;
        Ok(())
    }

    async fn send_registration_again(&self) -> Result<RegisterAmResponse, SdkError> {
        let request = self.registration.as_ref().ok_or(SdkError::NotRegistered)?;
        self.send_registration(request).await
    }

    async fn send_registration(&self, request: &RegisterAmRequest) -> Result<RegisterAmResponse, SdkError> {
        Ok(self.endpoint.call_json(&Request::post(AM_REGISTER_PATH).json_body(request)?).await?)
    }
}

/// Resyncs within one call, to tell a resync loop (re-registering does not satisfy the RM) from
/// separate RM failovers during a long retry.
#[derive(Default)]
struct Resyncs {
    in_a_row: u32,
    last: Option<Instant>,
}

impl Resyncs {
    fn count(&mut self) -> Result<(), SdkError> {
        let now = Instant::now();
        let quick = self.last.is_some_and(|last| now.duration_since(last) < RESYNC_LOOP_WINDOW);
        self.in_a_row = if quick { self.in_a_row + 1 } else { 1 };
        self.last = Some(now);
        if self.in_a_row > MAX_CONSECUTIVE_RESYNCS {
            return Err(SdkError::ResyncLoop { times: self.in_a_row });
        }
        Ok(())
    }
}
