//! `weft-loadgen`: thousands of simulated NodeManagers and ApplicationMasters, as lightweight
//! tasks, against a real ResourceManager over its real HTTP protocol. It measures the issue's
//! target: 10k nodes heartbeating and 1,000 app submissions/s sustained with submit → first
//! container allocated p99 ≤ 500 ms. See docs/loadgen.md.

mod am;
mod nodes;
mod procstat;
mod rawhttp;
mod report;
mod rm;
mod stats;
mod submit;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use futures::StreamExt;
use tokio::sync::watch;
use weft_common::Resource;
use weft_common::rest::ClusterMetricsWrapper;

use crate::nodes::SimNode;
use crate::procstat::CpuSample;
use crate::report::{
    AppLatency, Apps, Heartbeats, Registration, Report, Resources, RmCounters, RmInfo, RunInfo, Submissions,
    TimelinePoint,
};
use crate::rm::{RmProcess, RmSettings, StoreKind};
use crate::stats::LatencySummary;
use crate::world::{Outcome, Settings, World};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "weft-loadgen",
    version,
    about = "Load-test a Weft ResourceManager with simulated NodeManagers and ApplicationMasters"
)]
struct Args {
    /// Target an already running RM (`http://host:port`) instead of starting one.
    #[arg(long)]
    rm: Option<String>,
    /// Pid of the `--rm` process, for its CPU and memory figures.
    #[arg(long, requires = "rm")]
    rm_pid: Option<u32>,
    /// The `weft` binary to start the RM with (default: the one next to this executable).
    #[arg(long, conflicts_with = "rm")]
    weft_bin: Option<PathBuf>,
    /// State store of the started RM.
    #[arg(long, value_enum, default_value = "sqlite")]
    store: StoreKind,
    /// Completed apps the started RM keeps (`applications.max-completed-apps`; the shipped
    /// config/rm.yaml keeps 1000).
    #[arg(long, default_value_t = 1000)]
    max_completed_apps: usize,
    /// `WEFT_LOG` of the started RM (production runs at info).
    #[arg(long, default_value = "info")]
    rm_log: String,
    /// Directory for the started RM's config, log and store (default: a new temp dir, kept).
    #[arg(long)]
    run_dir: Option<PathBuf>,

    /// Simulated NodeManagers.
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// Heartbeat interval configured on the started RM (NMs use whatever the RM tells them).
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 8192)]
    node_memory_mb: u64,
    #[arg(long, default_value_t = 8)]
    node_vcores: u32,

    /// Application submissions per second (open loop).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 10.0)]
    warmup_s: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 30.0)]
    measure_s: f64,
    /// Longest wait after the window for submitted apps to finish.
    #[arg(long, default_value_t = 60.0)]
    drain_timeout_s: f64,
    /// Submissions waiting for the RM beyond which further ones are shed (and counted).
    #[arg(long, default_value_t = 3000)]
    max_in_flight: u64,

    /// Containers each simulated AM asks for.
    #[arg(long, default_value_t = 2)]
    containers_per_app: u32,
    /// How long each task container runs.
    #[arg(long, default_value_t = 1000)]
    container_ms: u64,
    #[arg(long, default_value_t = 128)]
    container_memory_mb: u64,
    #[arg(long, default_value_t = 128)]
    am_memory_mb: u64,
    /// Allocate long-poll wait of the simulated AMs (the SDK's default is 1000).
    #[arg(long, default_value_t = 1000)]
    am_long_poll_ms: u64,

    /// Threads of the generator's own runtime. One thread avoids the cross-thread wake-ups
    /// that otherwise cost more CPU than the requests themselves, and leaves the other cores
    /// to the RM.
    #[arg(long, default_value_t = 1)]
    generator_threads: usize,

    /// Small smoke run: 200 nodes, 50 apps/s, 1 s warm-up, 3 s measured (explicit flags win).
    #[arg(long)]
    quick: bool,
    /// Also write the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
}

impl Args {
    fn parse_with_quick_defaults() -> Self {
        let matches = Args::command().get_matches();
        let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if args.quick {
            let default = |name: &str| matches.value_source(name) == Some(ValueSource::DefaultValue);
            if default("nodes") {
                args.nodes = 200;
            }
            if default("rate") {
                args.rate = 50.0;
            }
            if default("warmup_s") {
                args.warmup_s = 1.0;
            }
            if default("measure_s") {
                args.measure_s = 3.0;
            }
            if default("drain_timeout_s") {
                args.drain_timeout_s = 30.0;
            }
            if default("container_ms") {
                args.container_ms = 200;
            }
        }
        args
    }
}

