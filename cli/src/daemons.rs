//! `weft rm`, `weft nm` and `weft up`: the long-running processes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use prometheus_client::registry::Registry;
use weft_nodemanager::config::{IsolationMode, NmConfig};
use weft_rm_core::queues::{QueueTree, QueuesConfig, import_capacity_scheduler_xml, import_fair_scheduler_xml};
use weft_rm_server::RmConfig;
use weft_rm_server::config::{HaConfig, StoreConfig};

/// Writes `{"http_address": …}` once the daemon listens, so scripts and tests can find an
/// ephemeral port without parsing logs. Written atomically (temp file + rename).
fn write_ready_file(path: &Path, value: serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn termination() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops this process");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub async fn run_rm(config: Option<PathBuf>, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match &config {
        Some(path) => RmConfig::load(path)?,
        None => RmConfig::default(),
    };
    let mut rm = weft_rm_server::start(cfg, Registry::default()).await.context("starting the ResourceManager")?;
    let url = format!("http://{}", rm.http_addr());
    println!("ResourceManager listening on {url}");
    if let Some(path) = ready_file {
        // `epoch` is null for a standby (HA), which has none until it becomes active.
        write_ready_file(&path, serde_json::json!({ "http_address": url, "epoch": rm.epoch() }))?;
    }
    tokio::select! {
        _ = termination() => tracing::info!("stopping the ResourceManager"),
        _ = rm.stopped() => tracing::warn!("the ResourceManager stopped by itself"),
    }
    rm.shutdown().await.context("stopping the ResourceManager")?;
    Ok(())
}

pub async fn run_nm(config: Option<PathBuf>, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = match &config {
        Some(path) => NmConfig::load(path)?,
        None => NmConfig::default(),
    };
    let nm = weft_nodemanager::start(cfg, Registry::default()).await.context("starting the NodeManager")?;
    let url = format!("http://{}", nm.http_addr());
    println!("NodeManager {} listening on {url}", nm.node_id());
    if let Some(path) = ready_file {
        write_ready_file(&path, serde_json::json!({ "http_address": url, "node_id": nm.node_id().to_string() }))?;
    }
    tokio::select! {
        _ = termination() => {}
        _ = nm.rm_ordered_shutdown() => tracing::warn!("the ResourceManager ordered this NodeManager to shut down"),
    }
    tracing::info!("stopping the NodeManager and its containers");
    nm.shutdown().await.context("stopping the NodeManager")?;
    Ok(())
}

/// Options of `weft up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the state store, container work dirs and logs go.
    #[arg(long, default_value = "weft-data")]
    pub data_dir: PathBuf,
    /// REST port of the ResourceManager.
    #[arg(long, default_value_t = 8088)]
    pub port: u16,
    /// Number of NodeManagers.
    #[arg(long, default_value_t = 2)]
    pub nodes: u32,
    /// Container isolation: auto uses cgroups when this host allows it, else none.
    #[arg(long, value_enum, default_value = "auto")]
    pub isolation: UpIsolation,
    /// Active/standby: two RMs (on --port and --port + 1) sharing a PostgreSQL store.
    #[arg(long)]
    pub ha: bool,
    /// The PostgreSQL database for --ha; without it a throwaway local server is started
    /// (Debian's `postgresql` package must be installed).
    #[arg(long, requires = "ha", env = "WEFT_UP_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UpIsolation {
    Auto,
    Cgroups,
    None,
}

/// Total memory of this host in MiB.
fn host_memory_mb() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGE_SIZE)) };
    if pages <= 0 || page <= 0 { 4096 } else { (pages as u64 * page as u64) >> 20 }
}

