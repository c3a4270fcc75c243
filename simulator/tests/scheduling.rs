//! The scheduling issue's fairness and preemption scenarios, run through the simulator: real
//! core, simulated NodeManagers and ApplicationMasters, virtual time. Every cluster below is 10
//! nodes of 8 GiB and 8 vcores, so one 1 GiB / 1 vcore container is 1/80 = 1.25% of it.

mod common;

use common::{app, events, input, run_logged, sized_app};
use weft_common::Resource;

const CLUSTER: &str = "
seed: 3
duration: 90s
cluster: {nodes: 10, node: {memory-mb: 8192, vcores: 8}}
rm: {nm-expiry: 5s}
workload: {trace: unused.jsonl}
report: {sample-interval: 1s}
";

/// One container's share of the cluster.
const SLOT: f64 = 1.0 / 80.0;

fn share(report: &weft_sim::Report, queue: &str, t_ms: u64) -> f64 {
    report.share_at(queue, t_ms).unwrap_or_else(|| panic!("no samples for {queue}"))
}

fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!((got - want).abs() <= tolerance, "{what}: {got:.4}, expected {want:.4} ± {tolerance}");
}

const CAPACITY_70_30: &str = "scheduler: capacity
preemption: {enabled: PREEMPT, monitoring-interval-ms: 1000, max-wait-before-kill-ms: 3000, natural-termination-factor: 1.0, total-preemption-per-round: 1.0, max-ignored-over-capacity: 0.0}
queues:
  a: {capacity: 70%, user-limit-factor: -1}
  b: {capacity: 30%, user-limit-factor: -1}
";

#[test]
fn capacity_70_30_with_preemption_converges_to_the_guarantees() {
    let queues = CAPACITY_70_30.replace("PREEMPT", "true");
    // a fills the idle cluster with containers that never end; b arrives at 20 s.
    let trace = vec![app(1_000, "a", "ann", 400, None), app(20_000, "b", "bo", 100, None)];
    let (report, log) = run_logged(input(CLUSTER, Some(&queues), Some(trace)));

    assert_near("a before b arrives", share(&report, "root.a", 19_000), 1.0, 1e-9);
    assert_near("b before it arrives", share(&report, "root.b", 19_000), 0.0, 1e-9);
    // The first kill waits for the monitor (1 s) and the grace period (3 s); then b's AM
    // registers, asks, and the next rounds take the rest of its 30%.
    assert!(share(&report, "root.b", 23_000) <= SLOT + 1e-9, "nothing is killed before the grace period");
    let converged = (20_000..=90_000)
        .step_by(1000)
        .find(|t| share(&report, "root.b", *t) >= 0.30 - 1e-9)
        .expect("b reached its guarantee");
    assert!(converged <= 35_000, "b reached 30% only at {converged} ms");
    for t in [40_000, 60_000, 90_000] {
        assert_near("b at its guarantee", share(&report, "root.b", t), 0.30, 1e-9);
        assert_near("a keeps the rest", share(&report, "root.a", t), 0.70, 1e-9);
    }
    let a = report.queue("root.a").unwrap();
    assert_eq!(a.preempt_killed, 24, "exactly b's 24 containers were taken from a");
    assert_eq!(report.totals.preempt_killed, 24);
    assert_eq!(events(&log, "preempt_kill").len(), 24);
    assert_eq!(report.queue("root.b").unwrap().preempt_killed, 0);
    // a re-asks for its killed tasks: they wait, since b holds the space now.
    assert_eq!(report.totals.tasks_rerun, 24);
}

