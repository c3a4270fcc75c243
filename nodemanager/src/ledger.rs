//! What a NodeManager remembers about its containers and applications, and when it forgets.
//!
//! A completed container is reported to the RM until the RM acknowledges it, then kept for the
//! retention period (its status stays queryable, and a replayed start of it is refused as a
//! duplicate), then forgotten. An application's directories are kept until the RM names it
//! finished; its work dirs are deleted `work_dirs_ms` later and its log dirs `log_dirs_ms`
//! later, but never while a container of it is live on this node. The heartbeat and the
//! allocation total read only the live and the unacknowledged containers, so their cost does not
//! grow with the number of containers that ever ran here.
//!
//! Sans-IO: every call is passed the time (milliseconds on the NM's monotonic clock) and
//! [`Ledger::due`] says what to forget and what to delete; the container manager does the I/O.

use std::collections::{BTreeMap, BTreeSet};

use weft_common::deadlines::Deadlines;
use weft_common::{ApplicationId, ContainerId, Millis, Resource};

/// How long finished work is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// A completed container is forgotten this long after the RM acknowledged it.
    pub completed_ms: Millis,
    /// A finished application's work dirs are deleted this long after the RM named it finished.
    pub work_dirs_ms: Millis,
    /// A finished application's log dirs are deleted this long after the RM named it finished.
    pub log_dirs_ms: Millis,
}

/// The two directory trees an application has on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DirKind {
    /// `<work-dir>/<app>`: the containers' working directories and localized resources.
    Work,
    /// `<log-dir>/<app>`: the containers' stdout, stderr and other log files.
    Logs,
}

/// Why a container may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefused {
    /// The id is live or still remembered.
    Duplicate,
    /// The RM named its application finished; its directories are being cleaned up.
    AppFinished,
}

