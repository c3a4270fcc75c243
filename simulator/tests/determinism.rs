//! Same scenario, seed and inputs ⇒ byte-identical decision log; another seed ⇒ another log;
//! a generated workload written as a trace replays to the same log.

mod common;

use common::{SharedBuf, events, input, run_logged};
use weft_sim::trace::parse_trace;
use weft_sim::{Outputs, Workload, run};

/// Everything random at once: Poisson and closed-loop arrivals, drawn task counts, sizes and
/// durations, random and scheduled node failures, and capacity preemption.
const BUSY: &str = "
seed: 11
duration: 80s
cluster: {nodes: 8, node: {memory-mb: 8192, vcores: 8}, racks: 2}
rm: {nm-expiry: 4s}
failures:
  node-mtbf: 5m
  down-for: {uniform: {min: 10s, max: 30s}}
  scheduled: [{at: 30s, count: 2, down-for: 20s}]
workload:
  generator:
    streams:
      - queue: a
        users: [\"ann{1..3}\"]
        arrival: {poisson: {per-minute: 15}}
        stages:
          - count: {uniform: {min: 5, max: 40}}
            sizes: [{memory-mb: 1024, vcores: 1, weight: 3}, {memory-mb: 2048, vcores: 2}]
            duration: {exponential: {mean: 8s, max: 40s}}
          - count: 2
            size: {memory-mb: 2048, vcores: 1}
            duration: {lognormal: {median: 5s, sigma: 0.5}}
      - queue: b
        users: [bo]
        arrival: {closed: {apps: 3, think: 2s}}
        start: 20s
        stages:
          - count: {exponential: {mean: 30}}
            size: {memory-mb: 1024, vcores: 1}
            duration: {uniform: {min: 2s, max: 12s}}
report: {sample-interval: 5s}
";

const QUEUES: &str = "scheduler: capacity
preemption: {enabled: true, monitoring-interval-ms: 1000, max-wait-before-kill-ms: 2000, max-ignored-over-capacity: 0.0}
queues:
  a: {capacity: 60%, user-limit-factor: -1}
  b: {capacity: 40%, user-limit-factor: -1}
";

fn log_for(scenario: &str) -> Vec<u8> {
    run_logged(input(scenario, Some(QUEUES), None)).1
}

#[test]
fn the_same_seed_gives_byte_identical_decision_logs_and_another_seed_does_not() {
    let first = log_for(BUSY);
    let second = log_for(BUSY);
    // The log exercises everything worth comparing.
    for ev in [
        "app_accepted",
        "alloc",
        "complete",
        "preempt_mark",
        "preempt_kill",
        "node_failed",
        "node_lost",
        "app_finished",
    ] {
        assert!(!events(&first, ev).is_empty(), "no {ev} in the decision log");
    }
    assert!(
        first == second,
        "two runs with seed 11 differ (first difference at byte {})",
        first_difference(&first, &second)
    );
    let other = log_for(&BUSY.replace("seed: 11", "seed: 12"));
    assert!(first != other, "seeds 11 and 12 gave the same decision log");
}

#[test]
fn long_polling_ams_are_deterministic_too() {
    let long_poll = BUSY.replace("report:", "am: {long-poll: 1s}\nreport:");
    let first = log_for(&long_poll);
    assert!(first == log_for(&long_poll), "long-poll runs differ");
    assert!(first != log_for(BUSY), "long polling changed nothing");
}

#[test]
fn a_written_trace_replays_to_the_same_decision_log() {
    let trace = SharedBuf::default();
    let log = SharedBuf::default();
    let outputs =
        Outputs { decisions: Some(Box::new(log.clone())), trace: Some(Box::new(trace.clone())), progress: false };
    let generated = run(input(BUSY, Some(QUEUES), None), outputs).unwrap();
    let generated_log = log.take();
    let apps = parse_trace(trace.take().as_slice(), "written.jsonl").unwrap();
    assert_eq!(apps.len() as u64, generated.totals.apps_submitted);
    let mut replay = input(BUSY, Some(QUEUES), None);
    replay.workload = Workload::Trace(apps);
    let (replayed, replay_log) = run_logged(replay);
    assert_eq!(replayed.totals.apps_submitted, generated.totals.apps_submitted);
    assert!(
        generated_log == replay_log,
        "the replay decided differently (first difference at byte {})",
        first_difference(&generated_log, &replay_log)
    );
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}
