//! Lifecycle state names as YARN spells them, and YARN's container exit statuses.
//! The transition rules live in `weft_rm_core::lifecycle`; this module only names.

use serde::{Deserialize, Serialize};

macro_rules! yarn_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $v),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            /// Case-insensitive, as YARN's REST filters are.
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
                    .copied()
                    .ok_or_else(|| format!(
                        "invalid {} {:?}; valid values: {}",
                        stringify!($name),
                        s,
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
            }
        }
    };
}

yarn_enum!(
    /// YarnApplicationState, as shown over REST.
    AppState { New = "NEW", NewSaving = "NEW_SAVING", Submitted = "SUBMITTED", Accepted = "ACCEPTED", Running = "RUNNING", Finished = "FINISHED", Failed = "FAILED", Killed = "KILLED" }
);

yarn_enum!(
    /// FinalApplicationStatus: what the AM (or the RM) declared as the outcome.
    FinalStatus { Undefined = "UNDEFINED", Succeeded = "SUCCEEDED", Failed = "FAILED", Killed = "KILLED" }
);

yarn_enum!(
    /// RMAppAttemptState subset used by Weft.
    AttemptState { New = "NEW", Submitted = "SUBMITTED", Scheduled = "SCHEDULED", Allocated = "ALLOCATED", Launched = "LAUNCHED", Running = "RUNNING", Finishing = "FINISHING", Finished = "FINISHED", Failed = "FAILED", Killed = "KILLED" }
);

yarn_enum!(
    /// RMContainerState.
    ContainerState { New = "NEW", Allocated = "ALLOCATED", Acquired = "ACQUIRED", Running = "RUNNING", Completed = "COMPLETED" }
);

yarn_enum!(
    /// Public ContainerState as reported by NodeManagers and in allocate responses.
    NmContainerState { New = "NEW", Running = "RUNNING", Complete = "COMPLETE" }
);

yarn_enum!(
    /// NodeState.
    NodeState { New = "NEW", Running = "RUNNING", Unhealthy = "UNHEALTHY", Decommissioned = "DECOMMISSIONED", Lost = "LOST", Rebooted = "REBOOTED", Shutdown = "SHUTDOWN" }
);

impl AppState {
    pub fn is_final(&self) -> bool {
        matches!(self, AppState::Finished | AppState::Failed | AppState::Killed)
    }
}

impl AttemptState {
    pub fn is_final(&self) -> bool {
        matches!(self, AttemptState::Finished | AttemptState::Failed | AttemptState::Killed)
    }
}

impl NodeState {
    /// Nodes that can host containers.
    pub fn is_usable(&self) -> bool {
        matches!(self, NodeState::Running)
    }
}

/// YARN's ContainerExitStatus values. Anything else is the process exit code.
pub mod exit_status {
    pub const SUCCESS: i32 = 0;
    pub const INVALID: i32 = -1000;
    /// Released by the app, or lost with its node.
    pub const ABORTED: i32 = -100;
    pub const DISKS_FAILED: i32 = -101;
    pub const PREEMPTED: i32 = -102;
    pub const KILLED_EXCEEDED_VMEM: i32 = -103;
    pub const KILLED_EXCEEDED_PMEM: i32 = -104;
    pub const KILLED_BY_APPMASTER: i32 = -105;
    pub const KILLED_BY_RESOURCEMANAGER: i32 = -106;
    pub const KILLED_AFTER_APP_COMPLETION: i32 = -107;

    /// AM exits with these statuses do not count towards max attempts (YARN
    /// `shouldCountTowardsMaxAttemptRetry`).
    pub fn counts_as_attempt_failure(status: i32) -> bool {
        !matches!(status, PREEMPTED | ABORTED | DISKS_FAILED | KILLED_BY_RESOURCEMANAGER)
    }

    pub fn name(status: i32) -> Option<&'static str> {
        Some(match status {
            SUCCESS => "SUCCESS",
            INVALID => "INVALID",
            ABORTED => "ABORTED",
            DISKS_FAILED => "DISKS_FAILED",
            PREEMPTED => "PREEMPTED",
            KILLED_EXCEEDED_VMEM => "KILLED_EXCEEDED_VMEM",
            KILLED_EXCEEDED_PMEM => "KILLED_EXCEEDED_PMEM",
            KILLED_BY_APPMASTER => "KILLED_BY_APPMASTER",
            KILLED_BY_RESOURCEMANAGER => "KILLED_BY_RESOURCEMANAGER",
            KILLED_AFTER_APP_COMPLETION => "KILLED_AFTER_APP_COMPLETION",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_yarn() {
        assert_eq!(AppState::NewSaving.to_string(), "NEW_SAVING");
        assert_eq!(serde_json::to_string(&AppState::NewSaving).unwrap(), "\"NEW_SAVING\"");
        assert_eq!("accepted".parse::<AppState>().unwrap(), AppState::Accepted);
        assert!("bogus".parse::<NodeState>().unwrap_err().contains("LOST"));
        for s in AppState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
