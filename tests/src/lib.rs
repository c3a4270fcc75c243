//! End-to-end test harness: starts the real `weft` binary as one ResourceManager and N
//! NodeManagers on ephemeral loopback ports, one log file per process, and checks at the end that
//! no process died unexpectedly. Dropping a [`Cluster`] stops every process and removes every
//! cgroup its NodeManagers created, also for NodeManagers a test killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// The `weft` binary, built once per test process (a no-op when it is up to date).
pub fn weft_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("WEFT_BIN") {
            return PathBuf::from(path);
        }
        // Test executables live in target/<profile>/deps; the binary in target/<profile>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "weft", "--bin", "weft"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for the weft binary");
        assert!(status.success(), "building the weft binary failed");
        profile_dir.join("weft")
    })
    .clone()
}

/// The release build of `weft` (or `WEFT_BIN`), for measurements where a debug build would
/// distort the figures. Built once per process with `cargo build --release` (a no-op when up to
/// date) and found in `target/release`, whichever profile the caller was built with.
pub fn weft_release_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("WEFT_BIN") {
            return PathBuf::from(path);
        }
        // Executables of any profile live in target/<profile>/deps.
        let exe = std::env::current_exe().expect("executable path");
        let target_dir = exe.ancestors().nth(3).expect("target/<profile>/deps/<exe>");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--release", "-p", "weft", "--bin", "weft"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --release for the weft binary");
        assert!(status.success(), "building the release weft binary failed");
        target_dir.join("release").join("weft")
    })
    .clone()
}

/// Nearest-rank percentile `p` (0–100) of `sorted` values (not empty), as the benchmarks report.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Polls `check` until it returns `Some`, failing with `what` after `timeout`. Tests wait with
/// this instead of sleeping.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::park_timeout(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A free loopback port (bound, then released). The RM keeps its port across restarts so NMs
/// configured with its address find it again.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodemanagers: usize,
    pub nm_memory_mb: u64,
    pub nm_vcores: u32,
    /// `auto`, `cgroup-v1`, `cgroup-v2` or `none`.
    pub isolation: String,
    pub nm_heartbeat_ms: u64,
    pub nm_expiry_ms: u64,
    pub am_expiry_ms: u64,
    pub max_attempts: u32,
    pub kill_grace_ms: u64,
    /// The RM's `applications.finished-app-container-grace-ms`.
    pub finished_app_grace_ms: u64,
    /// Contents of a queues file for the RM (`scheduler.queues-file`); FIFO when absent.
    pub queues_yaml: Option<String>,
    /// The `weft` binary the daemons run (e.g. [`weft_release_bin`]); [`weft_bin`] when absent.
    pub weft_bin: Option<PathBuf>,
    /// `WEFT_LOG` of the daemons; `info,weft_nodemanager=debug` when absent.
    pub log_filter: Option<String>,
    /// Active/standby: a real PostgreSQL server (started by the harness) and two RMs on it.
    pub ha: bool,
    /// `ha.lease-ms` and `ha.renew-interval-ms` of the RMs (HA only).
    pub rm_lease_ms: u64,
    pub rm_renew_ms: u64,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodemanagers: 2,
            nm_memory_mb: 2048,
            nm_vcores: 8,
            isolation: "auto".into(),
            nm_heartbeat_ms: 250,
            nm_expiry_ms: 3_000,
            am_expiry_ms: 10_000,
            max_attempts: 2,
            kill_grace_ms: 500,
            finished_app_grace_ms: 2_000,
            queues_yaml: None,
            weft_bin: None,
            log_filter: None,
            ha: false,
            rm_lease_ms: 1_500,
            rm_renew_ms: 250,
        }
    }
}

/// One spawned `weft` daemon.
pub struct Daemon {
    pub name: String,
    child: Child,
    pub log: PathBuf,
    pub http_address: String,
    /// Set when a test killed it on purpose.
    expected_dead: bool,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub struct Cluster {
    /// Holds configs, logs, the state store and container dirs. Kept (not deleted) when a test
    /// fails, and its path printed, so logs can be read.
    pub dir: tempfile::TempDir,
    pub options: ClusterOptions,
    /// One RM, or two with `ha`; their ports stay the same across restarts.
    pub rms: Vec<Daemon>,
    pub nms: Vec<Daemon>,
    rm_ports: Vec<u16>,
    cgroup_roots: Vec<String>,
    /// The HA store; dropped (stopped) after the daemons.
    pub pg: Option<weft_pg_harness::PgServer>,
}

impl Cluster {
    pub fn start(options: ClusterOptions) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("weft-e2e-").tempdir()?;
        let pg = if options.ha {
            let pg = weft_pg_harness::PgServer::start()?;
            pg.create_database("weft")?;
            Some(pg)
        } else {
            None
        };
        let rm_ports = (0..if options.ha { 2 } else { 1 }).map(|_| free_port()).collect::<anyhow::Result<Vec<_>>>()?;
        let mut cluster =
            Cluster { dir, options, rms: Vec::new(), nms: Vec::new(), rm_ports, cgroup_roots: Vec::new(), pg };
        for i in 0..cluster.rm_ports.len() {
            let rm = cluster.spawn_rm(i)?;
            cluster.rms.push(rm);
        }
        if cluster.options.ha {
            cluster.wait_for_active()?;
        }
        for i in 1..=cluster.options.nodemanagers {
            cluster.start_nm(i)?;
        }
        let want = cluster.options.nodemanagers;
        cluster.wait_for_nodes(want)?;
        Ok(cluster)
    }

