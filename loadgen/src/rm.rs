//! Starting and stopping the real ResourceManager (`weft rm`) the load is aimed at.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What the generated `rm.yaml` needs from the command line.
pub struct RmSettings {
    pub store: StoreKind,
    pub heartbeat_interval_ms: u64,
    pub max_completed_apps: usize,
    pub log_filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite file in the run directory (what production runs).
    Sqlite,
    /// Nothing persisted.
    Memory,
}

/// A `weft rm` child process. Dropping it stops the process.
pub struct RmProcess {
    child: Child,
    pub address: String,
    pub log: PathBuf,
}

/// The `weft` binary next to this executable (`target/<profile>/weft`), so that
/// `cargo build --release -p weft -p weft-loadgen && target/release/weft-loadgen` just works.
pub fn default_weft_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("this executable has no directory")?;
    let bin = dir.join("weft");
    if !bin.is_file() {
        bail!("no weft binary at {}: build it (cargo build --release -p weft) or pass --weft-bin", bin.display());
    }
    Ok(bin)
}

impl RmProcess {
    /// Writes a config into `dir`, starts `weft rm` on an ephemeral loopback port with its output
    /// in `dir/rm.log`, and waits until it reports its address through the ready file.
    pub fn spawn(bin: &Path, dir: &Path, s: &RmSettings) -> anyhow::Result<RmProcess> {
        let store = match s.store {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Memory => "memory",
        };
        // Nodes must not expire for reasons unrelated to the RM's own health (a stalled RM
        // shows as missing heartbeats in the report); YARN's default expiry is 10 minutes.
        let config = format!(
            "bind: 127.0.0.1:0\n\
             data-dir: {data}\n\
             store:\n  kind: {store}\n\
             nodemanagers:\n  heartbeat-interval-ms: {hb}\n  expiry-ms: 600000\n\
             applications:\n  max-completed-apps: {retain}\n",
            data = dir.join("rm").display(),
            hb = s.heartbeat_interval_ms,
            retain = s.max_completed_apps,
        );
        let config_path = dir.join("rm.yaml");
        std::fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
        let log = dir.join("rm.log");
        let ready = dir.join("rm.ready");
        let _ = std::fs::remove_file(&ready);
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(bin);
        command
            .args(["rm", "--config"])
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready)
            .env("WEFT_LOG", &s.log_filter)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        die_with_parent(&mut command);
        let child = command.spawn().with_context(|| format!("starting {} rm", bin.display()))?;
        let mut rm = RmProcess { child, address: String::new(), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = rm.child.try_wait()? {
                bail!(
                    "the ResourceManager exited during start-up ({status}); log {}:\n{}",
                    rm.log.display(),
                    rm.log_tail()
                );
            }
            if let Some(address) = std::fs::read_to_string(&ready)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| v["http_address"].as_str().map(str::to_owned))
            {
                rm.address = address;
                return Ok(rm);
            }
            if Instant::now() >= deadline {
                bail!("the ResourceManager did not become ready within 60 s; log {}", rm.log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(exit status)` if the process is gone.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        // SAFETY: kill(2) on the pid of a child we have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RmProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the kernel SIGTERM the RM if this process dies without cleaning up (e.g. SIGKILL), so
/// no RM is left behind holding a port and a store.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}
