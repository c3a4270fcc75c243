//! Turning a launch context into a running process: localization, YARN's command and
//! environment substitutions, and the fork/exec that puts the process into its cgroup.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::path::{Component, Path};
use std::process::Stdio;

use tokio::process::{Child, Command};
use weft_common::protocol::{LocalResource, LocalResourceType};

/// Used when the NM's own environment has no PATH to pass on.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Rejects launch contexts that can never start, before anything is created.
pub fn validate(
    commands: &[String],
    environment: &BTreeMap<String, String>,
    resources: &BTreeMap<String, LocalResource>,
) -> Result<(), String> {
    if commands.iter().all(|c| c.trim().is_empty()) {
        return Err("launch_context.commands is empty".into());
    }
    if commands.iter().any(|c| c.contains('\0')) {
        return Err("launch_context.commands contains a NUL byte".into());
    }
    for (key, value) in environment {
        if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
            return Err(format!("environment variable {key:?} has an invalid name or value"));
        }
    }
    for key in resources.keys() {
        if key.is_empty() || !Path::new(key).components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("local resource key {key:?} must be a relative path without `..`"));
        }
    }
    Ok(())
}

/// Makes every local resource available in `work_dir` under its key: files and directories are
/// symlinked (copied if the file system refuses symlinks), archives are unpacked with `tar`.
pub async fn localize(work_dir: &Path, resources: &BTreeMap<String, LocalResource>) -> Result<(), String> {
    for (key, resource) in resources {
        let source = resource.local_path().ok_or_else(|| {
            format!("local resource `{key}`: {:?} is neither an absolute path nor a file:// URL", resource.resource)
        })?;
        let source = Path::new(source);
        if tokio::fs::metadata(source).await.is_err() {
            return Err(format!("local resource `{key}`: {} does not exist", source.display()));
        }
        let target = work_dir.join(key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("local resource `{key}`: cannot create {}: {e}", parent.display()))?;
        }
        let result = match resource.kind {
            LocalResourceType::File => link_or_copy(source, &target).await,
            LocalResourceType::Archive | LocalResourceType::Pattern => unpack(source, &target).await,
        };
        result.map_err(|e| format!("local resource `{key}` ({}): {e}", source.display()))?;
    }
    Ok(())
}

async fn link_or_copy(source: &Path, target: &Path) -> Result<(), String> {
    if tokio::fs::symlink(source, target).await.is_ok() {
        return Ok(());
    }
    let (source, target) = (source.to_owned(), target.to_owned());
    tokio::task::spawn_blocking(move || copy_recursively(&source, &target))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot copy into the work dir: {e}"))
}

fn copy_recursively(source: &Path, target: &Path) -> io::Result<()> {
    if !source.is_dir() {
        return std::fs::copy(source, target).map(drop);
    }
    std::fs::create_dir_all(target)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        copy_recursively(&entry.path(), &target.join(entry.file_name()))?;
    }
    Ok(())
}

