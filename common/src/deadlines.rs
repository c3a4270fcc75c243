//! A deadline queue: what is due when, for sans-IO state machines that are fed the time (the RM
//! core's `Tick`, the NodeManager's retention ledger), so a tick looks only at what is due
//! instead of scanning everything it keeps.
//!
//! Entries are hints: the owner checks the real state when an entry comes due and either acts or
//! queues the entry again at its real due time. So moving a deadline costs nothing until it
//! comes due, and each entry costs O(log n) once.

use std::collections::BTreeSet;

use crate::Millis;

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

    /// When the earliest entry comes due, if any.
    pub fn next_due(&self) -> Option<Millis> {
        self.queue.first().map(|(at, _)| *at)
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
        assert_eq!(d.next_due(), None);
        d.push(30, "c");
        d.push(10, "a");
        d.push(20, "b");
        assert_eq!(d.next_due(), Some(10));
        assert_eq!(d.pop_due(9), Vec::<&str>::new());
        assert_eq!(d.pop_due(20), vec!["a", "b"]);
        assert_eq!((d.len(), d.next_due()), (1, Some(30)));
        assert_eq!(d.pop_due(100), vec!["c"]);
        assert!(d.is_empty());
    }
}