/// What [`Ledger::due`] hands to the owner: values to drop and directories to delete. The owner
/// reports each deletion back with [`Ledger::deleted`].
#[derive(Debug, PartialEq, Eq)]
pub struct Due<V> {
    pub forgotten: Vec<V>,
    pub delete: Vec<(DirKind, ApplicationId)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    Forget(ContainerId),
    Delete(DirKind, ApplicationId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Launching or running.
    Live,
    /// Completed; reported to the RM until it acknowledges.
    Unacked,
    /// Completed and acknowledged; forgotten when its deadline comes.
    Acked,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    app: ApplicationId,
    resource: Resource,
    phase: Phase,
    /// Until when a start request for this id may still carry a valid token: the entry is not
    /// forgotten before, so a replayed start is refused rather than run a second time.
    token_expires: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleanup {
    /// Delete at this time, or once the last live container of the app completed if later.
    At(Millis),
    /// Handed to the owner by [`Ledger::due`].
    Deleting,
    Done,
}

#[derive(Debug, Default)]
struct App {
    /// Live containers of the app on this node.
    live: usize,
    /// Work and log dirs, once the RM named the app finished.
    finished: Option<[Cleanup; 2]>,
}

fn slot(kind: DirKind) -> usize {
    match kind {
        DirKind::Work => 0,
        DirKind::Logs => 1,
    }
}

/// The containers a node remembers (each with a value `V`, the manager's record of it) and the
/// applications it holds directories for.
#[derive(Debug)]
pub struct Ledger<V> {
    policy: RetentionPolicy,
    containers: BTreeMap<ContainerId, Entry<V>>,
    live: BTreeSet<ContainerId>,
    unacked: BTreeSet<ContainerId>,
    apps: BTreeMap<ApplicationId, App>,
    deadlines: Deadlines<Job>,
    allocated: Resource,
}

impl<V> Ledger<V> {
    pub fn new(policy: RetentionPolicy) -> Self {
        Self {
            policy,
            containers: BTreeMap::new(),
            live: BTreeSet::new(),
            unacked: BTreeSet::new(),
            apps: BTreeMap::new(),
            deadlines: Deadlines::default(),
            allocated: Resource::ZERO,
        }
    }

    /// Directories of `app` exist on this node although no container of it is known (left by
    /// an earlier NM incarnation): hold them until the RM names the app finished.
    pub fn found_dirs(&mut self, app: ApplicationId) {
        self.apps.entry(app).or_default();
    }

    /// A container starts (live from now on); `token_expires` is when its start token expires.
    pub fn start(
        &mut self,
        id: ContainerId,
        resource: Resource,
        token_expires: Millis,
        value: V,
    ) -> Result<(), StartRefused> {
        if self.containers.contains_key(&id) {
            return Err(StartRefused::Duplicate);
        }
        let app = self.apps.entry(id.app()).or_default();
        if app.finished.is_some() {
            return Err(StartRefused::AppFinished);
        }
        app.live += 1;
        self.containers.insert(id, Entry { value, app: id.app(), resource, phase: Phase::Live, token_expires });
        self.live.insert(id);
        self.allocated += resource;
        Ok(())
    }

    /// A live container completed: it is reported until the RM acknowledges it.
    pub fn complete(&mut self, id: ContainerId, now: Millis) {
        let Some(entry) = self.containers.get_mut(&id).filter(|e| e.phase == Phase::Live) else { return };
        entry.phase = Phase::Unacked;
        self.live.remove(&id);
        self.unacked.insert(id);
        self.allocated -= entry.resource;
        let app_id = entry.app;
        let Some(app) = self.apps.get_mut(&app_id) else { return };
        app.live -= 1;
        // Deletions that came due while this container ran were put off until now.
        if app.live == 0 {
            for kind in [DirKind::Work, DirKind::Logs] {
                if let Some(Cleanup::At(at)) = app.finished.map(|f| f[slot(kind)]) {
                    self.deadlines.push(at.max(now), Job::Delete(kind, app_id));
                }
            }
        }
    }

    /// The RM recorded this completed container: stop reporting it, forget it after retention.
    /// Returns whether that scheduled anything.
    pub fn acknowledged(&mut self, id: ContainerId, now: Millis) -> bool {
        let Some(entry) = self.containers.get_mut(&id).filter(|e| e.phase == Phase::Unacked) else { return false };
        entry.phase = Phase::Acked;
        self.unacked.remove(&id);
        let forget_at = (now + self.policy.completed_ms).max(entry.token_expires);
        self.deadlines.push(forget_at, Job::Forget(id));
        true
    }

    /// The RM considers `app` finished (or does not know it): schedule the deletion of its
    /// directories. Returns whether that scheduled anything.
    pub fn app_finished(&mut self, app_id: ApplicationId, now: Millis) -> bool {
        let Some(app) = self.apps.get_mut(&app_id).filter(|a| a.finished.is_none()) else { return false };
        let work_at = now + self.policy.work_dirs_ms;
        let logs_at = now + self.policy.log_dirs_ms;
        app.finished = Some([Cleanup::At(work_at), Cleanup::At(logs_at)]);
        self.deadlines.push(work_at, Job::Delete(DirKind::Work, app_id));
        self.deadlines.push(logs_at, Job::Delete(DirKind::Logs, app_id));
        true
    }

    /// Pops what is due at `now`: acknowledged containers whose retention ended, and directories
    /// of finished applications with no live container here.
    pub fn due(&mut self, now: Millis) -> Due<V> {
        let mut due = Due { forgotten: Vec::new(), delete: Vec::new() };
        for job in self.deadlines.pop_due(now) {
            match job {
                Job::Forget(id) => {
                    if self.containers.get(&id).is_some_and(|e| e.phase == Phase::Acked)
                        && let Some(entry) = self.containers.remove(&id)
                    {
                        due.forgotten.push(entry.value);
                    }
                }
                Job::Delete(kind, app_id) => {
                    let Some(app) = self.apps.get_mut(&app_id) else { continue };
                    // A live container defers the deletion until it completes (see `complete`).
                    if app.live > 0 {
                        continue;
                    }
                    if let Some(cleanup) = app.finished.as_mut().map(|f| &mut f[slot(kind)])
                        && matches!(*cleanup, Cleanup::At(at) if at <= now)
                    {
                        *cleanup = Cleanup::Deleting;
                        due.delete.push((kind, app_id));
                    }
                }
            }
        }
        due
    }

    /// The owner deleted (or gave up deleting) a directory [`Self::due`] handed out. Once both
    /// are gone the app is forgotten too.
    pub fn deleted(&mut self, kind: DirKind, app_id: ApplicationId) {
        let Some(app) = self.apps.get_mut(&app_id) else { return };
        if let Some(finished) = app.finished.as_mut() {
            finished[slot(kind)] = Cleanup::Done;
            if finished.iter().all(|c| *c == Cleanup::Done) && app.live == 0 {
                self.apps.remove(&app_id);
            }
        }
    }

    /// When the next deadline comes, if any.
    pub fn next_due(&self) -> Option<Millis> {
        self.deadlines.next_due()
    }

    pub fn get(&self, id: ContainerId) -> Option<&V> {
        self.containers.get(&id).map(|e| &e.value)
    }

    /// What the heartbeat reports: live containers, then completed ones the RM has not
    /// acknowledged yet.
    pub fn reported(&self) -> impl Iterator<Item = &V> {
        self.live.iter().chain(&self.unacked).filter_map(|id| self.get(*id))
    }

    pub fn live(&self) -> impl Iterator<Item = &V> {
        self.live.iter().filter_map(|id| self.get(*id))
    }

    /// Every container remembered: live, unacknowledged and retained.
    pub fn all(&self) -> impl Iterator<Item = &V> {
        self.containers.values().map(|e| &e.value)
    }

    pub fn remembered(&self) -> usize {
        self.containers.len()
    }

    /// Applications this node holds directories for that the RM has not named finished yet.
    pub fn apps_with_dirs(&self) -> Vec<ApplicationId> {
        self.apps.iter().filter(|(_, app)| app.finished.is_none()).map(|(id, _)| *id).collect()
    }

    /// Resources of the live containers.
    pub fn allocated(&self) -> Resource {
        self.allocated
    }
}

#[cfg(test)]
mod tests {
    use weft_common::AttemptId;

    use super::*;

    const POLICY: RetentionPolicy = RetentionPolicy { completed_ms: 600_000, work_dirs_ms: 0, log_dirs_ms: 10_800_000 };
    const R: Resource = Resource::new(128, 1);

    fn app(seq: u32) -> ApplicationId {
        ApplicationId { cluster_ts: 1, seq }
    }

    fn container(app_seq: u32, seq: u64) -> ContainerId {
        ContainerId { attempt: AttemptId::new(app(app_seq), 1), epoch: 0, seq }
    }

    fn ids<'a>(values: impl Iterator<Item = &'a ContainerId>) -> Vec<ContainerId> {
        values.copied().collect()
    }

    fn ledger() -> Ledger<ContainerId> {
        Ledger::new(POLICY)
    }

    fn nothing() -> Due<ContainerId> {
        Due { forgotten: vec![], delete: vec![] }
    }

    #[test]
    fn completed_containers_are_reported_until_acked_then_retained_then_forgotten() {
        let mut l = ledger();
        let (a, b) = (container(1, 1), container(1, 2));
        l.start(a, R, 0, a).unwrap();
        l.start(b, R, 0, b).unwrap();
        assert_eq!(l.allocated(), R + R);
        l.complete(a, 1_000);
        assert_eq!(l.allocated(), R);
        assert_eq!(ids(l.reported()), vec![b, a], "live first, then unacknowledged");
        assert_eq!(ids(l.live()), vec![b]);

        // Not acknowledged: reported and remembered however long it takes.
        assert_eq!(l.due(10_000_000), nothing());
        assert_eq!(ids(l.reported()), vec![b, a]);
        assert!(!l.acknowledged(b, 2_000), "a live container cannot be acknowledged");

        assert!(l.acknowledged(a, 2_000));
        assert!(!l.acknowledged(a, 2_000), "only once");
        assert_eq!(ids(l.reported()), vec![b]);
        assert_eq!(l.get(a), Some(&a), "still queryable during retention");
        assert_eq!(l.next_due(), Some(602_000));
        assert_eq!(l.due(601_999), nothing());
        assert_eq!(l.start(a, R, 0, a), Err(StartRefused::Duplicate));
        assert_eq!(l.due(602_000), Due { forgotten: vec![a], delete: vec![] });
        assert_eq!((l.get(a), l.remembered(), l.next_due()), (None, 1, None));
    }

    #[test]
    fn an_unexpired_start_token_keeps_a_container_remembered() {
        let mut l = ledger();
        let a = container(1, 1);
        l.start(a, R, 900_000, a).unwrap();
        l.complete(a, 10);
        l.acknowledged(a, 20);
        assert_eq!(l.due(600_020), nothing(), "retention is over but the token is still valid");
        assert_eq!(l.start(a, R, 0, a), Err(StartRefused::Duplicate));
        assert_eq!(l.due(900_000).forgotten, vec![a]);
    }

    #[test]
    fn heartbeat_cost_follows_live_and_unacked_containers_only() {
        let mut l = Ledger::new(RetentionPolicy { completed_ms: 1_000, ..POLICY });
        let long = container(1, 0);
        l.start(long, R, 0, long).unwrap();
        for seq in 1..=10_000 {
            let c = container(1, seq);
            l.start(c, R, 0, c).unwrap();
            l.complete(c, seq);
            l.acknowledged(c, seq);
        }
        assert_eq!(ids(l.reported()), vec![long]);
        assert_eq!(l.allocated(), R);
        assert_eq!(l.remembered(), 10_001);
        assert_eq!(l.due(20_000).forgotten.len(), 10_000);
        assert_eq!(l.remembered(), 1);
    }

    #[test]
    fn finished_app_dirs_are_deleted_after_their_delays() {
        let mut l = Ledger::new(RetentionPolicy { completed_ms: 0, work_dirs_ms: 50, log_dirs_ms: 500 });
        let (a, other) = (container(1, 1), container(2, 1));
        l.start(a, R, 0, a).unwrap();
        l.start(other, R, 0, other).unwrap();
        l.complete(a, 10);
        assert_eq!(l.apps_with_dirs(), vec![app(1), app(2)]);
        assert!(!l.app_finished(app(9), 20), "an app without dirs here needs nothing");

        assert!(l.app_finished(app(1), 100));
        assert!(!l.app_finished(app(1), 101), "the first finish counts");
        assert_eq!(l.apps_with_dirs(), vec![app(2)], "the RM need not name it again");
        assert_eq!(l.start(container(1, 2), R, 0, container(1, 2)), Err(StartRefused::AppFinished));
        assert_eq!(l.due(149).delete, vec![]);
        assert_eq!(l.due(150).delete, vec![(DirKind::Work, app(1))]);
        assert_eq!(l.due(599).delete, vec![]);
        l.deleted(DirKind::Work, app(1));
        assert_eq!(l.due(600).delete, vec![(DirKind::Logs, app(1))]);
        assert_eq!(l.start(container(1, 3), R, 0, container(1, 3)), Err(StartRefused::AppFinished));
        l.deleted(DirKind::Logs, app(1));
        assert!(l.next_due().is_none());
        // Forgotten entirely: a (stale) start makes the app's dirs exist again, so they are held
        // and reported again.
        l.start(container(1, 4), R, 0, container(1, 4)).unwrap();
        assert_eq!(l.apps_with_dirs(), vec![app(1), app(2)]);
    }

    #[test]
    fn dirs_are_not_deleted_while_a_container_of_the_app_is_live() {
        let mut l = ledger();
        let (a, b) = (container(1, 1), container(1, 2));
        l.start(a, R, 0, a).unwrap();
        l.start(b, R, 0, b).unwrap();
        l.complete(a, 10);
        l.app_finished(app(1), 100);
        assert_eq!(l.due(10_000_000), nothing(), "b still runs");
        l.complete(b, 20_000);
        assert_eq!(l.next_due(), Some(20_000), "the overdue work dirs are due at once");
        assert_eq!(l.due(20_000).delete, vec![(DirKind::Work, app(1))]);
        assert_eq!(l.next_due(), Some(10_800_100), "logs keep their own deadline");
        assert_eq!(l.due(10_800_100).delete, vec![(DirKind::Logs, app(1))]);
    }

    #[test]
    fn leftover_dirs_are_held_until_the_rm_names_the_app_finished() {
        let mut l = ledger();
        l.found_dirs(app(3));
        assert_eq!(l.apps_with_dirs(), vec![app(3)]);
        assert_eq!(l.due(1_000_000), nothing());
        l.app_finished(app(3), 5);
        let due = l.due(10_800_005);
        assert_eq!(due.delete, vec![(DirKind::Work, app(3)), (DirKind::Logs, app(3))]);
        l.deleted(DirKind::Work, app(3));
        l.deleted(DirKind::Logs, app(3));
        assert!(l.apps_with_dirs().is_empty());
    }
}
