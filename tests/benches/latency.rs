//! Target 2 with real processes: on an idle local cluster (release `weft` binaries: one RM with
//! its default SQLite store, two NMs with cgroup v1 isolation),
//!
//! - submit → AM registered: p50 ≤ 20 ms, p99 ≤ 100 ms;
//! - allocation → container running in its cgroup at the NM: p50 ≤ 2 ms, p99 ≤ 10 ms.
//!
//! `cargo bench -p weft-tests --bench latency` (root, writable cgroup v1). Knobs:
//! `WEFT_LATENCY_APPS` (default 100) apps measured after `WEFT_LATENCY_WARMUP` (default 5);
//! `WEFT_BIN` to use a given `weft` binary instead of building the release one;
//! `WEFT_LATENCY_RAW=<file>` also writes every app's timestamps (JSON lines). The RM reads
//! `WEFT_RM__…` overrides from the environment, e.g. `WEFT_RM__STORE__KIND=memory` to see what
//! the SQLite store costs.
//!
//! This executable plays three roles, chosen by `WEFT_LATENCY_ROLE`:
//! - unset: the driver. It starts the cluster and submits apps one after another over the YARN
//!   REST API, each time waiting until the app finished and the NMs are idle again;
//! - `am`: the ApplicationMaster of each app (its launch context runs this executable). It
//!   registers, asks for one container, starts it on its NM and records when each step returned;
//! - `container`: the container the AM starts. It records when it began running and which
//!   cgroups it is in.
//!
//! The processes share the host's `CLOCK_REALTIME`, read in microseconds; each writes its
//! timestamps to a JSON file in the results directory passed in `WEFT_LATENCY_RESULTS`.
//!
//! "Running in its cgroup" is the container's first instruction in `main`: the NM writes the
//! child's pid into every controller's `cgroup.procs` between fork and exec
//! (`nodemanager/src/launch.rs`, `spawn` → `pre_exec(enter_container)`), so by the time this
//! code runs the process is inside its cgroup. The driver checks every container's
//! `/proc/self/cgroup` names a cgroup under an NM's cgroup root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use weft_appmaster_sdk::{AmRmClient, ContainerAsk, NmClient};
use weft_common::Resource;
use weft_common::protocol::{ContainerLaunchContext, RegisterAmRequest};
use weft_common::states::FinalStatus;
use weft_tests::{Cluster, ClusterOptions, http, http_full, http_json, percentile, wait_for, weft_release_bin};

const ROLE: &str = "WEFT_LATENCY_ROLE";
const RESULTS: &str = "WEFT_LATENCY_RESULTS";
const RUN: &str = "WEFT_LATENCY_RUN";
const TIMEOUT: Duration = Duration::from_secs(30);
/// Cgroup v1 controllers the NM puts every container into.
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// Microseconds since the epoch on `CLOCK_REALTIME`, the clock all processes on the host share.
fn now_us() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000
}

