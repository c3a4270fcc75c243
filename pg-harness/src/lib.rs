//! A real PostgreSQL server for tests: [`PgServer::start`] runs a private server from the
//! distribution's binaries (`apt-get install postgresql` on Debian, which puts them in
//! `/usr/lib/postgresql/<major>/bin`), and dropping the [`PgServer`] stops it and deletes its
//! files.
//!
//! Each server lives in its own temporary directory: data directory, server log and unix socket.
//! It listens on 127.0.0.1 only, on a free ephemeral port, with `trust` authentication for the
//! `postgres` superuser and durability turned off (`fsync=off`) for speed.
//!
//! Start-up cost: `initdb` takes a second or two, and every test (nextest runs each in its own
//! process) wants a fresh server. So `initdb` runs once per machine, PostgreSQL version and OS
//! user, into a template directory (`weft-pg-template-<format>-<version>-<uid>`), built beside
//! it and renamed into place so concurrent test processes never see half of one; each server
//! starts from a copy of it. Template and servers live in `/dev/shm` where it can be written
//! (copying onto a disk is what made a start slow), else in the system temp dir.
//!
//! Running as root (CI does), the server and its tools run as the `postgres` OS user, since
//! PostgreSQL refuses to run as root; as any other user they run as that user.
//!
//! The binaries are taken from `$WEFT_PG_BIN_DIR` if set, else from the newest
//! `/usr/lib/postgresql/<major>/bin`. Missing binaries are an error, never a skipped test.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tempfile::TempDir;

/// Where Debian's `postgresql-<major>` packages install the server binaries.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// Part of the template's name: bump it when the `initdb` options change, so no server starts
/// from a template made with the old ones.
const TEMPLATE_FORMAT: u32 = 1;

/// Overrides the binary directory (another distribution, a source build).
const BIN_DIR_ENV: &str = "WEFT_PG_BIN_DIR";

/// How long a start may take before it is an error (a loaded 2-core CI machine included).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the server may take to exit after a shutdown signal before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Between two readiness (or exit) checks.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Starts on a port another process took between our probe and the server's bind are retried
/// on a new port this many times.
const PORT_ATTEMPTS: u32 = 5;

/// The database superuser `initdb` creates (named after `-U`, not after the OS user).
const SUPERUSER: &str = "postgres";

/// A running (or stopped, see [`PgServer::stop`]) private PostgreSQL server.
pub struct PgServer {
    /// Server binaries.
    bin: PathBuf,
    /// The OS user the server and its tools run as; `None` for the current user.
    user: Option<OsUser>,
    /// Holds `data/`, `postgres.log` and the unix socket; removed on drop.
    dir: TempDir,
    port: u16,
    /// The postmaster, while running.
    postmaster: Option<Child>,
}

#[derive(Debug, Clone, Copy)]
struct OsUser {
    uid: u32,
    gid: u32,
}

/// Outcome of one start attempt.
enum Launch {
    Ready,
    /// The port was taken by someone else; the error says so with the log.
    PortInUse(anyhow::Error),
}

