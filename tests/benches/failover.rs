//! Failover time with real processes: two RMs (release `weft` binaries) on a real PostgreSQL,
//! two NMs heartbeating every second (the default). Each run kills the active RM with SIGKILL and
//! measures until the new active has made its first allocation: right after the kill a client
//! submits an app (the SDK retries across both RM addresses while neither is active), and the
//! run ends when that app's AM container is allocated. Target: p99 ≤ 3 s. Then as many planned
//! handovers (`transition-to-standby` on the active → first allocation by the other RM), target
//! ≤ 500 ms.
//!
//! `cargo bench -p weft-tests --bench failover` (root; PostgreSQL installed). Knobs:
//! `WEFT_FAILOVER_RUNS` (default 20); `WEFT_BIN` to use a given `weft` binary instead of
//! building the release one.

use std::time::{Duration, Instant};

use anyhow::Context;
use weft_appmaster_sdk::RmClient;
use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext, Commands};
use weft_tests::{Cluster, ClusterOptions, weft_release_bin};

const TARGET_P99_MS: f64 = 3_000.0;
const TARGET_HANDOVER_MS: f64 = 500.0;

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("WEFT_FAILOVER_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let options = ClusterOptions {
        ha: true,
        nm_heartbeat_ms: 1_000,
        weft_bin: Some(weft_release_bin()),
        log_filter: Some("info".into()),
        ..ClusterOptions::default()
    };
    let (lease, renew) = (options.rm_lease_ms, options.rm_renew_ms);
    let mut cluster = Cluster::start(options)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let addresses: Vec<String> = cluster.rm_urls().split(',').map(str::to_owned).collect();
    let client = RmClient::new(addresses, "bench")?;

    let mut samples_ms = Vec::new();
    for run in 1..=runs {
        let active = cluster.wait_for_active()?;
        cluster.wait_for_nodes(2)?;
        let killed = Instant::now();
        cluster.signal_rm(active, libc::SIGKILL);
        let allocated = runtime.block_on(first_allocation(&client))?;
        let ms = allocated.duration_since(killed).as_secs_f64() * 1_000.0;
        println!("run {run:>2}: kill → first allocation {ms:7.0} ms");
        samples_ms.push(ms);
        cluster.start_rm_again(active)?;
    }
    // Planned handovers: transition-to-standby on the active → first allocation by the other.
    let mut handover_ms = Vec::new();
    for run in 1..=runs {
        let active = cluster.wait_for_active()?;
        cluster.wait_for_nodes(2)?;
        let asked = Instant::now();
        runtime.block_on(weft_appmaster_sdk::admin::transition_to_standby(&cluster.rms[active].http_address))?;
        let allocated = runtime.block_on(first_allocation(&client))?;
        let ms = allocated.duration_since(asked).as_secs_f64() * 1_000.0;
        println!("run {run:>2}: handover → first allocation {ms:7.0} ms");
        handover_ms.push(ms);
    }
    cluster.assert_all_alive()?;

    println!();
    println!("{runs} runs each, lease {lease} ms, renew {renew} ms, NM heartbeat 1000 ms:");
    summarize("failover (kill -9 active → first allocation by the new active)", samples_ms, TARGET_P99_MS);
    summarize("planned handover (transition-to-standby → first allocation)", handover_ms, TARGET_HANDOVER_MS);
    Ok(())
}

fn summarize(what: &str, mut samples_ms: Vec<f64>, target_ms: f64) {
    samples_ms.sort_by(f64::total_cmp);
    let n = samples_ms.len();
    let pick = |p: f64| samples_ms[(((p / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1];
    let (p50, p99) = (pick(50.0), pick(99.0));
    println!("{what}:");
    println!("  p50 {p50:.0} ms   p99 {p99:.0} ms   max {:.0} ms", samples_ms[n - 1]);
    println!("  target p99 ≤ {target_ms:.0} ms: {}", if p99 <= target_ms { "met" } else { "MISSED" });
}

/// Submits a small app (retrying until some RM is active) and returns when its AM container
/// has been allocated.
async fn first_allocation(client: &RmClient) -> anyhow::Result<Instant> {
    let context = ApplicationSubmissionContext {
        application_name: Some("failover-probe".into()),
        am_container_spec: AmContainerSpec {
            commands: Some(Commands { command: vec!["sleep 1".into()] }),
            ..Default::default()
        },
        resource: Some(weft_common::Resource::new(128, 1)),
        ..Default::default()
    };
    let id = client.submit(&context).await.context("submitting the probe app")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempts = client.attempts(id).await?;
        if attempts.iter().any(|a| !a.container_id.is_empty()) {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "{id} got no AM container within 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
