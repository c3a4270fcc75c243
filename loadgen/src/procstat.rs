//! CPU and memory of a process and of the host, from `/proc` (Linux).

use std::time::Instant;

/// Cumulative CPU seconds (user + system) of `pid`, all threads.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; the fields after the last ')' don't.
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime); `after` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second())
}

/// Cumulative seconds the threads of `pid` were runnable but waiting for a CPU (the second
/// field of `/proc/<pid>/task/*/schedstat`): how much the process was starved of CPU, e.g. by
/// other processes on a shared machine. Threads that already exited are not counted.
pub fn cpu_wait_seconds(pid: u32) -> Option<f64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total_ns += text.split_whitespace().nth(1).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total_ns as f64 / 1e9)
}

/// (current, peak) resident set size in MiB.
pub fn rss_mb(pid: u32) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse::<f64>().ok()
    };
    Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

/// Busy CPU seconds of the whole host (every core, every process), so a run can tell how much
/// of the machine others (e.g. concurrent builds) took.
pub fn host_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = v.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, x)| x).sum::<u64>();
    Some(busy as f64 / clock_ticks_per_second())
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU use between two points in time, in cores (1.0 = one core busy all the time).
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    rm: Option<f64>,
    rm_wait: Option<f64>,
    generator: Option<f64>,
    generator_wait: Option<f64>,
    host: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct CpuUse {
    pub rm_cores: Option<f64>,
    /// Threads of the RM runnable but waiting for a CPU, in cores (0 on an idle machine).
    pub rm_waiting_for_cpu_cores: Option<f64>,
    pub generator_cores: Option<f64>,
    pub generator_waiting_for_cpu_cores: Option<f64>,
    pub host_busy_cores: Option<f64>,
}

impl CpuSample {
    pub fn take(rm_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            rm: rm_pid.and_then(cpu_seconds),
            rm_wait: rm_pid.and_then(cpu_wait_seconds),
            generator: cpu_seconds(std::process::id()),
            generator_wait: cpu_wait_seconds(std::process::id()),
            host: host_busy_seconds(),
        }
    }

    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-6);
        let rate = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / secs);
        CpuUse {
            rm_cores: rate(self.rm, earlier.rm),
            rm_waiting_for_cpu_cores: rate(self.rm_wait, earlier.rm_wait),
            generator_cores: rate(self.generator, earlier.generator),
            generator_waiting_for_cpu_cores: rate(self.generator_wait, earlier.generator_wait),
            host_busy_cores: rate(self.host, earlier.host),
        }
    }
}