fn main() -> anyhow::Result<()> {
    // First thing, so in the AM and container roles it is when the process began running ours.
    let started = now_us();
    match std::env::var(ROLE).as_deref() {
        Ok("am") => am(started),
        Ok("container") => container(started),
        _ => driver(),
    }
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

/// Written under a temporary name and renamed, so the driver never reads half a file.
fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The command that runs this executable in a container. `exec`, so the container's process is
/// this executable rather than a bash waiting for it.
fn exec_command(exe: &Path) -> String {
    format!("exec '{}'", exe.display())
}

// ---------------------------------------------------------------------------------------------
// The container.

fn container(started: i64) -> anyhow::Result<()> {
    let results = PathBuf::from(var(RESULTS)?);
    let run = var(RUN)?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    write_json(&results.join(format!("container-{run}.json")), &json!({ "started_us": started, "cgroup": cgroup }))
}

// ---------------------------------------------------------------------------------------------
// The ApplicationMaster.

fn am(started: i64) -> anyhow::Result<()> {
    let results = PathBuf::from(var(RESULTS)?);
    let run = var(RUN)?;
    let exe = std::env::current_exe().context("locating this executable")?;
    // One thread is all an AM that does one thing at a time needs, and it starts fastest.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut rm = AmRmClient::from_env()?;
        rm.register(RegisterAmRequest::default()).await?;
        let registered = now_us();

        rm.add_request(&ContainerAsk::anywhere(1, Resource::new(128, 1)), 1);
        // With room on the cluster the RM serves a new ask within the allocate call, so this
        // returns the container at once; loop in case it does not.
        let container = loop {
            if let Some(c) = rm.allocate(0.0).await?.allocated.into_iter().next() {
                break c;
            }
        };
        let allocated = now_us();
        let environment = BTreeMap::from([
            (ROLE.to_owned(), "container".to_owned()),
            (RESULTS.to_owned(), results.display().to_string()),
            (RUN.to_owned(), run.clone()),
        ]);
        let context = ContainerLaunchContext {
            commands: vec![exec_command(&exe)],
            environment,
            local_resources: BTreeMap::new(),
        };
        NmClient::new()?.start_container(&container, context).await?;
        let start_returned = now_us();
        write_json(
            &results.join(format!("am-{run}.json")),
            &json!({
                "started_us": started,
                "registered_us": registered,
                "allocated_us": allocated,
                "start_returned_us": start_returned,
                "container_id": container.id.to_string(),
            }),
        )?;

        // Let the container end and unregister, so the app ends SUCCEEDED and the next one
        // starts on an idle cluster.
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let allocation = rm.allocate(1.0).await?;
            if let Some(status) = allocation.completed.iter().find(|s| s.container_id == container.id) {
                ensure!(status.exit_status == 0, "the container failed: {status:?}");
                break;
            }
            ensure!(Instant::now() < deadline, "the container did not complete within {TIMEOUT:?}");
        }
        rm.finish(FinalStatus::Succeeded, "").await?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// One app's timestamps (µs, CLOCK_REALTIME).
#[derive(Debug, Clone)]
struct Sample {
    /// The client, before POST new-application.
    new_app: i64,
    /// The client, before POST submit.
    submit: i64,
    /// The client, once 202 Accepted arrived (the RM answers after the store commit).
    accepted: i64,
    /// The AM process entered `main`.
    am_started: i64,
    /// Register returned in the AM.
    registered: i64,
    /// The allocate response carrying the container arrived in the AM.
    allocated: i64,
    /// The container process entered `main`, inside its cgroup.
    container_started: i64,
    /// The NM's start-container answer arrived in the AM.
    start_returned: i64,
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v} is not a number")),
        Err(_) => Ok(default),
    }
}

fn driver() -> anyhow::Result<()> {
    let apps = env_usize("WEFT_LATENCY_APPS", 100)?;
    let warmup = env_usize("WEFT_LATENCY_WARMUP", 5)?;
    ensure!(apps > 0, "WEFT_LATENCY_APPS must be at least 1");
    let exe = std::env::current_exe().context("locating this executable")?;
    let bin = weft_release_bin();
    eprintln!("latency: weft binary {}", bin.display());
    let options = ClusterOptions {
        nodemanagers: 2,
        isolation: "cgroup-v1".into(),
        // The production default; nothing measured here waits for a heartbeat.
        nm_heartbeat_ms: 1_000,
        weft_bin: Some(bin),
        // What production runs; per-request debug logging would be measured too.
        log_filter: Some("info".into()),
        ..ClusterOptions::default()
    };
    // The figures are wall-clock times on a shared 2-core machine: other work inflates them.
    let load_before = load_average();
    let mut cluster = Cluster::start(options).context("starting the cluster (needs root and cgroup v1)")?;
    let results = cluster.path().join("latency");
    std::fs::create_dir_all(&results)?;

    let mut samples = Vec::with_capacity(apps);
    for run in 0..warmup + apps {
        let sample = one_app(&cluster, &exe, &results, run).with_context(|| format!("app {run}"))?;
        if run >= warmup {
            samples.push(sample);
        }
    }
    if let Ok(path) = std::env::var("WEFT_LATENCY_RAW") {
        write_raw(Path::new(&path), &samples)?;
    }
    let nm_launch = nm_launch_latency(&cluster)?;
    cluster.assert_all_alive()?;
    let store = std::env::var("WEFT_RM__STORE__KIND").unwrap_or_else(|_| "sqlite".into());
    println!(
        "\nTarget 2 — idle local cluster: 1 RM ({store} store), 2 NMs (cgroup v1), release build; {apps} apps after {warmup} warm-up"
    );
    report(&samples, nm_launch);
    drop(cluster);

    println!("\nHost baselines (no RM or NM involved), to tell where the time goes:");
    let scratch = tempfile::Builder::new().prefix("weft-latency-").tempdir()?;
    baselines(&exe, scratch.path())?;
    println!("load average before / after: {load_before} / {}", load_average());
    Ok(())
}

