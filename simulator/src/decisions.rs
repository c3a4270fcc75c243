//! The decision log: one JSON object per line for every scheduling decision and the events
//! around it. Nothing in it depends on the machine or the wall clock, so the same scenario, seed
//! and inputs give the same bytes (the determinism tests compare them).
//!
//! | `ev` | fields |
//! |---|---|
//! | `app_accepted` | `app`, `queue`, `user` |
//! | `app_rejected` | `seq` (workload order), `queue` (as asked), `user`, `reason` |
//! | `alloc` | `app`, `container`, `node`, `memory_mb`, `vcores`, `am`, `queue` |
//! | `complete` | `container`, `exit` (0 done, -100 lost with its node, -102 preempted, -105 released by its AM, -106 killed by the RM, …) |
//! | `preempt_mark` | `container`, `queue` (the victim's) |
//! | `preempt_kill` | `container` |
//! | `node_lost` / `node_recovered` / `node_failed` | `node` |
//! | `app_finished` | `app`, `state` |
//!
//! Every line has `t`, the virtual time in ms. Allocations of task containers are written when
//! the AM receives them, stamped with the time the core allocated them, so `t` can be slightly
//! out of order between lines.

use std::fmt::Write as _;
use std::io::Write;

use weft_common::{ApplicationId, ContainerId, NodeId, Resource};

pub struct DecisionLog {
    out: Box<dyn Write>,
    line: String,
    lines: u64,
    error: Option<std::io::Error>,
}

/// JSON string contents: queue, user and reason text are the only free text in the log.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

impl DecisionLog {
    pub fn new(out: Box<dyn Write>) -> Self {
        Self { out, line: String::with_capacity(256), lines: 0, error: None }
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    fn start(&mut self, t: u64, ev: &str) {
        self.line.clear();
        let _ = write!(self.line, "{{\"t\":{t},\"ev\":\"{ev}\"");
    }

    fn str_field(&mut self, key: &str, value: &str) {
        let _ = write!(self.line, ",\"{key}\":\"");
        escape(value, &mut self.line);
        self.line.push('"');
    }

    fn display_field(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = write!(self.line, ",\"{key}\":\"{value}\"");
    }

    fn num_field(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = write!(self.line, ",\"{key}\":{value}");
    }

    fn end(&mut self) {
        self.line.push_str("}\n");
        self.lines += 1;
        if self.error.is_none()
            && let Err(e) = self.out.write_all(self.line.as_bytes())
        {
            self.error = Some(e);
        }
    }

    pub fn app_accepted(&mut self, t: u64, app: ApplicationId, queue: &str, user: &str) {
        self.start(t, "app_accepted");
        self.display_field("app", app);
        self.str_field("queue", queue);
        self.str_field("user", user);
        self.end();
    }

    pub fn app_rejected(&mut self, t: u64, seq: usize, queue: Option<&str>, user: &str, reason: &str) {
        self.start(t, "app_rejected");
        self.num_field("seq", seq);
        self.str_field("queue", queue.unwrap_or(""));
        self.str_field("user", user);
        self.str_field("reason", reason);
        self.end();
    }

    pub fn alloc(&mut self, t: u64, container: ContainerId, node: &NodeId, r: Resource, am: bool, queue: &str) {
        self.start(t, "alloc");
        self.display_field("app", container.app());
        self.display_field("container", container);
        self.display_field("node", node);
        self.num_field("memory_mb", r.memory_mb);
        self.num_field("vcores", r.vcores);
        self.num_field("am", am);
        self.str_field("queue", queue);
        self.end();
    }

    pub fn complete(&mut self, t: u64, container: ContainerId, exit: i32) {
        self.start(t, "complete");
        self.display_field("container", container);
        self.num_field("exit", exit);
        self.end();
    }

    pub fn preempt_mark(&mut self, t: u64, container: ContainerId, queue: &str) {
        self.start(t, "preempt_mark");
        self.display_field("container", container);
        self.str_field("queue", queue);
        self.end();
    }

    pub fn preempt_kill(&mut self, t: u64, container: ContainerId) {
        self.start(t, "preempt_kill");
        self.display_field("container", container);
        self.end();
    }

    pub fn node(&mut self, t: u64, ev: &str, node: &NodeId) {
        self.start(t, ev);
        self.display_field("node", node);
        self.end();
    }

    pub fn app_finished(&mut self, t: u64, app: ApplicationId, state: &str) {
        self.start(t, "app_finished");
        self.display_field("app", app);
        self.str_field("state", state);
        self.end();
    }

    /// Flushes; reports the first write error, if any happened.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}
