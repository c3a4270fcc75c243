//! How soon a client waiting for an application learns that it ended: `weft dshell` with one
//! container on an idle local cluster (release binaries: one RM with its SQLite store, two NMs),
//! 20 runs after 2 warm-up runs.
//!
//! - submit → client returned: the whole `weft dshell` invocation, process start to exit;
//! - app finished → client returned: from the RM's `finishedTime` of the app (its wall clock,
//!   in ms) to the client's exit, read on the same host's clock. Target: p99 ≤ 50 ms (before the
//!   long-poll on the app resource, the client polled every second: ~500 ms on average).
//!
//! `cargo bench -p weft-tests --bench app_wait` (root for cgroups; `WEFT_BIN` to use a given
//! `weft` binary instead of building the release one; `WEFT_APP_WAIT_RUNS` for another count).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use weft_tests::{Cluster, ClusterOptions, percentile, weft_release_bin};

const WARMUP: usize = 2;
const TARGET_FINISH_TO_RETURN_P99_MS: f64 = 50.0;

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("WEFT_APP_WAIT_RUNS").ok().map(|v| v.parse()).transpose()?.unwrap_or(20);
    ensure!(runs > 0, "WEFT_APP_WAIT_RUNS must be at least 1");
    let bin = weft_release_bin();
    eprintln!("app_wait: weft binary {}", bin.display());
    let options = ClusterOptions {
        nodemanagers: 2,
        nm_heartbeat_ms: 1_000,
        weft_bin: Some(bin.clone()),
        log_filter: Some("info".into()),
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(options).context("starting the cluster")?;
    let mut submit_to_return = Vec::new();
    let mut finish_to_return = Vec::new();
    for run in 0..WARMUP + runs {
        let started = Instant::now();
        let out = Command::new(&bin)
            .args(["dshell", "--containers", "1", "--memory-mb", "128", "--", "true"])
            .env("WEFT_RM", cluster.rm_url())
            .env("USER", "tester")
            .env("WEFT_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .context("running weft dshell")?;
        let returned_ms = epoch_ms();
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(out.status.success(), "run {run}: dshell failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let id = stdout
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("application_"))
            .context("dshell prints the app id")?;
        let app = cluster.app(id)?;
        let finished_ms = app["finishedTime"].as_f64().context("finishedTime")?;
        ensure!(app["finalStatus"] == "SUCCEEDED", "run {run}: {app}");
        if run >= WARMUP {
            submit_to_return.push(elapsed.as_secs_f64() * 1_000.0);
            finish_to_return.push(returned_ms - finished_ms);
        }
    }
    cluster.assert_all_alive()?;
    println!("\n{runs} one-container dshell runs after {WARMUP} warm-up (release build, idle 2-NM cluster):");
    println!("{:<36} {:>8} {:>8} {:>8}   target", "", "p50 ms", "p99 ms", "max ms");
    for (name, mut values, target) in [
        ("submit → client returned", submit_to_return, None),
        ("app finished → client returned", finish_to_return, Some(TARGET_FINISH_TO_RETURN_P99_MS)),
    ] {
        values.sort_by(f64::total_cmp);
        let (p50, p99, max) = (percentile(&values, 50.0), percentile(&values, 99.0), values[values.len() - 1]);
        let verdict = match target {
            Some(t) => format!("p99 ≤ {t:.0} ms: {}", if p99 <= t { "met" } else { "MISSED" }),
            None => "—".into(),
        };
        println!("{name:<36} {p50:>8.1} {p99:>8.1} {max:>8.1}   {verdict}");
    }
    println!("(finishedTime has millisecond resolution; the client's exit is read when its process ended)");
    Ok(())
}

fn epoch_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64() * 1_000.0
}
