//! RM Prometheus metrics, registered on the registry passed to [`super::start`]. Gauges are
//! refreshed from the core on each scrape; counters and histograms follow core observations.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use weft_common::states::{AppState, NodeState, exit_status};

use weft_rm_core::{Core, Observation};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ExitLabel {
    exit_status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabel {
    kind: String,
}

pub(super) struct RmMetrics {
    apps: Family<StateLabel, Gauge>,
    nodes: Family<StateLabel, Gauge>,
    allocated_memory_mb: Gauge,
    allocated_vcores: Gauge,
    available_memory_mb: Gauge,
    available_vcores: Gauge,
    running_containers: Gauge,
    pending_containers: Gauge,
    containers_allocated: Counter,
    containers_completed: Family<ExitLabel, Counter>,
    apps_finished: Family<StateLabel, Counter>,
    nodes_lost: Counter,
    preemptions_marked: Counter,
    containers_preempted: Counter,
    containers_recovered: Counter,
    /// Errors of the core no caller could be given (each is in the RM log); zero without bugs.
    internal_errors: Counter,
    /// 1 while this RM is the active one, 0 while standby.
    pub(super) ha_active: Gauge,
    /// Fencing epoch of this RM's current (or last) term as the active.
    pub(super) ha_epoch: Gauge,
    /// Times this RM became the active one.
    pub(super) ha_became_active: Counter,
    allocation_latency: Family<KindLabel, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl RmMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            apps: Family::default(),
            nodes: Family::default(),
            allocated_memory_mb: Gauge::default(),
            allocated_vcores: Gauge::default(),
            available_memory_mb: Gauge::default(),
            available_vcores: Gauge::default(),
            running_containers: Gauge::default(),
            pending_containers: Gauge::default(),
            containers_allocated: Counter::default(),
            containers_completed: Family::default(),
            apps_finished: Family::default(),
            nodes_lost: Counter::default(),
            preemptions_marked: Counter::default(),
            containers_preempted: Counter::default(),
            containers_recovered: Counter::default(),
            internal_errors: Counter::default(),
            ha_active: Gauge::default(),
            ha_epoch: Gauge::default(),
            ha_became_active: Counter::default(),
            allocation_latency: Family::new_with_constructor(latency_histogram),
        };
        let r = registry.sub_registry_with_prefix("weft_rm");
        r.register("applications", "Applications by state", m.apps.clone());
        r.register("nodes", "NodeManagers by state", m.nodes.clone());
        r.register("allocated_memory_mb", "Memory allocated to containers", m.allocated_memory_mb.clone());
        r.register("allocated_vcores", "Vcores allocated to containers", m.allocated_vcores.clone());
        r.register("available_memory_mb", "Free memory on usable nodes", m.available_memory_mb.clone());
        r.register("available_vcores", "Free vcores on usable nodes", m.available_vcores.clone());
        r.register("containers", "Live containers", m.running_containers.clone());
        r.register("pending_containers", "Containers asked for and not yet allocated", m.pending_containers.clone());
        r.register("containers_allocated", "Containers allocated", m.containers_allocated.clone());
        r.register("containers_completed", "Containers completed, by exit status", m.containers_completed.clone());
        r.register("applications_finished", "Applications that reached a final state", m.apps_finished.clone());
        r.register("nodes_lost", "Nodes declared LOST", m.nodes_lost.clone());
        r.register(
            "preemptions_marked",
            "Containers chosen for preemption (their AM was told)",
            m.preemptions_marked.clone(),
        );
        r.register(
            "containers_preempted",
            "Containers killed by preemption after the grace period",
            m.containers_preempted.clone(),
        );
        r.register(
            "containers_recovered",
            "Running containers of an earlier active RM taken over after a failover or restart",
            m.containers_recovered.clone(),
        );
        r.register(
            "internal_errors",
            "Errors of the scheduler core no request could be answered with, such as an illegal state transition (see the RM log)",
            m.internal_errors.clone(),
        );
        r.register("ha_active", "1 while this RM is the active one, 0 while standby", m.ha_active.clone());
        r.register("ha_epoch", "Fencing epoch of this RM's current or last term as the active", m.ha_epoch.clone());
        r.register("ha_became_active", "Times this RM became the active one", m.ha_became_active.clone());
        r.register("allocation_latency_seconds", "Time from an ask to its allocation", m.allocation_latency.clone());
        m
    }

    pub(super) fn observe(&self, obs: &Observation) {
        match obs {
            Observation::ContainerAllocated { wait_ms, is_am } => {
                self.containers_allocated.inc();
                let kind = if *is_am { "am" } else { "task" }.to_owned();
                self.allocation_latency.get_or_create(&KindLabel { kind }).observe(*wait_ms as f64 / 1000.0);
            }
            Observation::ContainerCompleted { exit_status: code } => {
                let name = exit_status::name(*code).map_or_else(|| "EXIT_CODE".to_owned(), str::to_owned);
                self.containers_completed.get_or_create(&ExitLabel { exit_status: name }).inc();
            }
            Observation::AppFinished { state, .. } => {
                self.apps_finished.get_or_create(&StateLabel { state: state.to_string() }).inc();
            }
            Observation::NodeLost => {
                self.nodes_lost.inc();
            }
            Observation::PreemptionMarked => {
                self.preemptions_marked.inc();
            }
            Observation::ContainerPreempted => {
                self.containers_preempted.inc();
            }
            Observation::ContainerRecovered => {
                self.containers_recovered.inc();
            }
            Observation::InternalError => {
                self.internal_errors.inc();
            }
        }
    }

    /// Sets the gauges from the core's current state (run inside the core task).
    /// A standby holds no cluster state: its gauges read zero, so dashboards summing over RMs
    /// count the active one only.
    pub(super) fn clear(&self) {
        for state in AppState::ALL {
            self.apps.get_or_create(&StateLabel { state: state.to_string() }).set(0);
        }
        for state in NodeState::ALL {
            self.nodes.get_or_create(&StateLabel { state: state.to_string() }).set(0);
        }
        for gauge in [
            &self.allocated_memory_mb,
            &self.allocated_vcores,
            &self.available_memory_mb,
            &self.available_vcores,
            &self.running_containers,
            &self.pending_containers,
        ] {
            gauge.set(0);
        }
        self.ha_active.set(0);
    }

    pub(super) fn refresh(&self, core: &Core) {
        for state in AppState::ALL {
            let n = core.apps().filter(|a| a.state() == *state).count();
            self.apps.get_or_create(&StateLabel { state: state.to_string() }).set(n as i64);
        }
        for state in NodeState::ALL {
            let n = core.nodes().filter(|a| a.state() == *state).count();
            self.nodes.get_or_create(&StateLabel { state: state.to_string() }).set(n as i64);
        }
        let used = core.cluster_used();
        let free = core.cluster_capacity().saturating_sub(used);
        self.allocated_memory_mb.set(used.memory_mb as i64);
        self.allocated_vcores.set(i64::from(used.vcores));
        self.available_memory_mb.set(free.memory_mb as i64);
        self.available_vcores.set(i64::from(free.vcores));
        self.running_containers.set(core.live_containers().count() as i64);
        self.pending_containers.set(core.apps().map(|a| a.pending_containers()).sum::<u64>() as i64);
    }
}
