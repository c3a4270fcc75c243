//! The distributed shell AM's bookkeeping, free of I/O: how many containers to ask for, which
//! allocations to launch or release, how each completion counts, and when the job is over.
//!
//! The job has N slots; each needs one container whose command exits 0. A container lost through
//! no fault of the command (its node died, it was released or preempted) is replaced. Any other
//! failure is final: no more containers are started, and once the running ones are done the
//! job fails, naming every failed container.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use weft_common::ContainerId;
use weft_common::protocol::ContainerStatus;
use weft_common::states::{FinalStatus, exit_status};

/// Longest piece of a container's diagnostics repeated in the job's diagnostics.
const DIAGNOSTICS_EXCERPT: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationDecision {
    Launch,
    /// Not needed (surplus, or the job is already failing): give it back.
    Release,
}

/// How a container's end counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerVerdict {
    Succeeded,
    /// Lost through no fault of the command; a replacement is asked for.
    Replaced,
    Failed,
    /// Not one of the job's running containers (released surplus, or already counted).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCause {
    Exited { status: i32, diagnostics: String },
    LaunchFailed { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFailure {
    pub container: ContainerId,
    pub cause: FailureCause,
}

/// What the AM reports when it unregisters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub final_status: FinalStatus,
    pub diagnostics: String,
}

#[derive(Debug)]
pub struct SlotTracker {
    wanted: u32,
    succeeded: u32,
    /// Asked for and not yet allocated.
    outstanding: u32,
    /// Allocated and kept: launching, running, or finished without the RM having said so.
    running: BTreeSet<ContainerId>,
    failures: Vec<ContainerFailure>,
    replaced: u32,
    preemption_noted: BTreeSet<ContainerId>,
}

impl SlotTracker {
    pub fn new(wanted: u32) -> Self {
        Self {
            wanted,
            succeeded: 0,
            outstanding: wanted,
            running: BTreeSet::new(),
            failures: Vec::new(),
            replaced: 0,
            preemption_noted: BTreeSet::new(),
        }
    }

    /// Containers to keep asking the RM for.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// Share of slots done, 0.0–1.0, as reported to the RM.
    pub fn progress(&self) -> f32 {
        if self.wanted == 0 { 1.0 } else { self.succeeded as f32 / self.wanted as f32 }
    }

    pub fn on_allocated(&mut self, container: ContainerId) -> AllocationDecision {
        if self.outstanding == 0 {
            return AllocationDecision::Release;
        }
        self.outstanding -= 1;
        self.running.insert(container);
        AllocationDecision::Launch
    }

    pub fn on_completed(&mut self, status: &ContainerStatus) -> ContainerVerdict {
        if !self.running.remove(&status.container_id) {
            return ContainerVerdict::Ignored;
        }
        match status.exit_status {
            exit_status::SUCCESS => {
                self.succeeded += 1;
                ContainerVerdict::Succeeded
            }
            exit_status::ABORTED | exit_status::PREEMPTED => self.replace(),
            status_code => self.fail(
                status.container_id,
                FailureCause::Exited { status: status_code, diagnostics: status.diagnostics.clone() },
            ),
        }
    }

    /// The NM did not start the container. `node_unreachable` means the node is gone rather
    /// than refusing this container, which counts as a lost container.
    pub fn on_launch_failed(
        &mut self,
        container: ContainerId,
        node_unreachable: bool,
        message: String,
    ) -> ContainerVerdict {
        if !self.running.remove(&container) {
            return ContainerVerdict::Ignored;
        }
        if node_unreachable { self.replace() } else { self.fail(container, FailureCause::LaunchFailed { message }) }
    }