    /// The (first) ResourceManager.
    pub fn rm(&self) -> &Daemon {
        &self.rms[0]
    }

    /// The address of the active RM (the only one without HA). Asks the RMs with HA.
    pub fn rm_url(&self) -> &str {
        match self.active_rm() {
            Some(i) => &self.rms[i].http_address,
            None => &self.rms[0].http_address,
        }
    }

    /// Every RM address, comma-separated (what NMs and the CLI are given).
    pub fn rm_urls(&self) -> String {
        self.rm_ports.iter().map(|port| format!("http://127.0.0.1:{port}")).collect::<Vec<_>>().join(",")
    }

    /// Index of the RM that says it is active, if one does.
    pub fn active_rm(&self) -> Option<usize> {
        if !self.options.ha {
            return Some(0);
        }
        (0..self.rms.len()).find(|&i| self.ha_state(i).is_some_and(|s| s["haState"] == "ACTIVE"))
    }

    /// `GET /ws/v1/ha/state` of RM `index`; None if it does not answer.
    pub fn ha_state(&self, index: usize) -> Option<Value> {
        let rm = &self.rms[index];
        if rm.expected_dead {
            return None;
        }
        // Short: a paused RM accepts the connection but never answers.
        let url = format!("{}/ws/v1/ha/state", rm.http_address);
        let (_, _, text) = http_with_timeout("GET", &url, None, "", Duration::from_secs(1)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until some RM is active and returns its index.
    pub fn wait_for_active(&self) -> anyhow::Result<usize> {
        wait_for("an active ResourceManager", Duration::from_secs(30), || self.active_rm())
    }

    /// Sends `signal` to RM `index`. SIGKILL/SIGTERM mark it as expected to be dead.
    pub fn signal_rm(&mut self, index: usize, signal: i32) {
        let rm = &mut self.rms[index];
        // SAFETY: plain kill(2) on a pid we spawned.
        unsafe { libc::kill(rm.child.id() as i32, signal) };
        if signal == libc::SIGKILL || signal == libc::SIGTERM {
            rm.expected_dead = true;
            let _ = rm.child.wait();
        }
    }

    /// Starts RM `index` again (after it was killed) on its port and the same store.
    pub fn start_rm_again(&mut self, index: usize) -> anyhow::Result<()> {
        terminate(&mut self.rms[index].child, Duration::from_secs(10));
        self.rms[index] = self.spawn_rm(index)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn start_nm(&mut self, i: usize) -> anyhow::Result<()> {
        let name = format!("nm{i}");
        // Unique per test process and NM, so parallel tests never share a cgroup root.
        let cgroup_root = format!("weft-e2e-{}-{}", std::process::id(), name);
        let nm_dir = self.dir.path().join(&name);
        std::fs::create_dir_all(&nm_dir)?;
        let o = &self.options;
        let config = format!(
            "rm-addresses: [{rm}]\nbind: 127.0.0.1:0\nresources:\n  memory-mb: {mem}\n  vcores: {vc}\nwork-dir: {dir}/work\nlog-dir: {dir}/logs\nkill-grace-ms: {grace}\nmonitor-interval-ms: 200\nisolation:\n  mode: {iso}\n  cgroup-root: {root}\n",
            rm = self.rm_urls().split(',').map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", "),
            mem = o.nm_memory_mb,
            vc = o.nm_vcores,
            dir = nm_dir.display(),
            grace = o.kill_grace_ms,
            iso = o.isolation,
            root = cgroup_root,
        );
        let config_path = nm_dir.join("nm.yaml");
        std::fs::write(&config_path, config)?;
        let args = ["nm", "--config", &config_path.to_string_lossy()];
        let daemon = spawn_daemon(&name, self.dir.path(), &self.options, &args)?;
        if !self.cgroup_roots.contains(&cgroup_root) {
            self.cgroup_roots.push(cgroup_root);
        }
        self.nms.push(daemon);
        Ok(())
    }

    /// Waits until the RM lists `n` RUNNING nodes.
    pub fn wait_for_nodes(&self, n: usize) -> anyhow::Result<()> {
        wait_for(&format!("{n} RUNNING nodes"), Duration::from_secs(20), || {
            let nodes = self.get("/ws/v1/cluster/nodes?states=RUNNING").ok()?;
            (nodes["nodes"]["node"].as_array()?.len() == n).then_some(())
        })
    }

    /// Runs the `weft` CLI against this cluster.
    pub fn weft(&self, args: &[&str]) -> Output {
        Command::new(weft_bin())
            .args(args)
            .env("WEFT_RM", self.rm_urls())
            .env("USER", "tester")
            .env("WEFT_LOG", "warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run weft")
    }

    /// GET a JSON document from the RM.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        http_json("GET", &format!("{}{path}", self.rm_url()), None).map(|(_, v)| v)
    }

    /// Any HTTP call to the RM: (status, JSON body or Null).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        http_json(method, &format!("{}{path}", self.rm_url()), body)
    }

