//! Hierarchical queue configuration for the capacity and fair schedulers: the YAML model
//! ([`QueuesConfig`]), its validation, the resolved queue tree ([`QueueTree`]), reload diffs
//! ([`diff`]) and importers for YARN's `capacity-scheduler.xml` and `fair-scheduler.xml`
//! ([`import_capacity_scheduler_xml`], [`import_fair_scheduler_xml`]).
//!
//! This module is pure: it reads text and computes numbers. The schedulers consume a
//! [`QueueTree`]; the RM re-resolves it when the file changes or the cluster size changes.
//!
//! # The file
//!
//! One YAML file (see `config/queues-capacity.yaml` and `config/queues-fair.yaml`, which document
//! every key). Top level:
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `scheduler` | `fifo`, `capacity` or `fair` | `capacity` (as YARN) |
//! | `resource-calculator` | `dominant` (DRF over memory and vcores) or `memory` (YARN's CS default) | `dominant` |
//! | `preemption` | monitor knobs, YARN defaults | disabled |
//! | `defaults` | values for queues that don't set them (YARN's global properties) | YARN's |
//! | `root` | the implicit root queue: ACLs, state, `preemptible` | ACLs `*` |
//! | `users` | per-user `max-parallel-apps` and static `groups` (the first is the primary group) | none |
//! | `placement-rules` | applied in order; the last must be `default` or `reject` | `[specified, default]` if `root.default` is a leaf, else `[specified, reject]` |
//! | `queues` | the tree under `root`; children nest under `queues:` | a single leaf `root.default` |
//!
//! Queue fields common to all modes: `type` (`leaf`/`parent`; a queue with children is a parent,
//! a childless `type: parent` queue only holds queues created by placement rules), `state`
//! (`running`/`stopped`; stopping a queue stops its subtree), `acl-submit-applications`,
//! `acl-administer-queue` (YARN's `"users groups"` strings: `"*"` anyone, `" "` nobody; a
//! permission on any ancestor also grants it), `preemptible` (may others preempt this queue's
//! containers; inherited; a capacity child may re-enable it, a fair child may not — as in YARN).
//!
//! Capacity mode (`scheduler: capacity`): `capacity` (required: `"70%"` of the parent, `"2w"` a
//! weight among siblings, or `{memory-mb, vcores}` absolute; siblings use one form; percentages of
//! siblings sum to 100), `max-capacity` (`"100%"` of the parent's maximum, or absolute),
//! `priority`, `max-parallel-apps`; leaves also `user-limit-factor` (`-1` disables),
//! `minimum-user-limit-percent`, `max-applications`, `max-am-resource-percent` (a fraction),
//! `max-parallel-apps-per-user`, `default-application-priority`, `max-application-priority`,
//! `ordering-policy` (`fifo`/`fair`).
//!
//! Fair mode (`scheduler: fair`): `weight`, `min-resources` (absolute), `max-resources`
//! (absolute or `"50%"` of the cluster), `max-running-apps`, `scheduling-policy`
//! (`fair`/`drf`/`fifo`; `fifo` on leaves only), `min-share-preemption-timeout-ms`,
//! `fair-share-preemption-timeout-ms`, `fair-share-preemption-threshold` (the last three are
//! inherited from the parent); leaves also `max-am-share` (`-1` disables).
//!
//! Mode-specific fields live in one [`QueueConfig`] struct and are checked per mode, so a
//! misplaced field gets an error that names the queue, the field, the mode it belongs to and
//! the equivalent in the selected mode (`weight` under capacity: "write `capacity: 2w`"), rather
//! than serde's generic "unknown field". The resolved tree has typed per-mode settings
//! ([`QueueSettings`]) with every default applied.
//!
//! Placement rules: `specified` (the queue named at submission, unless `default`), `user`,
//! `primary-group`, `primary-group-user` (under `parent`, created when `create: true` and the
//! parent takes created queues: any parent in fair mode, a parent whose children use weights in
//! capacity mode), `map-user` / `map-group` (fixed queues, YARN's `u:`/`g:` mappings), and the
//! terminal `default` and `reject`. Shorthand `- specified`; options `- user: {create: true}`.
//!
//! # Resolution
//!
//! [`QueueTree::resolve`] turns the config into absolute numbers for one cluster size. Capacity:
//! percentages of the parent's guarantee (maximum: of the parent's maximum), weights as shares of
//! it, absolute amounts as given (scaled down proportionally when siblings exceed their parent,
//! as YARN does); `max-applications` defaults to `defaults.max-applications` × the absolute
//! capacity; the AM limit is `max-am-resource-percent` of the guarantee, rounded up. Fair: steady
//! fair shares from [`compute_fair_shares`] (YARN's `ComputeFairShares`, solved exactly and
//! rounded by largest remainder, so they add up to exactly the parent's), AM limit `max-am-share`
//! of it. The same function gives the instantaneous shares and the apps' shares within a leaf. Per-queue defaults such as
//! `max-running-apps` don't apply to root, which would cap the whole cluster.
//!
//! # Guarantees
//!
//! The tree is nested YAML, so cycles and dangling parents are impossible by construction; the
//! validator checks names, sibling consistency, ranges, mode fields, leaf-name uniqueness and
//! placement rules, and reports every problem at once, each naming the queue path, the field
//! and (when parsed from a file) the file and line.

mod calculator;
mod config;
mod diff;
mod fair_share;
mod import_yarn;
mod resolve;
mod validate;

pub use calculator::ResourceCalculator;
pub(crate) use calculator::{Amounts, Dim, amounts};
pub use config::{
    Acl, Capacity, DefaultRule, DynamicRule, MapGroupRule, MapUserRule, OrderingPolicy, PlacementRule,
    PreemptionConfig, QueueConfig, QueueDefaults, QueueKind, QueueState, QueuesConfig, ResourceAmount, ResourceLimit,
    RootQueueConfig, SchedulerMode, SchedulingPolicy, SpecifiedRule, UserConfig,
};
pub use diff::{QueueChange, ReloadPlan, diff};
pub use fair_share::{Schedulable, compute_fair_shares};
pub use import_yarn::{Import, ImportError, import_capacity_scheduler_xml, import_fair_scheduler_xml};
pub use resolve::{
    CapacitySettings, FairSettings, QueueIndex, QueueLookupError, QueueSettings, QueueTree, ResolvedQueue,
};
pub use validate::{Problem, Problems};

use weft_common::config::ConfigError;

/// Why a queue configuration file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum QueueConfigError {
    /// Unreadable file, malformed YAML, unknown key or wrong type (file, line, column, snippet).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Well-formed YAML that breaks a rule; every problem names queue, field and line.
    #[error("invalid queue config {source_name}: {problems}")]
    Invalid { source_name: String, problems: Problems },
}