async fn unpack(source: &Path, target: &Path) -> Result<(), String> {
    if source.is_dir() {
        return link_or_copy(source, target).await;
    }
    tokio::fs::create_dir_all(target).await.map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    // GNU tar detects the compression itself.
    let output = Command::new("tar")
        .arg("-xf")
        .arg(source)
        .arg("-C")
        .arg(target)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("tar could not unpack it: {}", String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Replaces every `{{NAME}}` (NAME a shell variable name) with `replacement(NAME)`.
fn replace_braced_vars(text: &str, replacement: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_end = after.find("}}");
        match name_end.map(|end| &after[..end]) {
            Some(name) if is_variable_name(name) => {
                out.push_str(&replacement(name));
                rest = &after[name.len() + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// YARN's command substitutions; `{{VAR}}` becomes `${VAR}` for bash to expand (braced, so a
/// following letter cannot change the variable name).
pub fn expand_command(commands: &[String], log_dir: &Path) -> String {
    let joined = commands.join(" ").replace("<LOG_DIR>", &log_dir.to_string_lossy()).replace("<CPS>", ":");
    replace_braced_vars(&joined, |name| format!("${{{name}}}"))
}

/// The container's environment: `base` (the NM's whitelisted variables), then the launch
/// context's variables with `{{VAR}}`, `<CPS>` and `<LOG_DIR>` expanded (no shell sees them),
/// then the NM's own variables, which the launch context cannot override.
pub fn container_environment(
    base: &BTreeMap<String, String>,
    requested: &BTreeMap<String, String>,
    nm_vars: BTreeMap<String, String>,
    log_dir: &Path,
) -> BTreeMap<String, String> {
    let mut env = base.clone();
    env.entry("PATH".into()).or_insert_with(|| DEFAULT_PATH.into());
    let mut lookup = env.clone();
    lookup.extend(requested.iter().map(|(k, v)| (k.clone(), v.clone())));
    lookup.extend(nm_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (key, value) in requested {
        let value = value.replace("<CPS>", ":").replace("<LOG_DIR>", &log_dir.to_string_lossy());
        let value = replace_braced_vars(&value, |name| lookup.get(name).cloned().unwrap_or_default());
        env.insert(key.clone(), value);
    }
    env.extend(nm_vars);
    env
}

/// Starts `bash -c <command>` as the leader of a new session and process group, inside the
/// cgroups whose `cgroup.procs` files are given, with stdout and stderr piped (for
/// [`crate::output::Capture`]).
///
/// Must be called on a runtime worker thread, not a blocking-pool thread: the leader's
/// parent-death signal fires when the thread that forked it exits.
pub fn spawn(
    command: &str,
    env: &BTreeMap<String, String>,
    work_dir: &Path,
    procs_files: Vec<CString>,
) -> io::Result<Child> {
    let parent_pid = std::process::id();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(command)
        .current_dir(work_dir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    // SAFETY: `enter_container` makes only async-signal-safe calls and allocates nothing: it
    // reads `procs_files`, which was built before the fork.
    unsafe {
        cmd.pre_exec(move || enter_container(&procs_files, parent_pid));
    }
    cmd.spawn()
}

/// Runs in the forked child before exec: new session, join the cgroups (so nothing the
/// container runs can start outside them), die with the NM.
fn enter_container(procs_files: &[CString], parent_pid: u32) -> io::Result<()> {
    // SAFETY (all blocks below): plain system calls on valid, NUL-terminated paths and a stack
    // buffer; none of them allocates or takes locks.
    if unsafe { libc::setsid() } == -1 {
        return Err(io::Error::last_os_error());
    }
    let mut digits = [0u8; 20];
    let pid_text = format_decimal(unsafe { libc::getpid() }.unsigned_abs(), &mut digits);
    for file in procs_files {
        let fd = unsafe { libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = unsafe { libc::write(fd, pid_text.as_ptr().cast(), pid_text.len()) };
        let error = (written < 0).then(io::Error::last_os_error);
        unsafe { libc::close(fd) };
        if let Some(error) = error {
            return Err(error);
        }
    }
    // Best effort: if the NM dies without cleaning up, its containers die too. The signal fires
    // when the forking *thread* exits, so spawns must run on long-lived runtime worker threads,
    // never in `spawn_blocking` (whose threads retire when idle).
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    if unsafe { libc::getppid() }.unsigned_abs() != parent_pid {
        // The NM died before the death signal was armed.
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Writes `value` in decimal into the end of `buf` without allocating.
fn format_decimal(mut value: u32, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_substitutions() {
        let commands =
            vec!["{{JAVA_HOME}}/bin/java -cp a<CPS>b".to_owned(), "1><LOG_DIR>/out {{x}}y {{ bad}} {{".to_owned()];
        assert_eq!(
            expand_command(&commands, Path::new("/logs/c1")),
            "${JAVA_HOME}/bin/java -cp a:b 1>/logs/c1/out ${x}y {{ bad}} {{"
        );
    }

    #[test]
    fn environment_layers() {
        let base = BTreeMap::from([("LANG".to_owned(), "C".to_owned())]);
        let requested = BTreeMap::from([
            ("CLASSPATH".to_owned(), "{{PWD}}/lib<CPS>{{MISSING}}x".to_owned()),
            ("CONTAINER_ID".to_owned(), "forged".to_owned()),
            ("OUT".to_owned(), "<LOG_DIR>/o".to_owned()),
        ]);
        let nm = BTreeMap::from([("PWD".to_owned(), "/w".to_owned()), ("CONTAINER_ID".to_owned(), "c1".to_owned())]);
        let env = container_environment(&base, &requested, nm, Path::new("/l"));
        assert_eq!(env["CLASSPATH"], "/w/lib:x");
        assert_eq!(env["CONTAINER_ID"], "c1");
        assert_eq!(env["OUT"], "/l/o");
        assert_eq!(env["LANG"], "C");
        assert_eq!(env["PATH"], DEFAULT_PATH);
    }

    #[test]
    fn validation() {
        let none = BTreeMap::new();
        assert!(validate(&[], &none, &BTreeMap::new()).is_err());
        assert!(validate(&["true".into()], &none, &BTreeMap::new()).is_ok());
        let bad_env = BTreeMap::from([("A=B".to_owned(), String::new())]);
        assert!(validate(&["true".into()], &bad_env, &BTreeMap::new()).is_err());
        let lr = LocalResource { resource: "/x".into(), kind: LocalResourceType::File, visibility: Default::default() };
        for bad in ["../x", "/etc/x", "a/../../b", ""] {
            let resources = BTreeMap::from([(bad.to_owned(), lr.clone())]);
            assert!(validate(&["true".into()], &none, &resources).is_err(), "{bad}");
        }
    }

    #[test]
    fn decimal_without_allocation() {
        let mut buf = [0u8; 20];
        assert_eq!(format_decimal(0, &mut buf), b"0");
        assert_eq!(format_decimal(4_294_967_295, &mut buf), b"4294967295");
    }
}