    /// Of `containers` named in a preemption notice, those running here not noted before.
    pub fn note_preemption<'a>(&mut self, containers: impl IntoIterator<Item = &'a ContainerId>) -> Vec<ContainerId> {
        containers
            .into_iter()
            .filter(|id| self.running.contains(id) && self.preemption_noted.insert(**id))
            .copied()
            .collect()
    }

    /// The job's outcome once it is decided: every slot succeeded, or something failed and
    /// nothing is running any more.
    pub fn outcome(&self) -> Option<Outcome> {
        if self.succeeded >= self.wanted {
            let mut diagnostics = format!("all {} containers succeeded", self.wanted);
            if self.replaced > 0 {
                let _ = write!(diagnostics, " ({} lost containers were replaced)", self.replaced);
            }
            return Some(Outcome { final_status: FinalStatus::Succeeded, diagnostics });
        }
        if self.failures.is_empty() || !self.running.is_empty() {
            return None;
        }
        Some(Outcome { final_status: FinalStatus::Failed, diagnostics: self.failure_diagnostics() })
    }

    fn replace(&mut self) -> ContainerVerdict {
        self.replaced += 1;
        // A failing job starts nothing new, replacements included.
        if self.failures.is_empty() {
            self.outstanding += 1;
        }
        ContainerVerdict::Replaced
    }

    fn fail(&mut self, container: ContainerId, cause: FailureCause) -> ContainerVerdict {
        self.failures.push(ContainerFailure { container, cause });
        self.outstanding = 0;
        ContainerVerdict::Failed
    }

    /// `2 of 3 containers failed: container_… exit 1; container_… exit -104 (KILLED_EXCEEDED_PMEM)`,
    /// then one line of diagnostics per failed container that has any.
    fn failure_diagnostics(&self) -> String {
        let summaries: Vec<String> = self
            .failures
            .iter()
            .map(|failure| match &failure.cause {
                FailureCause::Exited { status, .. } => match exit_status::name(*status) {
                    Some(name) => format!("{} exit {status} ({name})", failure.container),
                    None => format!("{} exit {status}", failure.container),
                },
                FailureCause::LaunchFailed { .. } => format!("{} could not be launched", failure.container),
            })
            .collect();
        let mut text =
            format!("{} of {} containers failed: {}", self.failures.len(), self.wanted, summaries.join("; "));
        for failure in &self.failures {
            let detail = match &failure.cause {
                FailureCause::Exited { diagnostics, .. } => diagnostics,
                FailureCause::LaunchFailed { message } => message,
            };
            let detail = detail.trim();
            if !detail.is_empty() {
                let _ = write!(text, "\n{}: {}", failure.container, excerpt(detail));
            }
        }
        text
    }
}

fn excerpt(text: &str) -> String {
    if text.len() <= DIAGNOSTICS_EXCERPT {
        return text.to_owned();
    }
    format!("{}…", &text[..text.floor_char_boundary(DIAGNOSTICS_EXCERPT)])
}

#[cfg(test)]
mod tests {
    use weft_common::states::NmContainerState;
    use weft_common::{ApplicationId, AttemptId};

    use super::*;

    fn id(seq: u64) -> ContainerId {
        ContainerId { attempt: AttemptId::new(ApplicationId::new(1700000000000, 7), 1), epoch: 0, seq }
    }

    fn completed(seq: u64, exit: i32, diagnostics: &str) -> ContainerStatus {
        ContainerStatus {
            container_id: id(seq),
            state: NmContainerState::Complete,
            exit_status: exit,
            diagnostics: diagnostics.into(),
        }
    }

    #[test]
    fn all_slots_succeeding_finishes_the_job() {
        let mut slots = SlotTracker::new(2);
        assert_eq!(slots.outstanding(), 2);
        assert_eq!(slots.on_allocated(id(2)), AllocationDecision::Launch);
        assert_eq!(slots.on_allocated(id(3)), AllocationDecision::Launch);
        assert_eq!(slots.outstanding(), 0);
        assert_eq!(slots.on_completed(&completed(2, 0, "")), ContainerVerdict::Succeeded);
        assert_eq!(slots.progress(), 0.5);
        assert_eq!(slots.outcome(), None);
        slots.on_completed(&completed(3, 0, ""));
        let outcome = slots.outcome().unwrap();
        assert_eq!(outcome.final_status, FinalStatus::Succeeded);
        assert_eq!(outcome.diagnostics, "all 2 containers succeeded");
    }

    #[test]
    fn lost_and_preempted_containers_are_replaced() {
        let mut slots = SlotTracker::new(2);
        slots.on_allocated(id(2));
        slots.on_allocated(id(3));
        assert_eq!(slots.on_completed(&completed(2, exit_status::ABORTED, "node lost")), ContainerVerdict::Replaced);
        assert_eq!(slots.on_completed(&completed(3, exit_status::PREEMPTED, "")), ContainerVerdict::Replaced);
        assert_eq!(slots.outstanding(), 2);
        assert_eq!(slots.outcome(), None);
        slots.on_allocated(id(4));
        slots.on_allocated(id(5));
        slots.on_completed(&completed(4, 0, ""));
        slots.on_completed(&completed(5, 0, ""));
        let outcome = slots.outcome().unwrap();
        assert_eq!(outcome.final_status, FinalStatus::Succeeded);
        assert_eq!(outcome.diagnostics, "all 2 containers succeeded (2 lost containers were replaced)");
    }

