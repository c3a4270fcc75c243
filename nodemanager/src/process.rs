//! Reading `/proc` and signalling processes.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The fields of `/proc/<pid>/stat` the NM uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub zombie: bool,
    pub process_group: i32,
    pub rss_bytes: u64,
}

/// Parses `/proc/<pid>/stat`; `None` if the process is gone.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

fn parse_stat(pid: i32, text: &str) -> Option<ProcStat> {
    // The command name (field 2) may contain spaces and parentheses, so split after the last ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5); rss is field 24.
    let state = *fields.first()?;
    let process_group = fields.get(2)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some(ProcStat { pid, zombie: state == "Z" || state == "X", process_group, rss_bytes: rss_pages * page_size() })
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn process_group_members(pgid: i32) -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .filter(|s| s.process_group == pgid && !s.zombie)
        .collect()
}

/// True if `pid` exists and is not a zombie (zombies cannot run and need no killing).
pub fn is_alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|s| !s.zombie)
}

/// Sends `signal` to a process group. Errors (typically "no such process") are ignored: the
/// callers verify the outcome by looking at what is still alive.
pub fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 1 {
        let _ = kill(Pid::from_raw(-pgid), signal);
    }
}

pub fn signal_pids(pids: &[i32], signal: Signal) {
    for &pid in pids.iter().filter(|&&pid| pid > 1) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 100 1000 25 184467 1";
        let stat = parse_stat(42, line).unwrap();
        assert_eq!(stat.process_group, 42);
        assert_eq!(stat.rss_bytes, 25 * page_size());
        assert!(!stat.zombie);
        let own = proc_stat(std::process::id() as i32).unwrap();
        assert!(own.rss_bytes > 0);
        assert!(is_alive(own.pid));
    }
}