fn main() -> ExitCode {
    let args = Args::parse_with_quick_defaults();
    match main_with(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Up to 10k node connections plus AM long polls and submissions need more descriptors than
/// the usual soft limit of 1024.
fn raise_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main_with(args: Args) -> anyhow::Result<ExitCode> {
    raise_file_limit();
    if args.nodes == 0 || args.rate <= 0.0 || args.measure_s <= 0.0 || args.heartbeat_ms == 0 {
        bail!("--nodes, --rate, --measure-s and --heartbeat-ms must be positive");
    }
    // The RM is started from the main thread, which lives as long as the process: the RM is
    // told to die with it (PR_SET_PDEATHSIG follows the spawning thread).
    let mut run_dir = None;
    let rm_process = match &args.rm {
        Some(_) => None,
        None => {
            let bin = match &args.weft_bin {
                Some(b) => b.clone(),
                None => rm::default_weft_bin()?,
            };
            let dir = match &args.run_dir {
                Some(d) => {
                    std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                    d.clone()
                }
                None => tempfile::Builder::new().prefix("weft-loadgen-").tempdir()?.keep(),
            };
            let settings = RmSettings {
                store: args.store,
                heartbeat_interval_ms: args.heartbeat_ms,
                max_completed_apps: args.max_completed_apps,
                log_filter: args.rm_log.clone(),
            };
            let rm = RmProcess::spawn(&bin, &dir, &settings)?;
            eprintln!("started ResourceManager {} (pid {}), log {}", rm.address, rm.pid(), rm.log.display());
            run_dir = Some(dir);
            Some(rm)
        }
    };
    let rm_process = rm_process.map(|rm| Arc::new(Mutex::new(rm)));
    let runtime = match args.generator_threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    let result = runtime.block_on(run(args, rm_process.clone(), run_dir));
    runtime.shutdown_timeout(Duration::from_secs(2));
    // The RM must have lived through the whole run, or the figures mean nothing.
    if let Some(rm) = &rm_process {
        let mut rm = rm.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = rm.exited() {
            bail!("the ResourceManager died during the run ({status}); log {}:\n{}", rm.log.display(), rm.log_tail());
        }
        rm.stop();
    }
    let report = result?;
    Ok(if report.is_some() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Runs the load; `None` if interrupted.
async fn run(
    args: Args,
    rm_process: Option<Arc<Mutex<RmProcess>>>,
    run_dir: Option<PathBuf>,
) -> anyhow::Result<Option<Report>> {
    let lock_rm = |rm: &Arc<Mutex<RmProcess>>| {
        let guard = rm.lock().unwrap_or_else(|e| e.into_inner());
        (guard.address.clone(), guard.pid(), guard.log.display().to_string())
    };
    let (rm_address, rm_pid, rm_log) = match (&rm_process, &args.rm) {
        (Some(rm), _) => {
            let (address, pid, log) = lock_rm(rm);
            (address, Some(pid), Some(log))
        }
        (None, Some(address)) => (address.trim_end_matches('/').to_owned(), args.rm_pid, None),
        (None, None) => unreachable!("either --rm or a started RM"),
    };

    // One HTTP server plays the container API of every simulated node.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the simulated NM API")?;
    let api_base = format!("http://{}", listener.local_addr()?);
    let settings = Settings {
        node_resource: Resource::new(args.node_memory_mb, args.node_vcores),
        am_resource: Resource::new(args.am_memory_mb, 1),
        container_resource: Resource::new(args.container_memory_mb, 1),
        containers_per_app: args.containers_per_app,
        container_runtime: Duration::from_millis(args.container_ms),
        am_long_poll: Duration::from_millis(args.am_long_poll_ms),
        submit_rate: args.rate,
        max_in_flight_submissions: args.max_in_flight,
        user: "loadgen".into(),
    };
    let nodes = (0..args.nodes).map(|i| SimNode::new(i, &api_base)).collect();
    let world = Arc::new(World::new(settings, &rm_address, nodes)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = {
        let router = nodes::router(world.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        })
    };

    // The run ends early if the RM dies or the operator interrupts.
    let (abort_tx, mut abort_rx) = watch::channel(None::<String>);
    if let Some(rm) = rm_process.clone() {
        let abort_tx = abort_tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let exited = rm.lock().unwrap_or_else(|e| e.into_inner()).exited();
                if let Some(status) = exited {
                    abort_tx.send_replace(Some(format!("the ResourceManager died ({status})")));
                    return;
                }
            }
        });
    }
    {
        let abort_tx = abort_tx.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                abort_tx.send_replace(Some("interrupted".into()));
            }
        });
    }

    let counters_before = rm_counters(&world).await;

    // Registration, at bounded concurrency (a burst of 10k connections would only measure the
    // accept queue).
    eprintln!("registering {} simulated nodes with {rm_address} …", args.nodes);
    let registering = Instant::now();
    let registration = futures::stream::iter(0..args.nodes)
        .map(|i| {
            let world = world.clone();
            async move { nodes::register(&world, i).await.ok() }
        })
        .buffered(64)
        .collect::<Vec<Option<Duration>>>();
    let intervals = tokio::select! {
        intervals = registration => intervals,
        why = aborted(&mut abort_rx) => { eprintln!("stopping: {why}"); return finish(stop_tx, server, None) }
    };
    let registration_secs = registering.elapsed().as_secs_f64();
    let registered = intervals.iter().filter(|i| i.is_some()).count();
    eprintln!("{registered} nodes registered in {registration_secs:.1} s");
    if registered == 0 {
        bail!("no simulated node could register; errors: {:?}", world.errors.snapshot());
    }

    // Heartbeat phases spread evenly over one interval.
    let base = Instant::now() + Duration::from_millis(20);
    let mut heartbeat_interval = Duration::from_millis(args.heartbeat_ms);
    for (i, interval) in intervals.iter().enumerate() {
        let Some(interval) = *interval else { continue };
        heartbeat_interval = interval;
        let first = base + interval.mul_f64(i as f64 / args.nodes as f64);
        tokio::spawn(nodes::heartbeat_loop(world.clone(), i, first, interval, stop_rx.clone()));
    }

    let start = base + heartbeat_interval;
    let window_start = start + Duration::from_secs_f64(args.warmup_s);
    let window_end = window_start + Duration::from_secs_f64(args.measure_s);
    world.set_window(window_start, window_end);
    let timeline = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(sample_timeline(world.clone(), rm_pid, start, timeline.clone(), stop_rx.clone()));
    tokio::spawn(submit::run(world.clone(), start, window_end));
    eprintln!("submitting {} apps/s: {} s warm-up, then {} s measured", args.rate, args.warmup_s, args.measure_s);

    tokio::select! {
        () = tokio::time::sleep_until(window_start.into()) => {}
        why = aborted(&mut abort_rx) => { eprintln!("stopping: {why}"); return finish(stop_tx, server, None) }
    }
    let cpu_start = CpuSample::take(rm_pid);
    tokio::select! {
        () = tokio::time::sleep_until(window_end.into()) => {}
        why = aborted(&mut abort_rx) => { eprintln!("stopping: {why}"); return finish(stop_tx, server, None) }
    }
    let cpu = CpuSample::take(rm_pid).since(&cpu_start);
    let rm_rss = rm_pid.and_then(procstat::rss_mb);

    // Drain: let every accepted app finish (or give up after the timeout).
    eprintln!("window over; waiting up to {} s for submitted apps to finish", args.drain_timeout_s);
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout_s);
    loop {
        let unfinished = world.apps().values().filter(|t| t.outcome.is_none()).count();
        if unfinished == 0 || Instant::now() >= drain_deadline {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            why = aborted(&mut abort_rx) => { eprintln!("stopping: {why}"); return finish(stop_tx, server, None) }
        }
    }
    let counters_after = rm_counters(&world).await;

    let rm_counters = match (counters_before, counters_after) {
        (Some(b), Some(a)) => Some(RmCounters {
            apps_submitted: a.apps_submitted - b.apps_submitted,
            apps_completed: a.apps_completed - b.apps_completed,
            apps_failed: a.apps_failed - b.apps_failed,
            apps_killed: a.apps_killed - b.apps_killed,
        }),
        _ => None,
    };
    let report = build_report(
        &args,
        &world,
        ReportInputs {
            rm: RmInfo {
                address: rm_address,
                spawned: rm_process.is_some(),
                store: rm_process.is_some().then(|| format!("{:?}", args.store).to_lowercase()),
                log: rm_log,
                pid: rm_pid,
            },
            run_dir,
            registration: Registration {
                nodes_registered: registered,
                seconds: registration_secs,
                per_s: registered as f64 / registration_secs.max(1e-9),
            },
            heartbeat_interval,
            cpu,
            rm_rss,
            rm_counters,
            timeline: timeline.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        },
    );
    print!("{}", report.text());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    finish(stop_tx, server, Some(report))
}