    #[test]
    fn surplus_allocations_are_released_and_their_completion_ignored() {
        let mut slots = SlotTracker::new(1);
        assert_eq!(slots.on_allocated(id(2)), AllocationDecision::Launch);
        assert_eq!(slots.on_allocated(id(3)), AllocationDecision::Release);
        // The RM reports the released container as aborted: that must not ask for another.
        assert_eq!(slots.on_completed(&completed(3, exit_status::ABORTED, "released")), ContainerVerdict::Ignored);
        assert_eq!(slots.outstanding(), 0);
        assert_eq!(slots.on_completed(&completed(2, 0, "")), ContainerVerdict::Succeeded);
        assert_eq!(slots.on_completed(&completed(2, 0, "")), ContainerVerdict::Ignored, "counted once");
        assert_eq!(slots.outcome().unwrap().final_status, FinalStatus::Succeeded);
    }

    #[test]
    fn failures_wait_for_running_containers_then_fail_with_every_failure_named() {
        let mut slots = SlotTracker::new(3);
        for seq in 2..=4 {
            slots.on_allocated(id(seq));
        }
        assert_eq!(slots.on_completed(&completed(2, 1, "")), ContainerVerdict::Failed);
        assert_eq!(slots.outcome(), None, "two are still running");
        slots.on_completed(&completed(3, exit_status::KILLED_EXCEEDED_PMEM, "Container killed: 300 MB of 256 MB used"));
        assert_eq!(slots.outcome(), None);
        slots.on_completed(&completed(4, 0, ""));
        let outcome = slots.outcome().unwrap();
        assert_eq!(outcome.final_status, FinalStatus::Failed);
        assert_eq!(
            outcome.diagnostics,
            "2 of 3 containers failed: container_1700000000000_0007_01_000002 exit 1; \
             container_1700000000000_0007_01_000003 exit -104 (KILLED_EXCEEDED_PMEM)\n\
             container_1700000000000_0007_01_000003: Container killed: 300 MB of 256 MB used"
        );
    }

    #[test]
    fn a_failing_job_starts_nothing_new() {
        let mut slots = SlotTracker::new(3);
        slots.on_allocated(id(2));
        slots.on_allocated(id(3));
        slots.on_completed(&completed(2, 127, "command not found"));
        assert_eq!(slots.outstanding(), 0, "the last ask is withdrawn");
        assert_eq!(slots.on_allocated(id(4)), AllocationDecision::Release);
        assert_eq!(slots.on_completed(&completed(3, exit_status::ABORTED, "")), ContainerVerdict::Replaced);
        assert_eq!(slots.outstanding(), 0, "no replacement for a failing job");
        assert_eq!(slots.outcome().unwrap().final_status, FinalStatus::Failed);
    }

    #[test]
    fn launch_failures_count_as_lost_or_failed() {
        let mut slots = SlotTracker::new(2);
        slots.on_allocated(id(2));
        slots.on_allocated(id(3));
        assert_eq!(slots.on_launch_failed(id(2), true, "connection refused".into()), ContainerVerdict::Replaced);
        assert_eq!(slots.outstanding(), 1);
        // The RM later reports the same container lost with its node: already handled.
        assert_eq!(slots.on_completed(&completed(2, exit_status::ABORTED, "")), ContainerVerdict::Ignored);
        assert_eq!(slots.on_launch_failed(id(3), false, "invalid container token".into()), ContainerVerdict::Failed);
        let outcome = slots.outcome().unwrap();
        assert_eq!(
            outcome.diagnostics,
            "1 of 2 containers failed: container_1700000000000_0007_01_000003 could not be launched\n\
             container_1700000000000_0007_01_000003: invalid container token"
        );
    }

    #[test]
    fn preemption_notices_are_noted_once_for_running_containers() {
        let mut slots = SlotTracker::new(2);
        slots.on_allocated(id(2));
        slots.on_allocated(id(3));
        slots.on_completed(&completed(3, 0, ""));
        assert_eq!(slots.note_preemption(&[id(2), id(3), id(9)]), vec![id(2)]);
        assert!(slots.note_preemption(&[id(2)]).is_empty());
        assert_eq!(slots.on_completed(&completed(2, exit_status::PREEMPTED, "")), ContainerVerdict::Replaced);
        assert_eq!(slots.outstanding(), 1);
    }
}
