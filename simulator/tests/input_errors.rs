//! Bad scenario files and traces are refused with the file, the line and the field.

use weft_sim::Scenario;
use weft_sim::trace::{AppSpec, parse_trace, to_line};

fn scenario_error(yaml: &str) -> String {
    Scenario::parse(yaml, "bad.yaml").expect_err("refused").to_string()
}

fn trace_error(text: &str) -> String {
    parse_trace(text.as_bytes(), "bad.jsonl").expect_err("refused").to_string()
}

const GOOD_LINE: &str = r#"{"submit_ms": 0, "queue": "a", "user": "ann", "am": {"memory_mb": 1024, "vcores": 1}, "tasks": [{"count": 2, "memory_mb": 1024, "vcores": 1, "duration_ms": 1000}]}"#;

#[test]
fn unknown_keys_and_wrong_types_name_file_line_and_field() {
    let err = scenario_error("duration: 60s\ncluster:\n  nodes: 10\n  nodse: 3\nworkload: {trace: t.jsonl}\n");
    assert!(err.contains("bad.yaml") && err.contains("line 4") && err.contains("nodse"), "{err}");
    let err = scenario_error("duration: 60s\ncluster:\n  nodes: -3\nworkload: {trace: t.jsonl}\n");
    assert!(err.contains("line 3") && err.contains("nodes"), "{err}");
}

#[test]
fn bad_durations_and_distributions_are_explained() {
    let err = scenario_error("duration: 10x\nworkload: {trace: t.jsonl}\n");
    assert!(err.contains("line 1") && err.contains("invalid duration \"10x\""), "{err}");
    let yaml = "duration: 60s
workload:
  generator:
    streams:
      - arrival: {every: 10s}
        stages:
          - count: {gaussian: {mean: 3}}
            size: {memory-mb: 1024, vcores: 1}
            duration: 5s
";
    let err = scenario_error(yaml);
    assert!(err.contains("line 7") && err.contains("gaussian") && err.contains("exponential"), "{err}");
}

#[test]
fn rules_beyond_the_yaml_shape_name_the_field_and_its_line() {
    let err = scenario_error("duration: 60s\ncluster:\n  nodes: 0\nworkload: {trace: t.jsonl}\n");
    assert!(err.contains("`cluster.nodes`") && err.contains("line 3") && err.contains("at least 1"), "{err}");
    let err = scenario_error("duration: 60s\nworkload: {}\n");
    assert!(err.contains("`workload`") && err.contains("line 2"), "{err}");
    let yaml = "duration: 60s
workload:
  generator:
    streams:
      - arrival: {poisson: {per-minute: 6}}
        stages:
          - count: 3
            size: {memory-mb: 1024, vcores: 1}
";
    let err = scenario_error(yaml);
    assert!(
        err.contains("`workload.generator.streams[0].stages[0].duration`") && err.contains("long-running"),
        "{err}"
    );
    let err = scenario_error("duration: 60s\nwarmup: 2m\nworkload: {trace: t.jsonl}\n");
    assert!(err.contains("`warmup`") && err.contains("line 2"), "{err}");
}

#[test]
fn trace_errors_name_the_line_and_the_field() {
    let err = trace_error(&format!("{GOOD_LINE}\n\n# a comment\n{{\"submit_ms\": 5, \"am\": {{}}\n"));
    assert!(err.contains("bad.jsonl line 4"), "{err}");
    let err = trace_error(&format!("{GOOD_LINE}\n{}\n", GOOD_LINE.replace("\"count\": 2", "\"count\": \"two\"")));
    assert!(err.contains("line 2") && err.contains("`tasks[0].count`"), "{err}");
    let err = trace_error(&GOOD_LINE.replace("\"user\"", "\"usr\""));
    assert!(err.contains("line 1") && err.contains("usr"), "{err}");
    let err = trace_error(&GOOD_LINE.replace("\"duration_ms\": 1000", "\"durations_ms\": [1000]"));
    assert!(err.contains("`tasks[0].durations_ms`") && err.contains("1 entries for count 2"), "{err}");
    let err = trace_error(&GOOD_LINE.replace(", \"duration_ms\": 1000", ""));
    assert!(err.contains("`tasks[0].duration_ms`") && err.contains("long_running"), "{err}");
    let err = trace_error(&GOOD_LINE.replace("\"count\": 2", "\"count\": 0"));
    assert!(err.contains("`tasks[0].count`") && err.contains("at least 1"), "{err}");
}

#[test]
fn traces_round_trip_and_come_back_sorted() {
    let later = GOOD_LINE.replace("\"submit_ms\": 0", "\"submit_ms\": 900");
    let mixed = later.replace(
        "\"duration_ms\": 1000}",
        "\"durations_ms\": [5, 7]}, {\"count\": 1, \"memory_mb\": 512, \"vcores\": 1, \"long_running\": true}",
    );
    let apps: Vec<AppSpec> = parse_trace(format!("{mixed}\n{GOOD_LINE}\n").as_bytes(), "t").unwrap();
    assert_eq!(apps.iter().map(|a| a.submit_ms).collect::<Vec<_>>(), vec![0, 900]);
    let written: String = apps.iter().map(|a| to_line(a) + "\n").collect();
    assert_eq!(parse_trace(written.as_bytes(), "t").unwrap(), apps);
}