/// Resolves with the reason once the run must end early.
async fn aborted(rx: &mut watch::Receiver<Option<String>>) -> String {
    let _ = rx.wait_for(Option::is_some).await;
    rx.borrow().clone().unwrap_or_default()
}

fn finish(
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    report: Option<Report>,
) -> anyhow::Result<Option<Report>> {
    stop.send_replace(true);
    server.abort();
    Ok(report)
}

async fn rm_counters(world: &World) -> Option<RmCounters> {
    let response =
        world.http.submit.get(world.urls.cluster_metrics.clone()).timeout(Duration::from_secs(30)).send().await.ok()?;
    let m = response.json::<ClusterMetricsWrapper>().await.ok()?.cluster_metrics;
    Some(RmCounters {
        apps_submitted: m.apps_submitted,
        apps_completed: m.apps_completed,
        apps_failed: m.apps_failed,
        apps_killed: m.apps_killed,
    })
}

/// Once a second: what happened in that second, and CPU use. Every 5 s a progress line.
async fn sample_timeline(
    world: Arc<World>,
    rm_pid: Option<u32>,
    start: Instant,
    timeline: Arc<Mutex<Vec<TimelinePoint>>>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::time::sleep_until(start.into()).await;
    let m = &world.metrics;
    let totals = || {
        (
            m.total_heartbeats.get(),
            m.total_submissions_accepted.get(),
            m.total_first_containers.get(),
            m.total_apps_finished.get(),
        )
    };
    let mut last = totals();
    let mut last_cpu = CpuSample::take(rm_pid);
    let mut last_at = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    // A late tick (the generator's thread was busy) is one longer second, not a burst of them.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick() => {}
        }
        let now = totals();
        let cpu_now = CpuSample::take(rm_pid);
        let in_flight = m.total_submissions_accepted.get().saturating_sub(m.total_apps_finished.get());
        let secs = last_at.elapsed().as_secs_f64().max(1e-3);
        last_at = Instant::now();
        let rate = |n: u64, l: u64| ((n - l) as f64 / secs).round();
        let point = TimelinePoint {
            t_s: start.elapsed().as_secs_f64().round(),
            heartbeats_per_s: rate(now.0, last.0),
            submissions_accepted_per_s: rate(now.1, last.1),
            first_containers_per_s: rate(now.2, last.2),
            apps_finished_per_s: rate(now.3, last.3),
            apps_in_flight: in_flight,
            cpu: cpu_now.since(&last_cpu),
        };
        if (point.t_s as u64).is_multiple_of(5) {
            eprintln!(
                "t={:>3}s  heartbeats {:>6}/s  accepted {:>5}/s  first containers {:>5}/s  finished {:>5}/s  apps in flight {:>6}  CPU: RM {} (waiting {}), generator {}, host {}",
                point.t_s,
                point.heartbeats_per_s,
                point.submissions_accepted_per_s,
                point.first_containers_per_s,
                point.apps_finished_per_s,
                point.apps_in_flight,
                cores(point.cpu.rm_cores),
                cores(point.cpu.rm_waiting_for_cpu_cores),
                cores(point.cpu.generator_cores),
                cores(point.cpu.host_busy_cores),
            );
        }
        timeline.lock().unwrap_or_else(|e| e.into_inner()).push(point);
        last = now;
        last_cpu = cpu_now;
    }
}

