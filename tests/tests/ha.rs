//! Active/standby ResourceManagers on a real PostgreSQL server: failover by kill -9, a paused
//! active that must not write, planned handover, repeated failovers, and the database restarting
//! under a running cluster. Every test runs the real `weft` binaries and `postgres`.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_tests::{Cluster, ClusterOptions, http_full, wait_for, weft_bin};

const MINUTE: Duration = Duration::from_secs(60);

fn ha_options(nm_memory_mb: u64, nm_vcores: u32) -> ClusterOptions {
    ClusterOptions { ha: true, nm_memory_mb, nm_vcores, am_expiry_ms: 30_000, ..ClusterOptions::default() }
}

/// Submits a distributed-shell app without waiting for it; each container touches a file named
/// after itself in `starts/` (so restarted containers would show up as extra files), then
/// sleeps `sleep_s`.
fn submit_dshell(c: &Cluster, containers: u32, sleep_s: u32) -> String {
    let starts = c.path().join("starts");
    std::fs::create_dir_all(&starts).expect("starts dir");
    let command = format!("touch {}/$CONTAINER_ID && sleep {sleep_s}", starts.display());
    let out = c.weft(&[
        "dshell",
        "--no-wait",
        "--containers",
        &containers.to_string(),
        "--memory-mb",
        "128",
        "--am-memory-mb",
        "128",
        "--",
        &command,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dshell submit failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("application_"))
        .unwrap_or_else(|| panic!("no app id in {stdout}"))
        .to_owned()
}

fn started_containers(c: &Cluster) -> usize {
    std::fs::read_dir(c.path().join("starts")).map_or(0, |d| d.count())
}

/// Waits until every app reached a final state; returns them.
fn wait_all_final(c: &Cluster, ids: &[String], timeout: Duration) -> Vec<Value> {
    ids.iter().map(|id| c.wait_for_final(id, timeout).unwrap_or_else(|e| panic!("{id}: {e:#}"))).collect()
}

/// Every app SUCCEEDED on its first attempt, and the RM lists exactly these apps.
fn assert_all_succeeded_once(c: &Cluster, ids: &[String], apps: &[Value]) {
    for app in apps {
        assert_eq!(app["finalStatus"], "SUCCEEDED", "{app:#}");
        let id = app["id"].as_str().unwrap();
        let attempts = c.get(&format!("/ws/v1/cluster/apps/{id}/appattempts")).unwrap();
        let n = attempts["appAttempts"]["appAttempt"].as_array().map_or(0, Vec::len);
        assert_eq!(n, 1, "{id} needed a new attempt: {attempts:#}");
    }
    let listed: BTreeSet<String> = c.get("/ws/v1/cluster/apps").unwrap()["apps"]["app"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let submitted: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(listed, submitted, "no app lost or duplicated");
}

/// Kills the active RM with SIGKILL and returns (its index, the new active's index, time until
/// the other RM said it is active).
fn kill_active(c: &mut Cluster) -> (usize, usize, Duration) {
    let old = c.wait_for_active().unwrap();
    let killed = Instant::now();
    c.signal_rm(old, libc::SIGKILL);
    let new = c.wait_for_active().unwrap();
    assert_ne!(old, new);
    (old, new, killed.elapsed())
}

fn epoch_of(c: &Cluster, index: usize) -> u64 {
    c.ha_state(index).and_then(|s| s["epoch"].as_u64()).expect("epoch")
}

#[test]
fn killing_the_active_loses_no_app_and_restarts_no_container() {
    let mut c = Cluster::start(ha_options(6144, 32)).unwrap();
    let ids: Vec<String> = (0..20).map(|_| submit_dshell(&c, 2, 6)).collect();
    wait_for("all 40 worker containers to start", MINUTE, || (started_containers(&c) == 40).then_some(())).unwrap();

    let old = c.wait_for_active().unwrap();
    let killed = Instant::now();
    c.signal_rm(old, libc::SIGKILL);
    // A submission while no RM is active: the client retries until the new active takes it.
    let during = std::thread::scope(|s| {
        let submission = s.spawn(|| submit_dshell(&c, 1, 0));
        let new = c.wait_for_active().unwrap();
        let took = killed.elapsed();
        assert_ne!(new, old);
        let o = &c.options;
        let bound = Duration::from_millis(o.rm_lease_ms + o.rm_renew_ms + 1_000);
        assert!(took <= bound, "the standby took {took:?} to become active (bound {bound:?})");
        eprintln!("standby active {took:?} after the kill");
        submission.join().unwrap()
    });

    let all: Vec<String> = ids.iter().cloned().chain([during]).collect();
    let apps = wait_all_final(&c, &all, 2 * MINUTE);
    assert_all_succeeded_once(&c, &all, &apps);
    assert_eq!(started_containers(&c), 41, "a worker container was started twice");
    c.assert_all_alive().unwrap();
}

/// Rows the RM at `epoch` last wrote, as text: what a fenced RM must not change.
fn rows_written_at(c: &Cluster, epoch: u64) -> String {
    let pg = c.pg.as_ref().unwrap();
    let sql = format!(
        "SELECT (SELECT coalesce(string_agg(a::text, '|' ORDER BY id), '') FROM applications a WHERE written_epoch = {epoch}) \
         || (SELECT coalesce(string_agg(t::text, '|' ORDER BY id), '') FROM app_attempts t WHERE written_epoch = {epoch}) \
         || (SELECT coalesce(string_agg(n::text, '|' ORDER BY id), '') FROM nodes n WHERE written_epoch = {epoch})"
    );
    pg.psql("weft", &sql).unwrap()
}

#[test]
fn a_paused_active_writes_nothing_once_resumed_and_steps_down() {
    let mut c = Cluster::start(ha_options(2048, 8)).unwrap();
    let ids: Vec<String> = (0..3).map(|_| submit_dshell(&c, 1, 3)).collect();
    wait_for("the workers to start", MINUTE, || (started_containers(&c) == 3).then_some(())).unwrap();
    let old = c.wait_for_active().unwrap();
    let old_epoch = epoch_of(&c, old);
    let old_url = c.rms[old].http_address.clone();

    c.signal_rm(old, libc::SIGSTOP);
    let new = wait_for("the standby to take over", MINUTE, || c.active_rm().filter(|&i| i != old)).unwrap();
    assert!(epoch_of(&c, new) > old_epoch);
    let before = rows_written_at(&c, old_epoch);

    // A submission queued at the paused RM: when it resumes it has something to write.
    let submit = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "30", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "--data"])
        .arg(r#"{"application-id":"application_1_0001","application-name":"late","am-container-spec":{"commands":{"command":["true"]}}}"#)
        .arg(format!("{old_url}/ws/v1/cluster/apps?user.name=tester"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    c.signal_rm(old, libc::SIGCONT);
    let status = String::from_utf8_lossy(&submit.wait_with_output().unwrap().stdout).into_owned();
    assert_ne!(status, "202", "the deposed RM accepted a submission");
    wait_for("the old active to step down", MINUTE, || {
        let state = c.ha_state(old)?;
        (state["haState"] == "STANDBY" && state["activeAddress"] == c.rms[new].http_address.as_str()).then_some(())
    })
    .unwrap();
    assert_eq!(rows_written_at(&c, old_epoch), before, "the deposed RM wrote to the store");

    // It redirects clients to the new active.
    let (status, headers, _) = http_full("GET", &format!("{old_url}/ws/v1/cluster/apps"), None, "").unwrap();
    assert_eq!(status, 307);
    let location = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.clone());
    assert_eq!(location.as_deref(), Some(format!("{}/ws/v1/cluster/apps", c.rms[new].http_address).as_str()));
    let info = weft_tests::http_json("GET", &format!("{old_url}/ws/v1/cluster/info"), None).unwrap().1;
    assert_eq!(info["clusterInfo"]["haState"], "STANDBY");
    let (_, metrics) = weft_tests::http("GET", &format!("{old_url}/metrics"), None, "text/plain").unwrap();
    assert!(metrics.contains("weft_rm_ha_active 0"), "{metrics}");
    assert!(metrics.contains("weft_rm_containers 0"), "a standby reports no cluster state: {metrics}");

    let apps = wait_all_final(&c, &ids, MINUTE);
    assert_all_succeeded_once(&c, &ids, &apps);
    c.assert_all_alive().unwrap();
}

#[test]
fn planned_handover_under_load_keeps_every_app() {
    let mut c = Cluster::start(ha_options(4096, 16)).unwrap();
    let ids: Vec<String> = (0..8).map(|_| submit_dshell(&c, 2, 4)).collect();
    wait_for("the workers to start", MINUTE, || (started_containers(&c) == 16).then_some(())).unwrap();
    let old = c.wait_for_active().unwrap();

    let asked = Instant::now();
    let out = Command::new(weft_bin())
        .args(["rmadmin", "--rm", &c.rms[old].http_address, "transition-to-standby"])
        .env("WEFT_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("STANDBY"));
    let new = wait_for("the other RM to take over", MINUTE, || c.active_rm().filter(|&i| i != old)).unwrap();
    // Well under the lease: the lease was released, not left to expire (the benchmark measures
    // the handover itself).
    let took = asked.elapsed();
    eprintln!("handover took {took:?}");
    assert!(took < Duration::from_millis(c.options.rm_lease_ms), "handover took {took:?}");

    // Both RMs answer get-state.
    let out = c.weft(&["rmadmin", "get-state"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("ACTIVE").count(), 1, "{text}");
    assert_eq!(text.matches("STANDBY").count(), 1, "{text}");
    // New work is accepted by the new active while the old one's lease is handed over.
    let late = submit_dshell(&c, 1, 0);
    let all: Vec<String> = ids.iter().cloned().chain([late]).collect();
    let apps = wait_all_final(&c, &all, MINUTE);
    assert_eq!(c.active_rm(), Some(new));
    assert_all_succeeded_once(&c, &all, &apps);
    assert_eq!(started_containers(&c), 17);
    c.assert_all_alive().unwrap();
}

#[test]
fn ten_failovers_in_a_row_with_apps_running() {
    let mut options = ha_options(4096, 16);
    options.rm_lease_ms = 1_000;
    options.rm_renew_ms = 200;
    let mut c = Cluster::start(options).unwrap();
    let ids: Vec<String> = (0..4).map(|_| submit_dshell(&c, 2, 25)).collect();
    wait_for("the workers to start", MINUTE, || (started_containers(&c) == 8).then_some(())).unwrap();
    for round in 0..10 {
        let (old, _, took) = kill_active(&mut c);
        eprintln!("failover {round}: {took:?}");
        c.start_rm_again(old).unwrap();
    }
    let apps = wait_all_final(&c, &ids, 2 * MINUTE);
    assert_all_succeeded_once(&c, &ids, &apps);
    assert_eq!(started_containers(&c), 8, "a worker container was started twice");
    c.assert_all_alive().unwrap();
}

#[test]
fn the_cluster_rides_out_a_database_restart() {
    let mut c = Cluster::start(ha_options(2048, 8)).unwrap();
    let ids: Vec<String> = (0..3).map(|_| submit_dshell(&c, 1, 4)).collect();
    wait_for("the workers to start", MINUTE, || (started_containers(&c) == 3).then_some(())).unwrap();

    c.pg.as_mut().unwrap().stop().unwrap();
    // Without the database no RM can hold the lease: the active steps down.
    wait_for("the active to step down", MINUTE, || c.active_rm().is_none().then_some(())).unwrap();
    c.pg.as_mut().unwrap().restart().unwrap();
    c.wait_for_active().unwrap();

    let late = submit_dshell(&c, 1, 0);
    let all: Vec<String> = ids.iter().cloned().chain([late]).collect();
    let apps = wait_all_final(&c, &all, MINUTE);
    assert_all_succeeded_once(&c, &all, &apps);
    assert_eq!(started_containers(&c), 4);
    c.assert_all_alive().unwrap();
}

/// A client that knows only one RM address (the CLI's default `--rm`): after that RM hands over,
/// it follows the standby's redirect to the new active, instead of asking the standby again
/// until its 60 s deadline and failing.
#[test]
fn a_cli_given_one_rm_address_follows_a_handover() {
    let mut c = Cluster::start(ha_options(2048, 8)).unwrap();
    let id = submit_dshell(&c, 1, 0);
    c.wait_for_final(&id, MINUTE).unwrap();
    let old = c.wait_for_active().unwrap();
    let only = c.rms[old].http_address.clone();
    let weft_at_one_rm = |args: &[&str]| {
        Command::new(weft_bin())
            .args(args)
            .env("WEFT_RM", &only)
            .env("USER", "tester")
            .env("WEFT_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    let out = weft_at_one_rm(&["rmadmin", "transition-to-standby"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = wait_for("the other RM to take over", MINUTE, || c.active_rm().filter(|&i| i != old)).unwrap();

    for args in [&["app", "list"][..], &["app", "status", &id]] {
        let asked = Instant::now();
        let out = weft_at_one_rm(args);
        let took = asked.elapsed();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "weft {args:?} failed after {took:?}: {stderr}");
        assert!(stdout.contains(&id), "weft {args:?}: {stdout}");
        eprintln!("weft {args:?} through the standby took {took:?}");
        assert!(took < Duration::from_secs(10), "weft {args:?} took {took:?}");
    }
    // The address the CLI knows is still the standby: the answers came from the other RM.
    assert_eq!(c.ha_state(old).unwrap()["haState"], "STANDBY");
    assert_eq!(c.active_rm(), Some(new));
    c.assert_all_alive().unwrap();
}