    pub fn app(&self, id: &str) -> anyhow::Result<Value> {
        Ok(self.get(&format!("/ws/v1/cluster/apps/{id}"))?["app"].clone())
    }

    /// Waits for an app to reach a final state and returns its JSON.
    pub fn wait_for_final(&self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        wait_for(&format!("{id} to finish"), timeout, || {
            let app = self.app(id).ok()?;
            matches!(app["state"].as_str()?, "FINISHED" | "FAILED" | "KILLED").then_some(app)
        })
    }

    /// Kills a NodeManager with `signal`; the final check will not count it as a crash.
    pub fn kill_nm(&mut self, index: usize, signal: i32) {
        let nm = &mut self.nms[index];
        nm.expected_dead = true;
        // SAFETY: plain kill(2) on a pid we spawned.
        unsafe { libc::kill(nm.child.id() as i32, signal) };
        let _ = nm.child.wait();
    }

    /// Stops the RM (SIGTERM) and starts a new one on the same port and state store.
    pub fn restart_rm(&mut self) -> anyhow::Result<()> {
        self.start_rm_again(0)
    }

    /// Fails if any process died that the test did not kill.
    pub fn assert_all_alive(&mut self) -> anyhow::Result<()> {
        for d in self.rms.iter_mut().chain(self.nms.iter_mut()) {
            if d.expected_dead {
                continue;
            }
            if let Some(status) = d.child.try_wait()? {
                bail!("{} died unexpectedly ({status}); log:\n{}", d.name, read_tail(&d.log));
            }
        }
        Ok(())
    }

    /// The cgroup directories of one NM's root, per v1 controller (or the v2 dir), that exist now.
    pub fn cgroup_dirs(&self, nm_index: usize) -> Vec<PathBuf> {
        let root = &self.cgroup_roots[nm_index];
        cgroup_root_dirs(root).into_iter().filter(|p| p.exists()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for nm in &mut self.nms {
            terminate(&mut nm.child, Duration::from_secs(10));
        }
        for rm in &mut self.rms {
            // A paused RM would ignore SIGTERM.
            // SAFETY: plain kill(2) on a pid we spawned.
            unsafe { libc::kill(rm.child.id() as i32, libc::SIGCONT) };
            terminate(&mut rm.child, Duration::from_secs(10));
        }
        // NMs killed with SIGKILL could not clean up after themselves.
        for root in &self.cgroup_roots {
            for dir in cgroup_root_dirs(root) {
                remove_cgroup_tree(&dir);
            }
        }
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")).keep();
            eprintln!("test failed; logs and data kept in {}", kept.display());
            if let Some(pg) = &self.pg {
                eprintln!("---- postgres ({}) ----\n{}", pg.log_path().display(), read_tail(&pg.log_path()));
            }
            for d in self.rms.iter().chain(self.nms.iter()) {
                eprintln!("---- {} ({}) ----\n{}", d.name, d.log.display(), read_tail(&d.log));
            }
        }
    }
}