#[test]
fn capacity_70_30_without_preemption_the_late_queue_gets_only_freed_capacity() {
    let queues = CAPACITY_70_30.replace("PREEMPT", "false");
    // a's tasks take 30 s each, in waves of 79 (its AM holds the 80th slot).
    let trace = vec![app(1_000, "a", "ann", 400, Some(30_000)), app(10_000, "b", "bo", 100, None)];
    let (report, log) = run_logged(input(CLUSTER, Some(&queues), Some(trace)));

    for t in (10_000..31_000).step_by(1000) {
        assert_eq!(share(&report, "root.b", t), 0.0, "b got something at {t} ms with nothing freed");
    }
    // a's first wave ends at 31.5 s: b's AM takes one freed slot (b had no task asks yet), a
    // the rest.
    for t in [35_000, 45_000, 60_000] {
        assert_near("b holds only its AM until the second wave ends", share(&report, "root.b", t), SLOT, 1e-9);
    }
    // The second wave ends at 61.5 s: b, under its guarantee, is served first, up to 30%.
    for t in [65_000, 80_000] {
        assert_near("b after the second wave", share(&report, "root.b", t), 0.30, 1e-9);
        assert_near("a after the second wave", share(&report, "root.a", t), 0.70, 1e-9);
    }
    assert_eq!(report.totals.preempt_killed, 0);
    assert!(events(&log, "preempt_mark").is_empty());
}

#[test]
fn fair_weights_1_1_2_converge_to_25_25_50() {
    let queues = "scheduler: fair\nqueues:\n  u1: {weight: 1}\n  u2: {weight: 1}\n  u3: {weight: 2}\n";
    // All three arrive together; the first to ask takes the idle cluster, and each wave of
    // finishing 10 s tasks is handed out by usage ÷ weight.
    let trace: Vec<_> = ["u1", "u2", "u3"].iter().map(|q| app(0, q, q, 1000, Some(10_000))).collect();
    let (report, _) = run_logged(input(CLUSTER, Some(queues), Some(trace)));
    for t in [25_000, 45_000, 85_000] {
        assert_near("u1", share(&report, "root.u1", t), 0.25, 1e-9);
        assert_near("u2", share(&report, "root.u2", t), 0.25, 1e-9);
        assert_near("u3", share(&report, "root.u3", t), 0.50, 1e-9);
    }
    // The instantaneous fair shares the report draws as guarantees say the same.
    let u3 = report.queue("root.u3").unwrap();
    assert_near("u3's fair share", *u3.series.guarantee_share.last().unwrap(), 0.50, 1e-9);
}

#[test]
fn fair_min_share_preemption_gives_a_starved_queue_its_min_share_after_the_timeout() {
    let queues = "scheduler: fair
preemption: {enabled: true, monitoring-interval-ms: 1000, max-wait-before-kill-ms: 3000}
queues:
  a: {weight: 1}
  b: {weight: 1, min-resources: {memory-mb: 24576, vcores: 24}, min-share-preemption-timeout-ms: 5000}
";
    let trace = vec![app(1_000, "a", "ann", 400, None), app(20_000, "b", "bo", 100, None)];
    let (report, log) = run_logged(input(CLUSTER, Some(queues), Some(trace)));
    assert_near("a holds everything", share(&report, "root.a", 19_000), 1.0, 1e-9);
    // Nothing before the 5 s min-share timeout plus the 3 s grace.
    assert_eq!(share(&report, "root.b", 27_000), 0.0);
    let first_kill: u64 = events(&log, "preempt_kill")
        .first()
        .and_then(|l| l.split("\"t\":").nth(1)?.split(',').next()?.parse().ok())
        .expect("a container was preempted");
    assert!(first_kill >= 28_000, "first kill at {first_kill} ms, before timeout + grace");
    // b gets its min share (30%) and no more: fair-share preemption is not configured.
    for t in [60_000, 90_000] {
        assert_near("b at its min share", share(&report, "root.b", t), 0.30, 1e-9);
    }
    assert_eq!(report.queue("root.a").unwrap().preempt_killed, 24);
}

