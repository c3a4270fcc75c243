//! Helpers for the simulator's tests: scenarios and queue files written inline.

#![allow(dead_code)]

use weft_common::Resource;
use weft_rm_core::queues::QueuesConfig;
use weft_sim::trace::{AppSpec, Durations, Stage};
use weft_sim::workload::Generator;
use weft_sim::{Outputs, Report, Scenario, SimInput, Workload, run};

pub fn scenario(yaml: &str) -> Scenario {
    Scenario::parse(yaml, "test-scenario.yaml").unwrap_or_else(|e| panic!("{e}"))
}

pub fn queues(yaml: Option<&str>) -> QueuesConfig {
    match yaml {
        Some(text) => QueuesConfig::parse(text, "test-queues.yaml").unwrap_or_else(|e| panic!("{e}")),
        None => weft_sim::load_queues(None).expect("FIFO"),
    }
}

/// The scenario's own workload (its generator), or `trace` when given.
pub fn input(scenario_yaml: &str, queues_yaml: Option<&str>, trace: Option<Vec<AppSpec>>) -> SimInput {
    let scenario = scenario(scenario_yaml);
    let workload = match trace {
        Some(apps) => Workload::Trace(apps),
        None => {
            let spec = scenario.workload.generator.as_ref().expect("a generator workload");
            Workload::Generator(Generator::new(spec, scenario.seed, 1.0, scenario.duration.0))
        }
    };
    SimInput { scenario, queues: queues(queues_yaml), workload }
}

/// Runs and returns the report and the decision log.
pub fn run_logged(input: SimInput) -> (Report, Vec<u8>) {
    let log = SharedBuf::default();
    let outputs = Outputs { decisions: Some(Box::new(log.clone())), ..Outputs::default() };
    let report = run(input, outputs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.core_errors.count, 0, "the core refused simulated calls: {:?}", report.core_errors.examples);
    (report, log.take())
}

/// One app of `tasks` tasks of 1 GiB / 1 vcore (an AM of the same size), `duration_ms` each
/// (None: long-running).
pub fn app(submit_ms: u64, queue: &str, user: &str, tasks: u32, duration_ms: Option<u64>) -> AppSpec {
    sized_app(submit_ms, queue, user, tasks, Resource::new(1024, 1), duration_ms)
}

pub fn sized_app(
    submit_ms: u64,
    queue: &str,
    user: &str,
    tasks: u32,
    size: Resource,
    duration_ms: Option<u64>,
) -> AppSpec {
    AppSpec {
        submit_ms,
        name: None,
        queue: Some(queue.to_owned()),
        user: user.to_owned(),
        priority: 0,
        am: Resource::new(1024, 1),
        stages: vec![Stage {
            count: tasks,
            resource: size,
            durations: duration_ms.map_or(Durations::LongRunning, Durations::Fixed),
        }],
    }
}

/// A `Write` whose bytes the test can read after the run consumed the writer.
#[derive(Clone, Default)]
pub struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl SharedBuf {
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decision-log lines of kind `ev`.
pub fn events<'a>(log: &'a [u8], ev: &str) -> Vec<&'a str> {
    let needle = format!("\"ev\":\"{ev}\"");
    std::str::from_utf8(log).expect("UTF-8 log").lines().filter(|l| l.contains(&needle)).collect()
}
