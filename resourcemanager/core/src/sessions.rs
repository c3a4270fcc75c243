//! The AM sessions part: what the RM holds for the ApplicationMaster of each live attempt and
//! nothing else knows: whether it registered with this incarnation, the allocate protocol's
//! response ids and last response (for retries), what waits to be delivered, a long-polled
//! allocate, and the containers it is told are being preempted.
//!
//! None of it is durable: an attempt recovered after a failover gets a fresh session, and its
//! AM registers again. A session opens when its attempt starts (or is recovered) and closes
//! when the attempt ends.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasherDefault;

use weft_common::protocol::{AllocateResponse, AmCommand, Container, ContainerStatus, PreemptionMessage};
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, Resource};

use crate::IdHasher;
use crate::effects::ReqId;

/// The AM side of one live attempt.
#[derive(Debug, Clone)]
pub struct AmSession {
    attempt: AttemptId,
    registered: bool,
    /// Id of the last allocate response sent, and the response itself for duplicate requests.
    response_id: u64,
    last_response: Option<AllocateResponse>,
    /// Not yet delivered to the AM.
    outbox_allocated: Vec<Container>,
    outbox_completed: Vec<ContainerStatus>,
    /// A long-polled allocate waiting for something to deliver, and when it must be answered.
    parked: Option<(ReqId, Millis)>,
    /// Containers of this attempt marked for preemption; repeated in every allocate response.
    preempting: BTreeSet<ContainerId>,
    /// A mark the AM has not been told about yet (wakes a long-polled allocate).
    preemption_news: bool,
}

impl AmSession {
    fn new(attempt: AttemptId) -> Self {
        Self {
            attempt,
            registered: false,
            response_id: 0,
            last_response: None,
            outbox_allocated: Vec::new(),
            outbox_completed: Vec::new(),
            parked: None,
            preempting: BTreeSet::new(),
            preemption_news: false,
        }
    }

    pub fn attempt(&self) -> AttemptId {
        self.attempt
    }

    /// Whether the AM registered with this RM incarnation.
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// Id of the last allocate response sent (0 before the first).
    pub fn response_id(&self) -> u64 {
        self.response_id
    }

    pub fn last_response(&self) -> Option<&AllocateResponse> {
        self.last_response.as_ref()
    }

    /// Takes what the outboxes hold into a new allocate response.
    fn respond(&mut self, limit: Resource, num_cluster_nodes: u32, am_command: Option<AmCommand>) -> AllocateResponse {
        self.response_id += 1;
        self.preemption_news = false;
        let preemption = (!self.preempting.is_empty())
            .then(|| PreemptionMessage { strict: self.preempting.iter().copied().collect(), ..Default::default() });
        let resp = AllocateResponse {
            response_id: self.response_id,
            allocated: std::mem::take(&mut self.outbox_allocated),
            completed: std::mem::take(&mut self.outbox_completed),
            limit,
            num_cluster_nodes,
            preemption,
            am_command,
        };
        self.last_response = Some(resp.clone());
        resp
    }

    fn has_news(&self) -> bool {
        !self.outbox_allocated.is_empty() || !self.outbox_completed.is_empty()
    }
}

/// What happens to an allocate: answered now, or held until there is news or its deadline.
#[derive(Debug)]
pub(crate) enum Answer {
    Now(AllocateResponse),
    Parked,
}

/// Every open AM session, by application (only an app's current attempt has one).
#[derive(Debug, Default)]
pub struct AmSessions {
    /// Looked up on every allocation and completion; never iterated in an order that matters.
    by_app: HashMap<ApplicationId, AmSession, BuildHasherDefault<IdHasher>>,
}

impl AmSessions {
    /// Opens the session of a live attempt, replacing its predecessor's.
    pub(crate) fn open(&mut self, attempt: AttemptId) {
        self.by_app.insert(attempt.app, AmSession::new(attempt));
    }

    /// Closes the session of `app`'s attempt as the attempt ends. A parked allocate is answered
    /// with `am_command` (the AM is told to shut down); what was not delivered is dropped.
    pub(crate) fn close(
        &mut self,
        app: ApplicationId,
        limit: Resource,
        num_cluster_nodes: u32,
        am_command: AmCommand,
    ) -> Option<(ReqId, AllocateResponse)> {
        let mut session = self.by_app.remove(&app)?;
        let (req, _) = session.parked.take()?;
        Some((req, session.respond(limit, num_cluster_nodes, Some(am_command))))
    }

