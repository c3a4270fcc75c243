//! Failover time with real processes: two RMs (release `weft` binaries) on a real PostgreSQL,
//! two NMs heartbeating every second (the default). Each run kills the active RM with SIGKILL and
//! measures until the new active has made its first allocation: right after the kill a client
//! submits an app (the SDK retries across both RM addresses while neither is active), and the
//! run ends when that app's AM container is allocated. Target: p99 ≤ 3 s. Then as many planned
//! handovers: `transition-to-standby` on the active → the other RM active (target ≤ 500 ms), and
//! → its first allocation (which also waits for an NM to re-register, up to one heartbeat).
//!
//! `cargo bench -p weft-tests --bench failover` (root; PostgreSQL installed). Knobs:
//! `WEFT_FAILOVER_RUNS` (default 20); `WEFT_BIN` to use a given `weft` binary instead of
//! building the release one.

use std::time::{Duration, Instant};

use anyhow::Context;
use weft_appmaster_sdk::RmClient;
use weft_common::rest::{AmContainerSpec, ApplicationSubmissionContext, Commands};
use weft_tests::{Cluster, ClusterOptions, percentile, weft_release_bin};

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
        let ms = since(killed, allocated);
        println!("run {run:>2}: kill → first allocation {ms:7.0} ms");
        samples_ms.push(ms);
        cluster.start_rm_again(active)?;
    }
    // Planned handovers: transition-to-standby on the active → first allocation by the other.
    let (mut handover_ms, mut handover_allocation_ms) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let active = cluster.wait_for_active()?;
        cluster.wait_for_nodes(2)?;
        let other = cluster.rms[1 - active].http_address.clone();
        let asked = Instant::now();
        runtime.block_on(weft_appmaster_sdk::admin::transition_to_standby(&cluster.rms[active].http_address))?;
        let switched = runtime.block_on(active_at(&other))?;
        let allocated = runtime.block_on(first_allocation(&client))?;
        let (ms, allocation_ms) = (since(asked, switched), since(asked, allocated));
        println!("run {run:>2}: handover → other RM active {ms:5.0} ms, → first allocation {allocation_ms:5.0} ms");
        handover_ms.push(ms);
        handover_allocation_ms.push(allocation_ms);
    }
    cluster.assert_all_alive()?;

    println!();
    println!("{runs} runs each, lease {lease} ms, renew {renew} ms, NM heartbeat 1000 ms:");
    summarize("failover (kill -9 active → first allocation by the new active)", samples_ms, Some(TARGET_P99_MS));
    summarize("planned handover (transition-to-standby → the other RM active)", handover_ms, Some(TARGET_HANDOVER_MS));
    summarize("planned handover (transition-to-standby → first allocation)", handover_allocation_ms, None);
    Ok(())
}

fn summarize(what: &str, mut samples_ms: Vec<f64>, target_ms: Option<f64>) {
    samples_ms.sort_by(f64::total_cmp);
    let n = samples_ms.len();
    let (p50, p99) = (percentile(&samples_ms, 50.0), percentile(&samples_ms, 99.0));
    println!("{what}:");
    println!("  p50 {p50:.0} ms   p99 {p99:.0} ms   max {:.0} ms", samples_ms[n - 1]);
    if let Some(target_ms) = target_ms {
        println!("  target p99 ≤ {target_ms:.0} ms: {}", if p99 <= target_ms { "met" } else { "MISSED" });
    }
}

fn since(start: Instant, end: Instant) -> f64 {
    end.duration_since(start).as_secs_f64() * 1_000.0
}

/// Returns when the RM at `address` says it is active.
async fn active_at(address: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if weft_appmaster_sdk::admin::ha_state(address).await.is_ok_and(|s| s.ha_state == "ACTIVE") {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "{address} did not become active within 30 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
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