#[test]
fn drf_gives_memory_heavy_and_cpu_heavy_queues_equal_dominant_shares() {
    // The classic DRF example, scaled: 180 GiB and 90 vcores; a's tasks <4 GiB, 1 vcore>
    // (memory-dominant), b's <1 GiB, 3 vcores> (CPU-dominant).
    let scenario = CLUSTER.replace("node: {memory-mb: 8192, vcores: 8}", "node: {memory-mb: 18432, vcores: 9}");
    let queues = "scheduler: fair\ndefaults: {scheduling-policy: drf}\nqueues:\n  a: {weight: 1}\n  b: {weight: 1}\n";
    let trace = vec![
        sized_app(0, "a", "ann", 1000, Resource::new(4096, 1), Some(10_000)),
        sized_app(0, "b", "bo", 1000, Resource::new(1024, 3), Some(10_000)),
    ];
    let (report, _) = run_logged(input(&scenario, Some(queues), Some(trace)));
    for t in [45_000, 85_000] {
        let (a, b) = (share(&report, "root.a", t), share(&report, "root.b", t));
        // Dominant shares within one task of each other (a task is 2.2% of memory for a, 3.3%
        // of vcores for b).
        assert!((a - b).abs() <= 0.04, "dominant shares at {t} ms: a {a:.3}, b {b:.3}");
        assert!(a >= 0.55 && b >= 0.55, "both well served at {t} ms: a {a:.3}, b {b:.3}");
    }
    // DRF's ideal is 29 of a's tasks and 19 of b's (vcores run out first); packing 10 nodes of
    // 18 GiB / 9 vcores leaves a few vcores stranded, so a little less. Memory-only fairness
    // would have given b's small-memory tasks far more.
    let i = report.utilization.series.t_ms.iter().position(|t| *t == 85_000).unwrap();
    let tasks = |q: &str, per_task_vcores: u32| (report.queue(q).unwrap().series.used_vcores[i] - 1) / per_task_vcores;
    let (a_tasks, b_tasks) = (tasks("root.a", 1), tasks("root.b", 3));
    assert!((25..=30).contains(&a_tasks), "a runs {a_tasks} tasks");
    assert!((17..=20).contains(&b_tasks), "b runs {b_tasks} tasks");
}

#[test]
fn a_failed_nodes_containers_run_again_and_the_apps_still_finish() {
    let scenario = |failures: &str| {
        CLUSTER.replace("duration: 90s", "duration: 240s").replace("report:", &format!("failures: {failures}\nreport:"))
    };
    let trace = vec![app(0, "default", "ann", 150, Some(20_000)), app(500, "default", "bo", 150, Some(20_000))];
    // Where do the AMs run? Failures at 15 s do not change placements made before.
    let (_, log) = run_logged(input(&scenario("{}"), None, Some(trace.clone())));
    let am_nodes: Vec<u32> = events(&log, "alloc")
        .iter()
        .filter(|l| l.contains("\"am\":true"))
        .map(|l| l.split("\"node\":\"node").nth(1).unwrap()[..5].parse().unwrap())
        .collect();
    assert_eq!(am_nodes.len(), 2);
    // The first app asks first and gets every task slot. Fail the second app's AM node (its
    // attempt restarts) and two nodes running only the first app's tasks (its live AM is told
    // they were lost and asks again), for a minute.
    let mut failed = vec![am_nodes[1]];
    failed.extend((0..10).filter(|n| !am_nodes.contains(n)).take(2));
    let failures = format!("{{scheduled: [{{at: 15s, nodes: {failed:?}, down-for: 60s}}]}}");
    let (report, log) = run_logged(input(&scenario(&failures), None, Some(trace)));

    assert_eq!(report.totals.node_failures, 3);
    assert_eq!(report.totals.nodes_lost, 3, "the core declared all three lost after the expiry");
    assert_eq!(events(&log, "node_lost").len(), 3);
    assert_eq!(events(&log, "node_recovered").len(), 3);
    assert_eq!(report.totals.attempts_restarted, 1, "the AM on a failed node was restarted");
    // 3 nodes × 8 slots, less the second app's AM.
    let aborted = events(&log, "complete").iter().filter(|l| l.contains("\"exit\":-100")).count();
    assert_eq!(aborted, 24, "every container of the lost nodes completed ABORTED");
    assert_eq!(report.queue("root.default").unwrap().containers_lost, 23, "the first app was told of 23 lost tasks");
    assert_eq!(report.totals.tasks_rerun, 23, "and ran them again");
    assert_eq!(report.totals.apps_finished, 2, "both apps finished despite the failures");
    assert_eq!(report.totals.apps_failed, 0);
    assert_eq!(report.totals.tasks_completed, 300, "every task succeeded exactly once");
}
