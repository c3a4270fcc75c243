//! Every bundled scenario (and the what-if example with both queue files) runs, small, and its
//! decision log has the recorded digest. The digests were taken before the RM was split into
//! crates; a change to them is a change of scheduling behaviour and must be explained (and the
//! digest updated) in the same commit.

mod common;

use std::path::Path;

use sha2::{Digest, Sha256};
use weft_sim::scenario::{Dur, parse_duration};
use weft_sim::{Outputs, Overrides, Scenario, prepare, run};

struct Case {
    scenario: &'static str,
    /// A queues file instead of the scenario's own (relative to the crate).
    queues: Option<&'static str>,
    nodes: Option<u32>,
    duration: &'static str,
    digest: &'static str,
}

/// One test per case, so they run in parallel; each is kept to a few seconds in a debug build.
macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {$(
        #[test]
        fn $name() {
            check(&$case);
        }
    )*};
}

cases! {
    capacity_10k: Case { scenario: "capacity-10k.yaml", queues: None, nodes: Some(40), duration: "12s", digest: "64a4f9a717c9a8460a8a561103ee745928d408cd5d0501b57de6f2dbe944ab1b" };
    fair_drf_10k: Case { scenario: "fair-drf-10k.yaml", queues: None, nodes: Some(40), duration: "20s", digest: "3aa4272cae016eedb3176fa32ddcde1bb56f0e59985bf3c91bac00dca89ab560" };
    fifo_10k: Case { scenario: "fifo-10k.yaml", queues: None, nodes: Some(40), duration: "12s", digest: "091177a9c09bce3197ce06e74cf8ca7797cd559e6906f39bf85404743f4912c1" };
    scale_50k: Case { scenario: "scale-50k.yaml", queues: None, nodes: Some(40), duration: "5500ms", digest: "a188fdaac45be5d49ffc6a8300f14d5f7532def6c8756be4e704ee4076000174" };
    whatif_current: Case { scenario: "whatif/scenario.yaml", queues: None, nodes: None, duration: "3m", digest: "f23a53d56c19d3f8008f7025038512dcf8757ab3b3bc96d2b38c8f1f1fe5bcb7" };
    whatif_proposed: Case {
        scenario: "whatif/scenario.yaml",
        queues: Some("scenarios/whatif/queues-proposed.yaml"),
        nodes: None,
        duration: "3m",
        digest: "f600e319d4fde69b6946be18d181f0899243fde6dfe4d81d5e2af24d84c7a17a",
    };
}

fn decision_log_digest(case: &Case) -> (String, u64) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = crate_dir.join("scenarios").join(case.scenario);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let overrides = Overrides {
        nodes: case.nodes,
        duration: Some(Dur(parse_duration(case.duration).unwrap())),
        queues_file: case.queues.map(|q| crate_dir.join(q)),
        ..Overrides::default()
    };
    let input = prepare(scenario, path.parent().unwrap(), &overrides).unwrap_or_else(|e| panic!("{e}"));
    let log = common::SharedBuf::default();
    let report = run(input, Outputs { decisions: Some(Box::new(log.clone())), ..Outputs::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.core_errors.count, 0,
        "{}: the core refused calls: {:?}",
        case.scenario, report.core_errors.examples
    );
    assert!(report.throughput.allocations > 0, "{}: nothing was allocated", case.scenario);
    (hex::encode(Sha256::digest(log.take())), report.decision_log_lines)
}

fn check(case: &Case) {
    let (digest, lines) = decision_log_digest(case);
    assert_eq!(
        digest, case.digest,
        "{} (queues {:?}): the decision log ({lines} lines) changed",
        case.scenario, case.queues
    );
}