/// Starts an RM and `nodes` NMs in this process, each NM with an equal share of the host, and
/// stops them all on Ctrl-C.
pub async fn run_up(args: UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    let data_dir = std::path::absolute(&args.data_dir)?;
    // Stopped when `weft up` ends (dropped last).
    let mut local_postgres = None;
    let (store, ports) = if args.ha {
        let url = match &args.postgres_url {
            Some(url) => url.clone(),
            None => {
                let server = tokio::task::spawn_blocking(weft_pg_harness::PgServer::start)
                    .await?
                    .context("starting a local PostgreSQL for --ha (or pass --postgres-url)")?;
                let url = server.create_database("weft")?;
                println!("PostgreSQL (throwaway, for this run) at {url}");
                local_postgres = Some(server);
                url
            }
        };
        let port2 = args.port.checked_add(1).context("--port is too high for two RMs")?;
        (StoreConfig::Postgres { url, max_connections: 4 }, vec![args.port, port2])
    } else {
        (StoreConfig::Sqlite { path: None }, vec![args.port])
    };
    let rm_urls: Vec<String> = ports.iter().map(|port| format!("http://127.0.0.1:{port}")).collect();
    let mut rms = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let rm_cfg = RmConfig {
            bind: format!("127.0.0.1:{port}"),
            data_dir: data_dir.join(if args.ha { format!("rm{}", i + 1) } else { "rm".to_owned() }),
            store: store.clone(),
            ha: HaConfig { enabled: args.ha, rm_addresses: rm_urls.clone(), ..HaConfig::default() },
            ..RmConfig::default()
        };
        let rm = weft_rm_server::start(rm_cfg, Registry::default()).await.context("starting a ResourceManager")?;
        rms.push(rm);
    }
    let rm_url = rm_urls.join(",");

    // Leave a fifth of memory to the host; vcores are scheduling units weighting CPU shares, so
    // each NM offers at least 4 even on small hosts.
    let memory_mb = (host_memory_mb() * 4 / 5 / u64::from(args.nodes)).max(512);
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let vcores = (cpus * 2 / args.nodes).max(4);
    let mut nms = Vec::new();
    let mut isolation = match args.isolation {
        UpIsolation::Auto | UpIsolation::Cgroups => IsolationMode::Auto,
        UpIsolation::None => IsolationMode::None,
    };
    for i in 1..=args.nodes {
        let nm_dir = data_dir.join(format!("nm{i}"));
        let mut cfg = NmConfig::default();
        cfg.rm_addresses = rm_urls.clone();
        cfg.bind = "127.0.0.1:0".into();
        cfg.resources.memory_mb = memory_mb;
        cfg.resources.vcores = vcores;
        cfg.work_dir = nm_dir.join("work");
        cfg.log_dir = nm_dir.join("logs");
        cfg.isolation.cgroup_root = format!("weft-up-nm{i}");
        cfg.isolation.mode = isolation;
        let nm = match weft_nodemanager::start(cfg.clone(), Registry::default()).await {
            Ok(nm) => nm,
            // `auto` falls back to no isolation, loudly; an explicit `--isolation cgroups` does not.
            Err(e) if matches!(args.isolation, UpIsolation::Auto) && isolation == IsolationMode::Auto => {
                eprintln!("warning: cgroups are not usable here ({e:#}); containers run without isolation");
                isolation = IsolationMode::None;
                cfg.isolation.mode = isolation;
                weft_nodemanager::start(cfg, Registry::default()).await.context("starting a NodeManager")?
            }
            Err(e) => return Err(e).context("starting a NodeManager"),
        };
        println!(
            "NodeManager {} ({memory_mb} MB, {vcores} vcores, isolation {}) at http://{}",
            nm.node_id(),
            isolation,
            nm.http_addr()
        );
        nms.push(nm);
    }
    if args.ha {
        println!(
            "Weft is up with two ResourceManagers ({rm_url}) — try `export WEFT_RM={rm_url}`, \
             `weft rmadmin get-state`, `weft dshell --containers 2 -- echo hello`, then \
             `weft rmadmin --rm <the active> transition-to-standby`. Ctrl-C stops everything."
        );
    } else {
        println!(
            "Weft is up: REST at {rm_url}/ws/v1/cluster — try `weft dshell --containers 2 -- echo hello`. Ctrl-C stops everything."
        );
    }
    termination().await;
    println!("stopping…");
    for nm in nms {
        if let Err(e) = nm.shutdown().await {
            eprintln!("error stopping a NodeManager: {e:#}");
        }
    }
    for rm in rms {
        rm.shutdown().await.context("stopping a ResourceManager")?;
    }
    drop(local_postgres);
    Ok(())
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ConfigKind {
    Rm,
    Nm,
    Queues,
}

