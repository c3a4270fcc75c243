//! Read-only views of the core in YARN's REST shapes. These run inside the core task (through
//! `CoreHandle::inspect`), so they see one consistent state.

use weft_common::rest::{
    AppAttemptInfo, AppInfo, ClusterMetrics, ContainerInfo, NodeInfo, PriorityInfo, ResourceInfo, ResourceRequestInfo,
};
use weft_common::states::{AppState, NmContainerState, NodeState};
use weft_common::{Millis, Resource};

use weft_rm_core::{App, ContainerHistory, Core, Node};

pub(super) fn app_info(core: &Core, app: &App, now: Millis) -> AppInfo {
    let attempt = app.current_attempt();
    let am_container = attempt.and_then(|a| a.am_container());
    let am_http = attempt.map(|a| a.node_http_address().to_owned()).unwrap_or_default();
    let finished = app.state().is_final();
    let total = core.cluster_capacity();
    let live: Vec<_> = app.containers().iter().filter_map(|c| core.container(c)).collect();
    // Resource-seconds of live containers accrue until now.
    let (live_mem_s, live_vcore_s) = live.iter().fold((0, 0), |(m, v), c| {
        let secs = now.saturating_sub(c.allocated_at()) / 1000;
        (m + c.resource().memory_mb * secs, v + u64::from(c.resource().vcores) * secs)
    });
    let usage =
        |r: Resource| if total.memory_mb == 0 { 0.0 } else { 100.0 * r.memory_mb as f64 / total.memory_mb as f64 };
    AppInfo {
        id: app.id(),
        user: app.user().to_owned(),
        name: app.name().to_owned(),
        queue: app.queue().to_owned(),
        state: app.state(),
        final_status: app.final_status(),
        progress: if finished { 100.0 } else { app.progress() * 100.0 },
        tracking_ui: match app.state() {
            AppState::Running => "ApplicationMaster",
            s if s.is_final() => "History",
            _ => "UNASSIGNED",
        }
        .into(),
        tracking_url: attempt.map(|a| a.tracking_url().to_owned()).unwrap_or_default(),
        diagnostics: if app.diagnostics().is_empty() {
            attempt.map(|a| a.diagnostics().to_owned()).unwrap_or_default()
        } else {
            app.diagnostics().to_owned()
        },
        cluster_id: core.config().cluster_ts,
        application_type: app.application_type().to_owned(),
        application_tags: app.tags().join(","),
        priority: app.priority(),
        started_time: app.submit_time(),
        launch_time: app.launch_time().unwrap_or(0),
        finished_time: app.finish_time().unwrap_or(0),
        elapsed_time: app.finish_time().unwrap_or(now).saturating_sub(app.submit_time()),
        am_container_logs: match (am_container, am_http.is_empty()) {
            (Some(c), false) => format!("{am_http}/ws/v1/node/containers/{c}/logs"),
            _ => String::new(),
        },
        am_host_http_address: am_http.trim_start_matches("http://").to_owned(),
        am_rpc_address: attempt
            .filter(|a| !a.host().is_empty())
            .map(|a| format!("{}:{}", a.host(), a.rpc_port()))
            .unwrap_or_default(),
        allocated_mb: app.used().memory_mb as i64,
        allocated_vcores: i64::from(app.used().vcores),
        reserved_mb: 0,
        reserved_vcores: 0,
        running_containers: if finished { -1 } else { live.len() as i64 },
        memory_seconds: app.memory_seconds() + live_mem_s,
        vcore_seconds: app.vcore_seconds() + live_vcore_s,
        queue_usage_percentage: usage(app.used()),
        cluster_usage_percentage: usage(app.used()),
        preempted_resource_mb: 0,
        preempted_resource_vcores: 0,
        num_non_am_container_preempted: 0,
        num_am_container_preempted: 0,
        log_aggregation_status: "DISABLED".into(),
        unmanaged_application: false,
        max_app_attempts: app.max_attempts(),
        resource_requests: app
            .asks()
            .iter()
            .map(|(k, a)| ResourceRequestInfo {
                capability: ResourceInfo { memory: k.capability.memory_mb, virtual_cores: k.capability.vcores },
                num_containers: a.count,
                priority: PriorityInfo { priority: k.priority },
                relax_locality: a.relax_locality,
                resource_name: k.resource_name.clone(),
            })
            .collect(),
    }
}

pub(super) fn attempt_infos(app: &App) -> Vec<AppAttemptInfo> {
    app.attempts()
        .iter()
        .map(|a| AppAttemptInfo {
            id: a.id().attempt,
            app_attempt_id: a.id().to_string(),
            node_id: a.node_id().map(ToString::to_string).unwrap_or_default(),
            node_http_address: a.node_http_address().trim_start_matches("http://").to_owned(),
            start_time: a.start_time(),
            finished_time: a.finish_time().unwrap_or(0),
            container_id: a.am_container().map(|c| c.to_string()).unwrap_or_default(),
            logs_link: match a.am_container() {
                Some(c) if !a.node_http_address().is_empty() => {
                    format!("{}/ws/v1/node/containers/{c}/logs", a.node_http_address())
                }
                _ => String::new(),
            },
            blacklisted_nodes: String::new(),
            app_attempt_state: a.state(),
            diagnostics: a.diagnostics().to_owned(),
        })
        .collect()
}

