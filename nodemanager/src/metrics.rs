//! Prometheus metrics of one NodeManager, registered on the registry its owner passes in.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use weft_common::Resource;
use weft_common::states::exit_status;

/// Coarse outcome of a container, so dashboards need not know every exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitClass {
    Success,
    /// Non-zero exit of the container's own process.
    Failed,
    /// Killed for exceeding its memory limit.
    ExceededMemory,
    /// Stopped by the AM, the RM, preemption or an NM shutdown.
    Killed,
    /// Never ran (localization or spawn failed).
    LaunchFailed,
}

impl ExitClass {
    pub fn of(status: i32) -> Self {
        match status {
            exit_status::SUCCESS => ExitClass::Success,
            exit_status::KILLED_EXCEEDED_PMEM | exit_status::KILLED_EXCEEDED_VMEM => ExitClass::ExceededMemory,
            exit_status::INVALID => ExitClass::LaunchFailed,
            s if s < 0 => ExitClass::Killed,
            _ => ExitClass::Failed,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ExitClass::Success => "success",
            ExitClass::Failed => "failed",
            ExitClass::ExceededMemory => "exceeded_memory",
            ExitClass::Killed => "killed",
            ExitClass::LaunchFailed => "launch_failed",
        }
    }
}

impl EncodeLabelValue for ExitClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ExitLabels {
    exit_class: ExitClass,
}

#[derive(Clone)]
pub struct NmMetrics {
    launched: Counter,
    completed: Family<ExitLabels, Counter>,
    running: Gauge,
    allocated_memory_mb: Gauge,
    allocated_vcores: Gauge,
    launch_latency: Histogram,
}

impl NmMetrics {
    /// Registers every metric under the `weft_nm_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            launched: Counter::default(),
            completed: Family::default(),
            running: Gauge::default(),
            allocated_memory_mb: Gauge::default(),
            allocated_vcores: Gauge::default(),
            // 1 ms … ~16 s
            launch_latency: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
        };
        let registry = registry.sub_registry_with_prefix("weft_nm");
        registry.register("containers_launched", "Containers whose process was started", metrics.launched.clone());
        registry.register("containers_completed", "Containers that completed, by outcome", metrics.completed.clone());
        registry.register("containers_running", "Containers currently running", metrics.running.clone());
        registry.register(
            "allocated_memory_mb",
            "Memory (MiB) allocated to containers that are launching or running",
            metrics.allocated_memory_mb.clone(),
        );
        registry.register(
            "allocated_vcores",
            "Virtual cores allocated to containers that are launching or running",
            metrics.allocated_vcores.clone(),
        );
        registry.register(
            "container_launch_latency_seconds",
            "Time from a start request to the container's process running",
            metrics.launch_latency.clone(),
        );
        metrics
    }

    pub(crate) fn launched(&self, latency_secs: f64) {
        self.launched.inc();
        self.running.inc();
        self.launch_latency.observe(latency_secs);
    }

    /// A container completed; `was_running` is false when it never got a process.
    pub(crate) fn completed(&self, exit_status: i32, was_running: bool) {
        self.completed.get_or_create(&ExitLabels { exit_class: ExitClass::of(exit_status) }).inc();
        if was_running {
            self.running.dec();
        }
    }

    pub(crate) fn set_allocated(&self, allocated: Resource) {
        self.allocated_memory_mb.set(i64::try_from(allocated.memory_mb).unwrap_or(i64::MAX));
        self.allocated_vcores.set(i64::from(allocated.vcores));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_classes() {
        assert_eq!(ExitClass::of(0), ExitClass::Success);
        assert_eq!(ExitClass::of(3), ExitClass::Failed);
        assert_eq!(ExitClass::of(137), ExitClass::Failed);
        assert_eq!(ExitClass::of(exit_status::KILLED_EXCEEDED_PMEM), ExitClass::ExceededMemory);
        assert_eq!(ExitClass::of(exit_status::ABORTED), ExitClass::Killed);
        assert_eq!(ExitClass::of(exit_status::INVALID), ExitClass::LaunchFailed);
    }
}