/// A cluster size for `weft config check` of a queues file: `<memory-mb>,<vcores>`.
pub fn parse_cluster_size(text: &str) -> Result<weft_common::Resource, String> {
    let (memory, vcores) = text.split_once(',').ok_or("expected <memory-mb>,<vcores>, e.g. 102400,100")?;
    let memory = memory.trim().parse().map_err(|_| format!("{memory:?} is not a number of MB"))?;
    let vcores = vcores.trim().parse().map_err(|_| format!("{vcores:?} is not a number of vcores"))?;
    Ok(weft_common::Resource::new(memory, vcores))
}

/// `weft config check`: parses and validates a config file without starting anything, and prints
/// the effective configuration (defaults filled in); for a queues file, the effective queue tree
/// with absolute guaranteed and maximum resources for `cluster`.
pub fn check_config(path: &Path, kind: Option<ConfigKind>, cluster: weft_common::Resource) -> anyhow::Result<()> {
    let kind = match kind {
        Some(kind) => Some(kind),
        None => guess_kind(path)?,
    };
    let (what, effective) = match kind {
        Some(ConfigKind::Rm) => ("ResourceManager", serde_json::to_string_pretty(&RmConfig::load(path)?)?),
        Some(ConfigKind::Nm) => ("NodeManager", serde_json::to_string_pretty(&NmConfig::load(path)?)?),
        Some(ConfigKind::Queues) => {
            let config = QueuesConfig::load(path)?;
            let tree = QueueTree::resolve(&config, cluster).map_err(|problems| anyhow::anyhow!("{problems}"))?;
            ("queues", format!("effective queues for a cluster of {cluster}:\n{}", tree.render_table()))
        }
        None => anyhow::bail!("cannot tell what kind of config {} is; pass --kind rm, nm or queues", path.display()),
    };
    println!("{}: valid {what} configuration", path.display());
    println!("{effective}");
    Ok(())
}

/// Which kind of config a file is, from its top-level keys (each kind has keys the others lack).
fn guess_kind(path: &Path) -> anyhow::Result<Option<ConfigKind>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let Ok(serde_json::Value::Object(top)) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    let has = |key: &str| top.contains_key(key);
    Ok(if has("queues") || has("placement-rules") || top.get("scheduler").is_some_and(|v| v.is_string()) {
        Some(ConfigKind::Queues)
    } else if has("rm-addresses") || has("isolation") || has("resources") || has("work-dir") {
        Some(ConfigKind::Nm)
    } else if has("bind") || has("data-dir") || has("store") || has("scheduler") || has("nodemanagers") {
        Some(ConfigKind::Rm)
    } else {
        None
    })
}

/// `weft config import-yarn`: converts a YARN capacity-scheduler.xml or fair-scheduler.xml into a
/// Weft queues file and lists what could not be carried over.
pub fn import_yarn(path: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let xml = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let import = if xml.contains("<allocations") {
        import_fair_scheduler_xml(&xml)
    } else {
        import_capacity_scheduler_xml(&xml)
    }
    .with_context(|| format!("importing {}", path.display()))?;
    match output {
        Some(out) => {
            std::fs::write(out, &import.yaml).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        None => print!("{}", import.yaml),
    }
    if import.not_carried_over.is_empty() {
        eprintln!("everything was carried over");
    } else {
        eprintln!("not carried over ({}):", import.not_carried_over.len());
        for item in &import.not_carried_over {
            eprintln!("  - {item}");
        }
    }
    Ok(())
}