/// Every sample's timestamps, one JSON object per line, for a look beyond the percentiles (e.g.
/// next to a `perf record -k realtime` trace of the same run).
fn write_raw(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let lines: Vec<String> = samples
        .iter()
        .map(|s| {
            json!({
                "new_app_us": s.new_app, "submit_us": s.submit, "accepted_us": s.accepted,
                "am_started_us": s.am_started, "registered_us": s.registered, "allocated_us": s.allocated,
                "container_started_us": s.container_started, "start_returned_us": s.start_returned,
            })
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Submits one app, waits until its AM and container wrote their timestamps, the app finished
/// and every NM is idle again.
fn one_app(c: &Cluster, exe: &Path, results: &Path, run: usize) -> anyhow::Result<Sample> {
    let new_app = now_us();
    let (status, reply) = c.call("POST", "/ws/v1/cluster/apps/new-application?user.name=bench", None)?;
    ensure!(status == 200, "new-application answered {status}: {reply}");
    let id = reply["application-id"].as_str().context("no application-id")?.to_owned();
    let body = json!({
        "application-id": id,
        "application-name": "latency",
        "queue": "default",
        "max-app-attempts": 1,
        "resource": {"memory": 128, "vCores": 1},
        "am-container-spec": {
            "commands": {"command": exec_command(exe)},
            "environment": {"entry": [
                {"key": ROLE, "value": "am"},
                {"key": RESULTS, "value": results.display().to_string()},
                {"key": RUN, "value": run.to_string()},
            ]},
        },
    })
    .to_string();
    let url = format!("{}/ws/v1/cluster/apps?user.name=bench", c.rm_url());
    let submit = now_us();
    let (status, _, text) = http_full("POST", &url, Some(&body), "application/json")?;
    let accepted = now_us();
    ensure!(status == 202, "submit answered {status}: {text}");

    // Only files are polled while the app runs, so the wait puts no load on the RM or NMs.
    let am_file = results.join(format!("am-{run}.json"));
    let container_file = results.join(format!("container-{run}.json"));
    let written = wait_for("the AM's and the container's timestamps", TIMEOUT, || {
        (am_file.exists() && container_file.exists()).then_some(())
    });
    if let Err(e) = written {
        let app = c.app(&id).unwrap_or(Value::Null);
        bail!("{e}; app: {app}");
    }
    let app = c.wait_for_final(&id, TIMEOUT)?;
    ensure!(app["finalStatus"] == "SUCCEEDED", "the app did not succeed: {app}");
    wait_idle(c)?;

    let am = read_json(&am_file)?;
    let container = read_json(&container_file)?;
    let container_id = am["container_id"].as_str().context("container_id")?;
    check_cgroup(c, container_id, container["cgroup"].as_str().context("cgroup")?)?;
    let us = |v: &Value, key: &str| v[key].as_i64().with_context(|| format!("{key} missing"));
    Ok(Sample {
        new_app,
        submit,
        accepted,
        am_started: us(&am, "started_us")?,
        registered: us(&am, "registered_us")?,
        allocated: us(&am, "allocated_us")?,
        container_started: us(&container, "started_us")?,
        start_returned: us(&am, "start_returned_us")?,
    })
}

/// Waits until no NM runs a container (the AM container exits after unregistering) and the RM
/// has nothing allocated.
fn wait_idle(c: &Cluster) -> anyhow::Result<()> {
    wait_for("the cluster to be idle", TIMEOUT, || {
        for nm in &c.nms {
            let (_, info) = http_json("GET", &format!("{}/ws/v1/node/info", nm.http_address), None).ok()?;
            if info["running_containers"] != 0 {
                return None;
            }
        }
        let metrics = c.get("/ws/v1/cluster/metrics").ok()?;
        (metrics["clusterMetrics"]["allocatedMB"] == 0).then_some(())
    })
}

/// The container's `/proc/self/cgroup` must put it, in every controller the NM uses, into a
/// cgroup named after the container directly under one of the NMs' cgroup roots.
fn check_cgroup(c: &Cluster, container_id: &str, proc_cgroup: &str) -> anyhow::Result<()> {
    let roots: Vec<PathBuf> = (0..c.nms.len()).flat_map(|i| c.cgroup_dirs(i)).collect();
    for controller in CONTROLLERS {
        let line = proc_cgroup
            .lines()
            .find(|l| l.split(':').nth(1).is_some_and(|cs| cs.split(',').any(|c| c == controller)))
            .with_context(|| format!("the container is in no {controller} cgroup:\n{proc_cgroup}"))?;
        let path = line.splitn(3, ':').nth(2).unwrap_or("").trim_start_matches('/');
        let dir = Path::new("/sys/fs/cgroup").join(controller).join(path);
        let in_nm_root = dir.parent().is_some_and(|parent| roots.iter().any(|r| r == parent));
        ensure!(
            in_nm_root && dir.file_name().is_some_and(|n| n == container_id),
            "the container's {controller} cgroup {} is not {container_id} under an NM root ({roots:?})",
            dir.display()
        );
    }
    Ok(())
}

/// Mean of the NMs' own start-request → process-running histogram (AM and task containers).
fn nm_launch_latency(c: &Cluster) -> anyhow::Result<Option<f64>> {
    let (mut sum, mut count) = (0.0, 0.0);
    for nm in &c.nms {
        let (_, text) = http("GET", &format!("{}/metrics", nm.http_address), None, "text/plain")?;
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else { continue };
            let value: f64 = value.parse().unwrap_or(0.0);
            match name {
                "weft_nm_container_launch_latency_seconds_sum" => sum += value,
                "weft_nm_container_launch_latency_seconds_count" => count += value,
                _ => {}
            }
        }
    }
    Ok((count > 0.0).then(|| sum / count))
}

struct Figure {
    name: &'static str,
    values_ms: Vec<f64>,
    /// (p50, p99) targets in ms.
    target: Option<(f64, f64)>,
}

fn figure(name: &'static str, samples: &[Sample], f: impl Fn(&Sample) -> i64, target: Option<(f64, f64)>) -> Figure {
    let mut values_ms: Vec<f64> = samples.iter().map(|s| f(s) as f64 / 1_000.0).collect();
    values_ms.sort_by(f64::total_cmp);
    Figure { name, values_ms, target }
}

fn report(samples: &[Sample], nm_launch_mean_s: Option<f64>) {
    let figures = [
        figure("submit → AM registered", samples, |s| s.registered - s.submit, Some((20.0, 100.0))),
        figure("new-application + submit → AM registered", samples, |s| s.registered - s.new_app, None),
        figure("  submit POST → 202 Accepted", samples, |s| s.accepted - s.submit, None),
        figure("  submit → AM process running", samples, |s| s.am_started - s.submit, None),
        figure("  AM process start → registered", samples, |s| s.registered - s.am_started, None),
        figure(
            "allocation received → container running",
            samples,
            |s| s.container_started - s.allocated,
            Some((2.0, 10.0)),
        ),
        figure(
            "  container running → NM start answer in AM",
            samples,
            |s| s.start_returned - s.container_started,
            None,
        ),
        figure("  allocation → NM start answer in AM", samples, |s| s.start_returned - s.allocated, None),
        figure("AM registered → allocation received", samples, |s| s.allocated - s.registered, None),
    ];
    println!("{:<46} {:>9} {:>9} {:>9}   target", "", "p50 ms", "p99 ms", "max ms");
    for f in &figures {
        let (p50, p99) = (percentile(&f.values_ms, 50.0), percentile(&f.values_ms, 99.0));
        let max = f.values_ms.last().copied().unwrap_or(0.0);
        let target = match f.target {
            Some((t50, t99)) => {
                let verdict = if p50 <= t50 && p99 <= t99 { "met" } else { "MISSED" };
                format!("p50 ≤ {t50} ms, p99 ≤ {t99} ms: {verdict}")
            }
            None => String::new(),
        };
        println!("{:<46} {p50:>9.2} {p99:>9.2} {max:>9.2}   {target}", f.name);
    }
    if let Some(mean) = nm_launch_mean_s {
        println!(
            "{:<46} {:>9.2}   (mean of the NMs' own launch histogram)",
            "  NM: start request → process running",
            mean * 1e3
        );
    }
    let n = samples.len();
    let from_top = n + 1 - ((0.99 * n as f64).ceil() as usize).max(1);
    println!("p99 is the nearest rank: of {n} apps, number {from_top} counted from the slowest.");
}

// ---------------------------------------------------------------------------------------------
// Host baselines: what the NM's launch path is made of, measured without the NM.

const BASELINE_RUNS: usize = 30;

fn baselines(exe: &Path, results: &Path) -> anyhow::Result<()> {
    let probe = CgroupProbe::new()?;
    let mut rows = vec![
        ("fork+exec of the executable → main", spawn_baseline(exe, results, false, None)?),
        ("  + joining 3 fresh cgroups before exec", spawn_baseline(exe, results, false, Some(&probe))?),
        ("  + through `bash -c 'exec …'` (the NM's whole chain)", spawn_baseline(exe, results, true, Some(&probe))?),
    ];
    let (create, remove) = probe.create_remove()?;
    rows.push(("cgroup v1 create + limits (memory, cpu, pids)", create));
    rows.push(("cgroup v1 remove (3 rmdir)", remove));
    for (name, mut values) in rows {
        values.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&values, 50.0), percentile(&values, 99.0));
        println!("{name:<54} p50 {p50:>6.2} ms   p99 {p99:>6.2} ms   ({} runs)", values.len());
    }
    Ok(())
}