    /// The open session of `attempt`, if it is the current one.
    pub fn get(&self, attempt: AttemptId) -> Option<&AmSession> {
        self.by_app.get(&attempt.app).filter(|s| s.attempt == attempt)
    }

    fn get_mut(&mut self, attempt: AttemptId) -> Option<&mut AmSession> {
        self.by_app.get_mut(&attempt.app).filter(|s| s.attempt == attempt)
    }

    /// The AM of `attempt` registered; false if the attempt has no open session.
    pub(crate) fn register(&mut self, attempt: AttemptId) -> bool {
        self.get_mut(attempt).map(|s| s.registered = true).is_some()
    }

    /// Drops a long poll the AM gave up on (it asked again); returns it and the response id it
    /// was waiting past, to answer it with an error.
    pub(crate) fn abandon_parked(&mut self, attempt: AttemptId) -> Option<(ReqId, u64)> {
        let session = self.get_mut(attempt)?;
        let (req, _) = session.parked.take()?;
        Some((req, session.response_id))
    }

    /// Answers an allocate now if there is something to deliver or it may not wait (`deadline`
    /// None); otherwise parks it until `deadline`. None if `attempt` has no open session.
    pub(crate) fn answer_or_park(
        &mut self,
        attempt: AttemptId,
        req: ReqId,
        deadline: Option<Millis>,
        limit: Resource,
        num_cluster_nodes: u32,
    ) -> Option<Answer> {
        let session = self.get_mut(attempt)?;
        Some(match deadline {
            Some(deadline) if !session.has_news() => {
                session.parked = Some((req, deadline));
                Answer::Parked
            }
            _ => Answer::Now(session.respond(limit, num_cluster_nodes, None)),
        })
    }

    /// Whether `app`'s AM has a parked allocate and something new to be told.
    pub(crate) fn wants_waking(&self, app: ApplicationId) -> bool {
        self.by_app.get(&app).is_some_and(|s| s.parked.is_some() && (s.has_news() || s.preemption_news))
    }

    /// Answers `app`'s parked allocate, if any.
    pub(crate) fn answer_parked(
        &mut self,
        app: ApplicationId,
        limit: Resource,
        num_cluster_nodes: u32,
    ) -> Option<(ReqId, AllocateResponse)> {
        let session = self.by_app.get_mut(&app)?;
        let (req, _) = session.parked.take()?;
        Some((req, session.respond(limit, num_cluster_nodes, None)))
    }

    /// Whether `app`'s parked allocate has waited until its deadline.
    pub(crate) fn poll_due(&self, app: ApplicationId, now: Millis) -> bool {
        self.by_app.get(&app).and_then(|s| s.parked).is_some_and(|(_, deadline)| deadline <= now)
    }

    /// Queues a container allocated to `attempt` for its AM's next response.
    pub(crate) fn deliver_allocated(&mut self, attempt: AttemptId, container: Container) {
        if let Some(s) = self.get_mut(attempt) {
            s.outbox_allocated.push(container);
        }
    }

    /// Queues the completion of one of `attempt`'s containers for its AM's next response.
    pub(crate) fn deliver_completed(&mut self, attempt: AttemptId, status: ContainerStatus) {
        if let Some(s) = self.get_mut(attempt) {
            s.outbox_completed.push(status);
        }
    }

    /// Tells `app`'s AM (in every response from now on) that `container` is being preempted.
    pub(crate) fn mark_preempting(&mut self, app: ApplicationId, container: ContainerId) {
        if let Some(s) = self.by_app.get_mut(&app) {
            s.preempting.insert(container);
            s.preemption_news = true;
        }
    }

    pub(crate) fn unmark_preempting(&mut self, app: ApplicationId, container: ContainerId) {
        if let Some(s) = self.by_app.get_mut(&app) {
            s.preempting.remove(&container);
        }
    }

    /// Every open session, for the invariant checker.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &AmSession> {
        self.by_app.values()
    }
}