impl PgServer {
    /// Starts a fresh server (an empty cluster with only the default databases). It accepts
    /// connections when this returns.
    pub fn start() -> Result<PgServer> {
        let bin = bin_dir()?;
        let user = server_user()?;
        let template = template(&bin, user)?;
        let dir = tempfile::Builder::new()
            .prefix("weft-pg-")
            .tempdir_in(scratch_root())
            .context("cannot create a temp dir")?;
        chown(dir.path(), user)?;
        let data = dir.path().join("data");
        // As root `cp -a` keeps the owner (the server user), which the data directory needs.
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .output()
            .context("cannot run cp to copy the template data directory")?;
        ensure!(
            copied.status.success(),
            "copying {} to {} failed: {}",
            template.display(),
            data.display(),
            String::from_utf8_lossy(&copied.stderr)
        );

        let mut server = PgServer { bin, user, dir, port: free_port()?, postmaster: None };
        for attempt in 1..=PORT_ATTEMPTS {
            match server.launch()? {
                Launch::Ready => return Ok(server),
                Launch::PortInUse(error) if attempt == PORT_ATTEMPTS => return Err(error),
                Launch::PortInUse(_) => server.port = free_port()?,
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The TCP port on 127.0.0.1. It stays the same across [`PgServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL (see [`PgServer::url`]). `name` is limited
    /// to lowercase ASCII letters, digits and `_`, so it needs no quoting anywhere.
    pub fn create_database(&self, name: &str) -> Result<String> {
        ensure!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?}: use lowercase ASCII letters, digits and _"
        );
        let port = self.port.to_string();
        self.run_tool("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name])?;
        Ok(self.url(name))
    }

    /// Runs `sql` with `psql` in `database` (stopping at the first error) and returns what it
    /// printed: unaligned, tuples only, so `select 1` prints `1\n`.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let port = self.port.to_string();
        let args = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER];
        self.run_tool("psql", &[&args[..], &["-d", database, "-c", sql]].concat())
    }

    /// Shuts the server down (fast: open sessions are ended, their transactions rolled back) and
    /// waits for it to exit. The data directory is kept for [`PgServer::restart`]. Stopping a
    /// stopped server does nothing.
    pub fn stop(&mut self) -> Result<()> {
        self.shut_down(libc::SIGINT)
    }

    /// Starts the stopped server again on the same port and data directory.
    pub fn restart(&mut self) -> Result<()> {
        ensure!(self.postmaster.is_none(), "restart: the server is running; stop it first");
        match self.launch()? {
            Launch::Ready => Ok(()),
            Launch::PortInUse(error) => Err(error.context(format!("cannot restart on port {}", self.port))),
        }
    }

    /// The server's log (its stderr), across restarts. Worth quoting in a failure message.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Spawns the postmaster on `self.port` and waits until it accepts connections.
    fn launch(&mut self) -> Result<Launch> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_start = log.metadata()?.len();
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            // The unix socket goes into our own directory (the default, /var/run/postgresql, is
            // shared with any system server).
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Throwaway data: no durability, small memory (several servers may run at once).
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "shared_buffers=16MB"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let postmaster =
            command.spawn().with_context(|| format!("cannot run {}", self.bin.join("postgres").display()))?;
        self.postmaster = Some(postmaster);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = match self.postmaster.as_mut() {
                Some(postmaster) => postmaster.try_wait()?,
                None => bail!("the postmaster vanished while starting"),
            };
            if let Some(status) = exited {
                self.postmaster = None;
                let log = read_from(&log_path, log_start);
                let error = anyhow!(
                    "postgres exited ({status}) while starting on port {}; its log {}:\n{log}",
                    self.port,
                    log_path.display()
                );
                if log.contains("Address already in use") {
                    return Ok(Launch::PortInUse(error));
                }
                return Err(error);
            }
            if self.is_ready()? {
                return Ok(Launch::Ready);
            }
            if Instant::now() > deadline {
                let _ = self.shut_down(libc::SIGQUIT);
                bail!(
                    "postgres did not accept connections on port {} within {START_TIMEOUT:?}; its log {}:\n{}",
                    self.port,
                    log_path.display(),
                    read_from(&log_path, log_start)
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether the server accepts connections on its TCP port (start-up and recovery done).
    fn is_ready(&self) -> Result<bool> {
        let status = self
            .command("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", SUPERUSER, "-d", "postgres"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run pg_isready")?;
        Ok(status.success())
    }

    /// Signals the postmaster (`SIGINT`: fast shutdown, `SIGQUIT`: immediate) and reaps it,
    /// killing it if it takes longer than [`STOP_TIMEOUT`].
    fn shut_down(&mut self, signal: libc::c_int) -> Result<()> {
        let Some(mut postmaster) = self.postmaster.take() else {
            return Ok(());
        };
        let pid = libc::pid_t::try_from(postmaster.id()).context("pid out of range")?;
        // SAFETY: plain syscall; `pid` is our own unreaped child, so it cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            let error = std::io::Error::last_os_error();
            let _ = postmaster.kill();
            let _ = postmaster.wait();
            bail!("cannot signal postgres (pid {pid}): {error}");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if postmaster.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = postmaster.kill();
                postmaster.wait()?;
                bail!("postgres (pid {pid}) did not stop within {STOP_TIMEOUT:?}; killed it");
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Runs one of the client tools to completion; its stdout, or an error with its stderr.
    fn run_tool(&self, tool: &str, args: &[&str]) -> Result<String> {
        let output = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.bin.join(tool).display()))?;
        ensure!(
            output.status.success(),
            "{tool} {} failed ({}): {}\nserver log: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end(),
            self.log_path().display()
        );
        String::from_utf8(output.stdout).with_context(|| format!("{tool} printed something that is not UTF-8"))
    }

    fn command(&self, tool: &str) -> Command {
        server_command(&self.bin, tool, self.user, self.dir.path())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate: nothing of the data is wanted any more. The directory goes with `self.dir`.
        if let Err(error) = self.shut_down(libc::SIGQUIT) {
            eprintln!("weft-pg-harness: stopping the test PostgreSQL server: {error:#}");
        }
    }
}

/// A command for one of the PostgreSQL binaries, run as `user` in `cwd` with a clean
/// environment (so a developer's `PGHOST`, `PGOPTIONS`, … cannot redirect or alter it).
fn server_command(bin: &Path, tool: &str, user: Option<OsUser>, cwd: &Path) -> Command {
    use std::os::unix::process::CommandExt;

    let mut command = Command::new(bin.join(tool));
    command.env_clear().env("PATH", "/usr/bin:/bin").env("LC_ALL", "C").current_dir(cwd);
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// The directory of the server binaries; an error that says how to install them if missing.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let dir = PathBuf::from(dir);
        ensure!(dir.join("postgres").is_file(), "${BIN_DIR_ENV} is {}, which has no postgres binary", dir.display());
        return Ok(dir);
    }
    let newest = std::fs::read_dir(DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            ["postgres", "initdb", "pg_isready", "createdb", "psql"]
                .iter()
                .all(|tool| bin.join(tool).is_file())
                .then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "the PostgreSQL tests need a PostgreSQL server, but there is none in \
             {DEBIAN_PG_ROOT}/<version>/bin: install it with `apt-get install postgresql` \
             (or point ${BIN_DIR_ENV} at a directory with postgres, initdb, pg_isready, createdb and psql)"
        ),
    }
}

/// `None` (run as ourselves) unless we are root, in which case the `postgres` OS user.
fn server_user() -> Result<Option<OsUser>> {
    // SAFETY: plain syscall without arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let user = lookup_user("postgres")?.context(
        "running as root, the test PostgreSQL server must run as the `postgres` OS user, which does not \
         exist: `apt-get install postgresql` creates it",
    )?;
    Ok(Some(user))
}

fn lookup_user(name: &str) -> Result<Option<OsUser>> {
    let c_name = std::ffi::CString::new(name)?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid `passwd` (integers and null pointers); getpwnam_r fills it.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buffer.len()` is the buffer's real size;
    // the strings it points `entry` at live in `buffer`, which we do not read.
    let code = unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found) };
    if code != 0 {
        bail!("cannot look up OS user {name}: {}", std::io::Error::from_raw_os_error(code));
    }
    Ok((!found.is_null()).then_some(OsUser { uid: entry.pw_uid, gid: entry.pw_gid }))
}

fn chown(path: &Path, user: Option<OsUser>) -> Result<()> {
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("cannot chown {} to the postgres user", path.display()))?;
    }
    Ok(())
}