/// Starts this executable in the container role the way the NM does: fork, then in the child
/// (optionally) join fresh cgroups and exec, through bash or directly; a `pre_exec` hook also
/// keeps std from using posix_spawn, which the NM cannot use either. Measures until `main` ran.
fn spawn_baseline(
    exe: &Path,
    results: &Path,
    via_bash: bool,
    cgroups: Option<&CgroupProbe>,
) -> anyhow::Result<Vec<f64>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let mut values = Vec::with_capacity(BASELINE_RUNS);
    for i in 0..BASELINE_RUNS {
        let run = format!("baseline-{}-{}-{i}", u8::from(via_bash), u8::from(cgroups.is_some()));
        let dirs = match cgroups {
            Some(probe) => probe.create(&run)?,
            None => Vec::new(),
        };
        let procs: Vec<CString> = dirs
            .iter()
            .map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut command = if via_bash {
            let mut c = Command::new("bash");
            c.arg("-c").arg(exec_command(exe));
            c
        } else {
            Command::new(exe)
        };
        command
            .env(ROLE, "container")
            .env(RESULTS, results)
            .env(RUN, &run)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only open/write/close on paths built before the fork, as the NM's
        // `enter_container`; "0" names the writing process itself.
        unsafe {
            command.pre_exec(move || {
                for file in &procs {
                    let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                Ok(())
            })
        };
        let before = now_us();
        let status = command.spawn()?.wait()?;
        ensure!(status.success(), "the baseline container failed: {status}");
        let started =
            read_json(&results.join(format!("container-{run}.json")))?["started_us"].as_i64().context("started_us")?;
        values.push((started - before) as f64 / 1_000.0);
        for dir in &dirs {
            std::fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    Ok(values)
}

/// A scratch cgroup root per controller under this process's own cgroups, for container-like
/// cgroups created the way the NM's cgroup v1 isolation creates them. Removed on drop.
struct CgroupProbe {
    /// memory, cpu, pids.
    roots: Vec<PathBuf>,
}

impl CgroupProbe {
    fn new() -> anyhow::Result<Self> {
        let own = std::fs::read_to_string("/proc/self/cgroup")?;
        let name = format!("weft-latency-probe-{}", std::process::id());
        let mut roots = Vec::new();
        for controller in CONTROLLERS {
            let line = own
                .lines()
                .find(|l| l.split(':').nth(1).is_some_and(|cs| cs.split(',').any(|c| c == controller)))
                .with_context(|| format!("no {controller} cgroup v1 hierarchy"))?;
            let path = line.splitn(3, ':').nth(2).unwrap_or("").trim_start_matches('/');
            let root = Path::new("/sys/fs/cgroup").join(controller).join(path).join(&name);
            std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
            roots.push(root);
        }
        Ok(Self { roots })
    }

    /// One container-like cgroup per controller, with the limits the NM writes, in its order.
    fn create(&self, name: &str) -> anyhow::Result<Vec<PathBuf>> {
        let dirs: Vec<PathBuf> = self.roots.iter().map(|r| r.join(name)).collect();
        for dir in &dirs {
            std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(dirs[0].join("memory.limit_in_bytes"), (128u64 << 20).to_string())?;
        let _ = std::fs::write(dirs[0].join("memory.swappiness"), "0"); // best effort there too
        std::fs::write(dirs[1].join("cpu.shares"), "1024")?;
        std::fs::write(dirs[2].join("pids.max"), "4096")?;
        Ok(dirs)
    }

    /// (create + configure, remove) times in ms of empty container-like cgroups.
    fn create_remove(&self) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
        let (mut create, mut remove) = (Vec::new(), Vec::new());
        for i in 0..BASELINE_RUNS {
            let start = Instant::now();
            let dirs = self.create(&format!("c{i}"))?;
            create.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            for dir in &dirs {
                std::fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            remove.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok((create, remove))
    }
}

impl Drop for CgroupProbe {
    fn drop(&mut self) {
        for root in &self.roots {
            let _ = std::fs::remove_dir(root);
        }
    }
}
