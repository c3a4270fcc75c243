//! Deadlines the `Tick` event acts on, so a tick looks only at what is due instead of scanning
//! every node, application and container (at 50k nodes and 2M containers a scan per tick would
//! cost more than the rest of the scheduler).
//!
//! Entries are hints: the heartbeat or state change that moves a deadline does not touch the
//! queue. When an entry comes due, the core checks the real state and either acts or queues the
//! entry again at its real due time. So each deadline costs O(log n) once per expiry period,
//! not per heartbeat.

use std::collections::BTreeSet;

use weft_common::Millis;

#[derive(Debug, Clone)]
pub struct Deadlines<K: Ord + Clone> {
    queue: BTreeSet<(Millis, K)>,
}

impl<K: Ord + Clone> Default for Deadlines<K> {
    fn default() -> Self {
        Self { queue: BTreeSet::new() }
    }
}

impl<K: Ord + Clone> Deadlines<K> {
    /// Something may be due for `key` at `at`.
    pub fn push(&mut self, at: Millis, key: K) {
        self.queue.insert((at, key));
    }

    /// Removes and returns every key due at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: Millis) -> Vec<K> {
        let mut due = Vec::new();
        while let Some(first) = self.queue.first()
            && first.0 <= now
        {
            if let Some((_, key)) = self.queue.pop_first() {
                due.push(key);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_in_time_order() {
        let mut d = Deadlines::default();
        d.push(30, "c");
        d.push(10, "a");
        d.push(20, "b");
        assert_eq!(d.pop_due(9), Vec::<&str>::new());
        assert_eq!(d.pop_due(20), vec!["a", "b"]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.pop_due(100), vec!["c"]);
        assert!(d.is_empty());
    }
}