/// The initialized data directory every server copies, made on first use (see the module doc).
fn template(bin: &Path, user: Option<OsUser>) -> Result<PathBuf> {
    let version = server_version(bin)?;
    // SAFETY: plain syscall without arguments.
    let uid = unsafe { libc::geteuid() };
    let name = format!("weft-pg-template-{TEMPLATE_FORMAT}-{version}-{uid}");
    let temp = scratch_root();
    let template = temp.join(&name);
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }

    // Concurrent first uses would each run initdb; the rename below would still leave exactly one
    // complete template, the lock just saves the duplicate work.
    let lock_path = temp.join(format!("{name}.lock"));
    let lock = File::create(&lock_path).with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    let building = tempfile::Builder::new()
        .prefix(&format!("{name}.building-"))
        .tempdir_in(&temp)
        .context("cannot create a temp dir for initdb")?;
    chown(building.path(), user)?;
    let data = building.path().join("data");
    let output = server_command(bin, "initdb", user, building.path())
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
        // 1 MiB WAL segments instead of 16: less to copy per server.
        .arg("--wal-segsize=1")
        .stdin(Stdio::null())
        .output()
        .context("cannot run initdb")?;
    ensure!(
        output.status.success(),
        "initdb failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match std::fs::rename(&data, &template) {
        Ok(()) => Ok(template),
        // Another process (one that did not take the lock, e.g. an older harness) won the race.
        Err(_) if template.join("PG_VERSION").is_file() => Ok(template),
        Err(error) => Err(error).with_context(|| format!("cannot move {} to {}", data.display(), template.display())),
    }
}

/// `15.14` from `postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)`.
fn server_version(bin: &Path) -> Result<String> {
    let output =
        Command::new(bin.join("postgres")).arg("--version").output().context("cannot run postgres --version")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .skip_while(|word| *word != "(PostgreSQL)")
        .nth(1)
        .filter(|version| version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        .map(str::to_owned)
        .with_context(|| format!("cannot read the version from `postgres --version`: {text:?}"))
}

/// Where the servers and the template live: `/dev/shm` if we can write there (a tmpfs: copying
/// the template onto a disk-backed temp dir takes ten times as long), else the temp dir.
fn scratch_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        match tempfile::Builder::new().prefix("weft-pg-probe-").tempdir_in(shm) {
            Ok(_probe) => shm.to_owned(),
            Err(_) => std::env::temp_dir(),
        }
    })
    .clone()
}

/// A port nobody listens on right now (the kernel's pick of an ephemeral one).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a probe socket on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The log from byte `offset` on (this start's part), or a note that it cannot be read.
fn read_from(path: &Path, offset: u64) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}
