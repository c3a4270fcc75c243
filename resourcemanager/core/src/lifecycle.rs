//! The lifecycle edge tables: the only place that says which state changes are legal.
//!
//! Every state change in the core goes through [`transition`] with one of these tables; an edge
//! missing here is an [`IllegalTransition`] error (returned, never a panic). The tables are
//! rendered in `docs/architecture.md`.

use std::fmt::{Debug, Display};

use weft_common::states::{AppState, AttemptState, ContainerState, NodeState};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal {machine} transition {from} -> {to} for {subject}")]
pub struct IllegalTransition {
    pub machine: &'static str,
    pub subject: String,
    pub from: String,
    pub to: String,
}

/// A lifecycle: a state enum plus its edge table.
pub trait Lifecycle: Copy + Eq + Debug + Display + 'static {
    const MACHINE: &'static str;
    const EDGES: &'static [(Self, &'static [Self])];
}

/// Moves `state` to `to` if the edge exists. `subject` names the object for the error message.
pub fn transition<S: Lifecycle>(state: &mut S, to: S, subject: &dyn Display) -> Result<(), IllegalTransition> {
    let allowed = S::EDGES.iter().find(|(from, _)| from == state).is_some_and(|(_, tos)| tos.contains(&to));
    if !allowed {
        return Err(IllegalTransition {
            machine: S::MACHINE,
            subject: subject.to_string(),
            from: state.to_string(),
            to: to.to_string(),
        });
    }
    *state = to;
    Ok(())
}

impl Lifecycle for AppState {
    const MACHINE: &'static str = "application";
    const EDGES: &'static [(Self, &'static [Self])] = {
        use AppState::*;
        &[
            (New, &[NewSaving, Killed]),
            (NewSaving, &[Submitted, Killed, Failed]),
            (Submitted, &[Accepted, Killed, Failed]),
            // Accepted → Failed when the last attempt fails before its AM registers.
            (Accepted, &[Running, Finished, Failed, Killed]),
            (Running, &[Accepted, Finished, Failed, Killed]),
            (Finished, &[]),
            (Failed, &[]),
            (Killed, &[]),
        ]
    };
}

impl Lifecycle for AttemptState {
    const MACHINE: &'static str = "attempt";
    const EDGES: &'static [(Self, &'static [Self])] = {
        use AttemptState::*;
        &[
            (New, &[Submitted, Killed]),
            (Submitted, &[Scheduled, Killed, Failed]),
            (Scheduled, &[Allocated, Killed, Failed]),
            (Allocated, &[Launched, Running, Killed, Failed]),
            // Running may be reached from Allocated when the AM registers before the NM's launch
            // acknowledgement reaches the RM.
            (Launched, &[Running, Killed, Failed]),
            (Running, &[Finishing, Finished, Killed, Failed]),
            (Finishing, &[Finished, Killed, Failed]),
            (Finished, &[]),
            (Failed, &[]),
            (Killed, &[]),
        ]
    };
}

impl Lifecycle for ContainerState {
    const MACHINE: &'static str = "container";
    const EDGES: &'static [(Self, &'static [Self])] = {
        use ContainerState::*;
        &[
            (New, &[Allocated, Completed]),
            (Allocated, &[Acquired, Running, Completed]),
            (Acquired, &[Running, Completed]),
            (Running, &[Completed]),
            (Completed, &[]),
        ]
    };
}

impl Lifecycle for NodeState {
    const MACHINE: &'static str = "node";
    const EDGES: &'static [(Self, &'static [Self])] = {
        use NodeState::*;
        &[
            (New, &[Running, Unhealthy, Lost, Shutdown]),
            (Running, &[Unhealthy, Lost, Rebooted, Decommissioned, Shutdown]),
            (Unhealthy, &[Running, Lost, Rebooted, Decommissioned, Shutdown]),
            // A lost or rebooted node that registers again starts over.
            (Lost, &[New]),
            (Rebooted, &[New]),
            (Shutdown, &[New]),
            (Decommissioned, &[New]),
        ]
    };
}

/// Renders an edge table as Markdown rows (`from | to…`), used to keep the docs in step.
pub fn edge_table_markdown<S: Lifecycle>() -> String {
    let mut out = format!("| {} state | may move to |\n|---|---|\n", S::MACHINE);
    for (from, tos) in S::EDGES {
        let tos: Vec<String> = tos.iter().map(ToString::to_string).collect();
        out.push_str(&format!("| {from} | {} |\n", if tos.is_empty() { "(final)".into() } else { tos.join(", ") }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_state_has_a_row<S: Lifecycle>(all: &[S]) {
        for s in all {
            assert!(S::EDGES.iter().any(|(from, _)| from == s), "{} state {s} has no row", S::MACHINE);
        }
    }

    #[test]
    fn tables_cover_every_state() {
        every_state_has_a_row(AppState::ALL);
        every_state_has_a_row(AttemptState::ALL);
        every_state_has_a_row(ContainerState::ALL);
        every_state_has_a_row(NodeState::ALL);
    }

    #[test]
    fn illegal_transition_is_an_error() {
        let mut s = AppState::Finished;
        let err = transition(&mut s, AppState::Running, &"application_1_0001").unwrap_err();
        assert_eq!(err.to_string(), "illegal application transition FINISHED -> RUNNING for application_1_0001");
        assert_eq!(s, AppState::Finished);
        let mut s = AppState::New;
        transition(&mut s, AppState::NewSaving, &"a").unwrap();
        assert_eq!(s, AppState::NewSaving);
    }

    #[test]
    fn docs_show_the_tables() {
        let doc = include_str!("../../../docs/architecture.md");
        for table in [
            edge_table_markdown::<AppState>(),
            edge_table_markdown::<AttemptState>(),
            edge_table_markdown::<ContainerState>(),
            edge_table_markdown::<NodeState>(),
        ] {
            assert!(doc.contains(&table), "docs/architecture.md is missing or has a stale table:\n{table}");
        }
    }
}
