//! The timers part: the deadline queues the `Tick` event acts on, so a tick looks only at what
//! is due instead of scanning every node, application and container (at 50k nodes and 2M
//! containers a scan per tick would cost more than the rest of the scheduler).
//!
//! Entries are hints: the heartbeat or state change that moves a deadline does not touch the
//! queue. When an entry comes due, the core checks the real state and either acts or queues the
//! entry again at its real due time. So each deadline costs O(log n) once per expiry period,
//! not per heartbeat.

use weft_common::deadlines::Deadlines;
use weft_common::{ApplicationId, AttemptId, ContainerId, Millis, NodeId};

use crate::CoreSettings;

/// The core's deadline queues, and how long each kind of silence may last.
#[derive(Debug)]
pub(crate) struct Timers {
    nm_expiry_ms: u64,
    am_expiry_ms: u64,
    container_allocation_expiry_ms: u64,
    finished_app_container_grace_ms: u64,
    node_expiry: Deadlines<NodeId>,
    am_expiry: Deadlines<AttemptId>,
    allocation_expiry: Deadlines<ContainerId>,
    /// Finished apps whose AM container may outstay its grace period.
    draining_apps: Deadlines<ApplicationId>,
    long_polls: Deadlines<ApplicationId>,
}

impl Timers {
    pub(crate) fn new(settings: &CoreSettings) -> Self {
        Self {
            nm_expiry_ms: settings.nm_expiry_ms,
            am_expiry_ms: settings.am_expiry_ms,
            container_allocation_expiry_ms: settings.container_allocation_expiry_ms,
            finished_app_container_grace_ms: settings.finished_app_container_grace_ms,
            node_expiry: Deadlines::default(),
            am_expiry: Deadlines::default(),
            allocation_expiry: Deadlines::default(),
            draining_apps: Deadlines::default(),
            long_polls: Deadlines::default(),
        }
    }

    /// When a node last heard from at `last_heartbeat` is LOST.
    pub(crate) fn node_expires(&self, last_heartbeat: Millis) -> Millis {
        last_heartbeat + self.nm_expiry_ms + 1
    }

    /// When an AM last heard from at `last_heartbeat` fails its attempt.
    pub(crate) fn am_expires(&self, last_heartbeat: Millis) -> Millis {
        last_heartbeat + self.am_expiry_ms + 1
    }

    /// Node `id` was heard from at `at` (it registered), or is not yet due at `at`.
    pub(crate) fn watch_node(&mut self, id: NodeId, last_heartbeat: Millis) {
        self.node_expiry.push(self.node_expires(last_heartbeat), id);
    }

    pub(crate) fn due_nodes(&mut self, now: Millis) -> Vec<NodeId> {
        self.node_expiry.pop_due(now)
    }

    /// The AM of `attempt` was heard from at `last_heartbeat` (its container was allocated, or
    /// it was recovered), or is not yet due.
    pub(crate) fn watch_am(&mut self, attempt: AttemptId, last_heartbeat: Millis) {
        self.am_expiry.push(self.am_expires(last_heartbeat), attempt);
    }

    pub(crate) fn due_ams(&mut self, now: Millis) -> Vec<AttemptId> {
        self.am_expiry.pop_due(now)
    }

    /// Container `id` was allocated at `at`: reclaimed if its NM has not reported it in time.
    pub(crate) fn watch_allocation(&mut self, id: ContainerId, at: Millis) {
        self.allocation_expiry.push(at + self.container_allocation_expiry_ms + 1, id);
    }

    pub(crate) fn due_allocations(&mut self, now: Millis) -> Vec<ContainerId> {
        self.allocation_expiry.pop_due(now)
    }

    /// App `id` finished at `at` with containers left: those still alive after the grace period
    /// are stopped.
    pub(crate) fn watch_draining(&mut self, id: ApplicationId, at: Millis) {
        self.draining_apps.push(at + self.finished_app_container_grace_ms + 1, id);
    }

    pub(crate) fn due_draining(&mut self, now: Millis) -> Vec<ApplicationId> {
        self.draining_apps.pop_due(now)
    }

    /// App `id`'s AM long-polls until `deadline`.
    pub(crate) fn watch_long_poll(&mut self, id: ApplicationId, deadline: Millis) {
        self.long_polls.push(deadline, id);
    }

    pub(crate) fn due_long_polls(&mut self, now: Millis) -> Vec<ApplicationId> {
        self.long_polls.pop_due(now)
    }
}