fn cores(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |c| format!("{c:.2}"))
}

struct ReportInputs {
    rm: RmInfo,
    run_dir: Option<PathBuf>,
    registration: Registration,
    heartbeat_interval: Duration,
    cpu: procstat::CpuUse,
    rm_rss: Option<(f64, f64)>,
    rm_counters: Option<RmCounters>,
    timeline: Vec<TimelinePoint>,
}

fn build_report(args: &Args, world: &World, inputs: ReportInputs) -> Report {
    let m = &world.metrics;
    let window = args.measure_s;
    let per_s = |n: u64| n as f64 / window;

    let periodic_per_s = per_s(m.heartbeats_periodic.get());
    let early_per_s = per_s(m.heartbeats_early.get());
    let heartbeats = Heartbeats {
        per_s: periodic_per_s + early_per_s,
        periodic_per_s,
        early_per_s,
        target_per_s: report::TARGET_HEARTBEATS_PER_S,
        ok: inputs.registration.nodes_registered >= report::TARGET_NODES
            && report::rate_ok(periodic_per_s, report::TARGET_HEARTBEATS_PER_S),
        round_trip: m.heartbeat_rtt.summary(),
    };
    let accepted_per_s = per_s(m.submissions_accepted.get());
    let submissions = Submissions {
        accepted_per_s,
        target_per_s: report::TARGET_SUBMISSIONS_PER_S,
        ok: report::rate_ok(accepted_per_s, report::TARGET_SUBMISSIONS_PER_S),
        scheduled: m.submissions_scheduled.get(),
        accepted: m.total_submissions_accepted.get(),
        failed: m.submissions_failed.get(),
        issued_late: m.submissions_late.get(),
        max_issue_lag_ms: m.max_submit_lag_us.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0,
        shed: m.submissions_shed.get(),
    };

    let apps = world.apps();
    let measured: Vec<_> = apps.values().filter(|t| t.measured).collect();
    let (mut to_launch, mut to_first, mut never_launched, mut never_allocated) = (Vec::new(), Vec::new(), 0, 0);
    for t in &measured {
        match t.am_launched_at {
            Some(at) => to_launch.push(at - t.submitted_at),
            None => never_launched += 1,
        }
        match t.first_container_at {
            Some(at) => to_first.push(at - t.submitted_at),
            None => never_allocated += 1,
        }
    }
    let app_latency = |samples: Vec<Duration>, never: u64, target: Option<f64>| {
        let p99 = report::p99_counting_never(samples.clone(), never);
        AppLatency {
            latency: LatencySummary::of(samples),
            never,
            p99_ms_counting_never: p99,
            target_p99_ms: target,
            ok: target.map(|t| p99.is_some_and(|p| p <= t) && !measured.is_empty()),
        }
    };
    let submit_to_am_launch = app_latency(to_launch, never_launched, None);
    let submit_to_first_container = app_latency(to_first, never_allocated, Some(report::TARGET_FIRST_CONTAINER_P99_MS));

    let count = |f: &dyn Fn(&world::AppTrack) -> bool| apps.values().filter(|t| f(t)).count() as u64;
    let app_figures = Apps {
        submitted: apps.len() as u64,
        accepted: count(&|t| t.accepted),
        succeeded: count(&|t| t.outcome == Some(Outcome::Succeeded)),
        failed: count(&|t| matches!(t.outcome, Some(Outcome::Failed(_)))),
        unfinished: count(&|t| t.outcome.is_none()),
        retried: count(&|t| t.am_attempts > 1),
        rm_counters: inputs.rm_counters,
    };
    drop(apps);

    let mut endpoints = BTreeMap::new();
    endpoints.insert("new-application", m.new_application_rtt.summary());
    endpoints.insert("submit (POST apps)", m.submit_rtt.summary());
    endpoints.insert("am register", m.am_register_rtt.summary());
    endpoints.insert("am allocate (with asks)", m.allocate_rtt.summary());
    endpoints.insert("am finish", m.am_finish_rtt.summary());

    let meets_targets = heartbeats.ok && submissions.ok && submit_to_first_container.ok == Some(true);
    Report {
        meets_targets,
        rm: inputs.rm,
        run: RunInfo {
            quick: args.quick,
            nodes: args.nodes,
            heartbeat_interval_ms: inputs.heartbeat_interval.as_millis() as u64,
            offered_submissions_per_s: args.rate,
            warmup_s: args.warmup_s,
            measure_s: args.measure_s,
            containers_per_app: args.containers_per_app,
            container_runtime_ms: args.container_ms,
            am_long_poll_ms: args.am_long_poll_ms,
            cores: procstat::cores(),
            run_dir: inputs.run_dir.map(|d| d.display().to_string()),
        },
        registration: inputs.registration,
        heartbeats,
        submissions,
        submit_to_am_launch,
        submit_to_first_container,
        endpoints,
        apps: app_figures,
        errors: world.errors.snapshot(),
        resources: Resources {
            cores: procstat::cores(),
            cpu: inputs.cpu,
            rm_rss_mb: inputs.rm_rss.map(|r| r.0),
            rm_peak_rss_mb: inputs.rm_rss.map(|r| r.1),
            generator_rss_mb: procstat::rss_mb(std::process::id()).map(|r| r.0),
        },
        timeline: inputs.timeline,
    }
}