pub(super) fn container_info(c: &ContainerHistory, now: Millis) -> ContainerInfo {
    ContainerInfo {
        container_id: c.id,
        allocated_mb: c.resource.memory_mb,
        allocated_vcores: c.resource.vcores,
        assigned_node_id: c.node_id.to_string(),
        node_id: c.node_id.to_string(),
        node_http_address: c.node_http_address.clone(),
        priority: c.priority,
        started_time: c.allocated_at,
        finished_time: c.finished_at.unwrap_or(0),
        elapsed_time: c.finished_at.unwrap_or(now).saturating_sub(c.allocated_at),
        log_url: format!("{}/ws/v1/node/containers/{}/logs", c.node_http_address, c.id),
        container_exit_status: c.exit_status.unwrap_or(weft_common::states::exit_status::INVALID),
        container_state: if c.finished_at.is_some() { NmContainerState::Complete } else { NmContainerState::Running },
        diagnostics_info: c.diagnostics.clone(),
    }
}

pub(super) fn node_info(node: &Node) -> NodeInfo {
    let free = node.free();
    let active = !matches!(
        node.state(),
        NodeState::Lost | NodeState::Decommissioned | NodeState::Rebooted | NodeState::Shutdown
    );
    NodeInfo {
        rack: node.rack().to_owned(),
        state: node.state(),
        id: node.id().to_string(),
        node_host_name: node.id().host().to_owned(),
        node_http_address: if active {
            node.http_address().trim_start_matches("http://").to_owned()
        } else {
            String::new()
        },
        last_health_update: node.last_heartbeat(),
        version: node.version().to_owned(),
        health_report: node.health_report().to_owned(),
        num_containers: node.containers().len() as u32,
        used_memory_mb: node.used().memory_mb,
        avail_memory_mb: free.memory_mb,
        used_virtual_cores: node.used().vcores,
        available_virtual_cores: free.vcores,
        total_resource: node.total(),
    }
}

pub(super) fn cluster_metrics(core: &Core) -> ClusterMetrics {
    let counters = core.counters();
    let count_apps = |s: AppState| core.apps().filter(|a| a.state() == s).count() as u64;
    let count_nodes = |s: NodeState| core.nodes().filter(|n| n.state() == s).count() as u64;
    let total = core.cluster_capacity();
    let used = core.cluster_used();
    let free = total.saturating_sub(used);
    ClusterMetrics {
        apps_submitted: counters.apps_submitted,
        apps_completed: counters.apps_completed,
        apps_pending: count_apps(AppState::Accepted)
            + count_apps(AppState::Submitted)
            + count_apps(AppState::NewSaving),
        apps_running: count_apps(AppState::Running),
        apps_failed: counters.apps_failed,
        apps_killed: counters.apps_killed,
        reserved_mb: 0,
        available_mb: free.memory_mb,
        allocated_mb: used.memory_mb,
        total_mb: total.memory_mb,
        reserved_virtual_cores: 0,
        available_virtual_cores: u64::from(free.vcores),
        allocated_virtual_cores: u64::from(used.vcores),
        total_virtual_cores: u64::from(total.vcores),
        containers_allocated: core.live_containers().count() as u64,
        containers_reserved: 0,
        containers_pending: core.apps().map(|a| a.pending_containers()).sum(),
        total_nodes: core.nodes().filter(|n| n.state().is_usable() || n.state() == NodeState::Unhealthy).count() as u64,
        active_nodes: count_nodes(NodeState::Running),
        lost_nodes: count_nodes(NodeState::Lost),
        unhealthy_nodes: count_nodes(NodeState::Unhealthy),
        decommissioning_nodes: 0,
        decommissioned_nodes: count_nodes(NodeState::Decommissioned),
        rebooted_nodes: count_nodes(NodeState::Rebooted),
        shutdown_nodes: count_nodes(NodeState::Shutdown),
    }
}

#[cfg(test)]
mod tests {
    use weft_common::NodeId;
    use weft_common::protocol::RegisterNodeRequest;
    use weft_rm_core::{CoreConfig, Event, RecordingEffects, Reply};

    use super::*;

    #[test]
    fn node_info_shows_the_rack_the_node_registered_with() {
        let mut core = Core::new(CoreConfig::for_tests()).unwrap();
        let mut fx = RecordingEffects::default();
        let request = RegisterNodeRequest {
            node_id: NodeId("n1:8042".into()),
            http_address: "http://n1:8042".into(),
            total: Resource::new(1024, 2),
            containers: vec![],
            version: "test".into(),
            rack: Some("rack7".into()),
        };
        core.handle(Event::NodeRegister { req: 1, request }, 0, &mut fx);
        assert!(matches!(fx.take_reply(1), Reply::NodeRegister(Ok(_))));
        let info = node_info(core.node(&NodeId("n1:8042".into())).unwrap());
        assert_eq!(info.rack, "/rack7");
        assert_eq!(serde_json::to_value(&info).unwrap()["rack"], "/rack7");
    }
}
