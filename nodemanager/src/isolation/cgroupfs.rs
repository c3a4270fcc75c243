//! Plain cgroupfs access shared by the v1 and v2 implementations: finding this process's own
//! cgroups, reading and writing control files, and tearing a cgroup tree down.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::NmError;
use crate::process::{is_alive, signal_pids};

/// How long [`remove_tree`] keeps killing before giving up (only processes stuck in
/// uninterruptible sleep take this long to die).
const KILL_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The cgroup path mounted there (`/` unless a cgroup namespace or bind mount hides the rest).
    pub root: String,
    pub is_v2: bool,
    /// Super-block options; for v1 they name the attached controllers (`rw,cpu,cpuacct`).
    pub options: Vec<String>,
}

/// Every cgroup (v1 or v2) mount of this process's mount namespace.
pub fn cgroup_mounts() -> Vec<CgroupMount> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|text| parse_mountinfo(&text)).unwrap_or_default()
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            // `id parent major:minor root mount-point options [optional…] - fstype source super-options`
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let fstype = *right.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let options = right.get(2).map(|o| o.split(',').map(String::from).collect()).unwrap_or_default();
            Some(CgroupMount {
                mount_point: PathBuf::from(unescape_mount_path(left.get(4)?)),
                root: unescape_mount_path(left.get(3)?),
                is_v2: fstype == "cgroup2",
                options,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// This process's cgroup path for a v1 controller (`Some("memory")`) or in the v2 hierarchy
/// (`None`), from `/proc/self/cgroup`.
pub fn own_cgroup_path(v1_controller: Option<&str>) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    parse_own_cgroup(&text, v1_controller)
}

fn parse_own_cgroup(text: &str, v1_controller: Option<&str>) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let hierarchy = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let matches = match v1_controller {
            Some(c) => controllers.split(',').any(|x| x == c),
            None => hierarchy == "0" && controllers.is_empty(),
        };
        matches.then(|| path.to_owned())
    })
}

/// The directory of this process's own cgroup inside `mount`.
pub fn own_cgroup_dir(mount: &CgroupMount, own_path: &str) -> PathBuf {
    let relative = own_path.strip_prefix(mount.root.trim_end_matches('/')).unwrap_or(own_path);
    mount.mount_point.join(relative.trim_start_matches('/'))
}

pub fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), NmError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(NmError::cgroup(path))
}

pub fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

/// Value of `key` in a flat-keyed file such as `memory.events` or `memory.oom_control`.
pub fn read_keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Pids in the cgroup (not its descendants). Zombies are not listed by the kernel.
pub fn read_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Pids in the cgroup and all its descendants.
pub fn read_procs_recursive(dir: &Path) -> Vec<i32> {
    let mut pids = read_procs(dir);
    for child in child_dirs(dir) {
        pids.extend(read_procs_recursive(&child));
    }
    pids
}

pub fn child_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

pub fn procs_file_cstring(dir: &Path) -> Result<CString, NmError> {
    let path = dir.join("cgroup.procs");
    CString::new(path.as_os_str().as_bytes()).map_err(|_| NmError::Cgroup {
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Kills every process in `dir` and its descendants (SIGKILL until none is left; a process may
/// fork while we kill, so one pass is not enough), then removes the directories bottom-up.
/// Blocks for as long as that takes; call it off the async runtime.
pub fn remove_tree(dir: &Path) -> Result<(), NmError> {
    if !dir.exists() {
        return Ok(());
    }
    for child in child_dirs(dir) {
        remove_tree(&child)?;
    }
    let deadline = Instant::now() + KILL_DEADLINE;
    loop {
        let alive: Vec<i32> = read_procs(dir).into_iter().filter(|&pid| is_alive(pid)).collect();
        if alive.is_empty() {
            match std::fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                // EBUSY while the kernel finishes detaching exiting tasks.
                Err(e) if Instant::now() >= deadline => {
                    return Err(NmError::Cgroup { path: dir.to_owned(), source: e });
                }
                Err(_) => {}
            }
        } else if Instant::now() >= deadline {
            return Err(NmError::Cgroup {
                path: dir.to_owned(),
                source: std::io::Error::other(format!("processes {alive:?} survived SIGKILL")),
            });
        } else {
            signal_pids(&alive, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_and_own_cgroup() {
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
            41 31 0:38 /ns /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        let mounts = parse_mountinfo(mountinfo);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].options, vec!["rw", "cpu", "cpuacct"]);
        assert_eq!(mounts[1].options, vec!["rw", "name=systemd"]);
        assert!(mounts[2].is_v2);
        assert_eq!(own_cgroup_dir(&mounts[2], "/ns/a/b"), PathBuf::from("/sys/fs/cgroup/unified/a/b"));
        assert_eq!(own_cgroup_dir(&mounts[0], "/"), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));

        let own = "4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n";
        assert_eq!(parse_own_cgroup(own, Some("memory")).as_deref(), Some("/process_api/abc"));
        assert_eq!(parse_own_cgroup(own, Some("cpuacct")).as_deref(), Some("/"));
        assert_eq!(parse_own_cgroup(own, None).as_deref(), Some("/user.slice"));
        assert_eq!(parse_own_cgroup(own, Some("pids")), None);
    }
}