impl Cluster {
    /// Writes RM `index`'s config and starts it.
    fn spawn_rm(&self, index: usize) -> anyhow::Result<Daemon> {
        let (dir, o) = (self.dir.path(), &self.options);
        let name = if o.ha { format!("rm{}", index + 1) } else { "rm".to_owned() };
        let queues_file = match &o.queues_yaml {
            Some(yaml) => {
                let path = dir.join("queues.yaml");
                std::fs::write(&path, yaml)?;
                format!("scheduler:\n  queues-file: {}\n  queues-reload-interval-ms: 200\n", path.display())
            }
            None => String::new(),
        };
        let ha = match &self.pg {
            Some(pg) => format!(
                "store:\n  kind: postgres\n  url: {url}\nha:\n  enabled: true\n  rm-addresses: [{addresses}]\n  lease-ms: {lease}\n  renew-interval-ms: {renew}\n",
                url = pg.url("weft"),
                addresses = self.rm_urls().split(',').map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", "),
                lease = o.rm_lease_ms,
                renew = o.rm_renew_ms,
            ),
            None => String::new(),
        };
        let config = format!(
            "bind: 127.0.0.1:{port}\ndata-dir: {dir}/{name}\nnodemanagers:\n  heartbeat-interval-ms: {hb}\n  expiry-ms: {exp}\napplications:\n  max-attempts: {att}\n  am-expiry-ms: {am}\n  finished-app-container-grace-ms: {grace}\ntick-interval-ms: 50\n",
            port = self.rm_ports[index],
            dir = dir.display(),
            hb = o.nm_heartbeat_ms,
            exp = o.nm_expiry_ms,
            att = o.max_attempts,
            am = o.am_expiry_ms,
            grace = o.finished_app_grace_ms,
        );
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config + &queues_file + &ha)?;
        spawn_daemon(&name, dir, o, &["rm", "--config", &path.to_string_lossy()])
    }
}

/// Starts `weft <args> --ready-file …` in its own process group with output appended to
/// `<dir>/<name>.log`, and waits until it wrote its ready file.
fn spawn_daemon(name: &str, dir: &Path, o: &ClusterOptions, args: &[&str]) -> anyhow::Result<Daemon> {
    use std::os::unix::process::CommandExt;
    let log = dir.join(format!("{name}.log"));
    let ready = dir.join(format!("{name}.ready"));
    let _ = std::fs::remove_file(&ready);
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
    let bin = o.weft_bin.clone().unwrap_or_else(weft_bin);
    let mut child = Command::new(bin)
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .env("WEFT_LOG", o.log_filter.as_deref().unwrap_or("info,weft_nodemanager=debug"))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawning {name}"))?;
    let started = wait_for(&format!("{name} to be ready"), Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(anyhow::anyhow!("{name} exited during start-up ({status}):\n{}", read_tail(&log))));
        }
        let text = std::fs::read_to_string(&ready).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        Some(Ok(v["http_address"].as_str()?.to_owned()))
    });
    let http_address = match started {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) | Err(e) => {
            terminate(&mut child, Duration::from_secs(5));
            return Err(e.context(read_tail(&log)));
        }
    };
    Ok(Daemon { name: name.to_owned(), child, log, http_address, expected_dead: false })
}

/// SIGTERM, then SIGKILL if it has not exited within `grace`.
fn terminate(child: &mut Child, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    // SAFETY: plain kill(2) on a pid we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let exited = wait_for("process exit", grace, || child.try_wait().ok().flatten());
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Where an NM of this process nests `root`: under this process's own cgroup, in every v1
/// controller hierarchy, and in the v2 hierarchy.
fn cgroup_root_dirs(root: &str) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else { return Vec::new() };
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                dirs.push(Path::new(base).join(path).join(root));
            }
        } else {
            for c in controllers.split(',') {
                let c = c.trim_start_matches("name=");
                dirs.push(Path::new("/sys/fs/cgroup").join(c).join(path).join(root));
            }
        }
    }
    dirs
}

/// Kills every process under `dir` and removes the cgroups bottom-up.
fn remove_cgroup_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = wait_for("cgroup to empty", Duration::from_secs(5), || {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
        for pid in &pids {
            // SAFETY: kill(2) on pids found in a cgroup this test created.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        pids.is_empty().then_some(())
    });
    let _ = std::fs::remove_dir(dir);
}

/// Minimal blocking HTTP/1.1 JSON client, so tests need no async runtime.
pub fn http_json(method: &str, url: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
    let (status, text) = http(method, url, body.map(|b| b.to_string()).as_deref(), "application/json")?;
    let value =
        if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Ok((status, value))
}

/// Raw HTTP call: (status, body text). Also returns headers through [`http_full`].
pub fn http(method: &str, url: &str, body: Option<&str>, content_type: &str) -> anyhow::Result<(u16, String)> {
    http_full(method, url, body, content_type).map(|(s, _, b)| (s, b))
}

pub fn http_full(
    method: &str,
    url: &str,
    body: Option<&str>,
    content_type: &str,
) -> anyhow::Result<(u16, Vec<(String, String)>, String)> {
    http_with_timeout(method, url, body, content_type, Duration::from_secs(30))
}

/// [`http_full`] giving up after `timeout` without an answer (e.g. from a paused process).
pub fn http_with_timeout(
    method: &str,
    url: &str,
    body: Option<&str>,
    content_type: &str,
    timeout: Duration,
) -> anyhow::Result<(u16, Vec<(String, String)>, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").context("http:// URL")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text.split_once("\r\n\r\n").context("HTTP response without header end")?;
    let mut lines = head.lines();
    let status: u16 =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).context("status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let payload = if chunked { dechunk(payload) } else { payload.to_owned() };
    Ok((status, headers, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
