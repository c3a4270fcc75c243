//! The event queue: a calendar of one bucket per virtual millisecond over the next
//! [`HORIZON_MS`], and a binary heap for events further out.
//!
//! Events come out in (time, insertion order), exactly as a heap keyed by (time, sequence)
//! would give them, but a push or pop inside the horizon is an append or a read from a small
//! vector instead of a sift through a heap of every running container's completion (170k
//! entries at 10k nodes, where each heap operation costs cache misses).
//!
//! Order within a millisecond: an event pushed while its time was beyond the horizon sits in the
//! overflow heap; it moves into its bucket at the moment that millisecond enters the horizon,
//! before anything can be pushed into that bucket directly, and the heap releases its events in
//! sequence order. So every bucket holds its events in insertion order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use weft_common::Millis;

/// Buckets kept (a power of two). Most events (heartbeats, ticks, short tasks' ends) fall within
/// it; a short horizon keeps the buckets' memory warm, since each is reused every 16 s.
pub const HORIZON_MS: u64 = 1 << 14;

struct Far<E> {
    time: Millis,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<E> Eq for Far<E> {}
impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Far<E> {
    /// Reversed: the heap yields the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

pub struct EventQueue<E> {
    buckets: Vec<Vec<E>>,
    /// The time of the current bucket; nothing earlier is queued.
    base: Millis,
    /// Events of the current bucket already handed out.
    cursor: usize,
    far: BinaryHeap<Far<E>>,
    seq: u64,
    len: usize,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> Self {
        Self {
            buckets: (0..HORIZON_MS).map(|_| Vec::new()).collect(),
            base: 0,
            cursor: 0,
            far: BinaryHeap::new(),
            seq: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot(time: Millis) -> usize {
        (time & (HORIZON_MS - 1)) as usize
    }

    /// Queues `event` at `time`; a time in the past is treated as now.
    pub fn push(&mut self, time: Millis, event: E) {
        let time = time.max(self.base);
        self.len += 1;
        if time < self.base + HORIZON_MS {
            self.buckets[Self::slot(time)].push(event);
        } else {
            self.seq += 1;
            self.far.push(Far { time, seq: self.seq, event });
        }
    }

    /// Moves far events whose millisecond is now within the horizon into their buckets.
    fn admit_far(&mut self) {
        while let Some(next) = self.far.peek() {
            if next.time >= self.base + HORIZON_MS {
                break;
            }
            if let Some(Far { time, event, .. }) = self.far.pop() {
                self.buckets[Self::slot(time)].push(event);
            }
        }
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(Millis, E)> {
        if self.len == 0 {
            return None;
        }
        loop {
            let bucket = &mut self.buckets[Self::slot(self.base)];
            if let Some(event) = bucket.get(self.cursor).copied() {
                self.cursor += 1;
                self.len -= 1;
                return Some((self.base, event));
            }
            bucket.clear();
            self.cursor = 0;
            if self.len == self.far.len() {
                // Every bucket is empty: jump straight to the next far event.
                let next = self.far.peek().map_or(self.base + 1, |f| f.time);
                self.base = next;
            } else {
                self.base += 1;
            }
            self.admit_far();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Same order as a heap keyed by (time, insertion sequence), with pushes interleaved with
    /// pops at the current time, near it and far beyond the horizon.
    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut rng = Rng::new(5);
        let mut queue = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = 0;
        let mut out = Vec::new();
        let mut expected = Vec::new();
        let mut push = |queue: &mut EventQueue<u64>, reference: &mut BinaryHeap<Far<u64>>, t: u64| {
            seq += 1;
            queue.push(t, seq);
            reference.push(Far { time: t, seq, event: seq });
        };
        for _ in 0..2000 {
            push(&mut queue, &mut reference, rng.below(3 * HORIZON_MS));
        }
        for round in 0..20_000 {
            if round % 3 != 2 {
                let delay = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(100),
                    2 => rng.below(HORIZON_MS),
                    _ => HORIZON_MS + rng.below(4 * HORIZON_MS),
                };
                push(&mut queue, &mut reference, now + delay);
            } else if let Some((t, e)) = queue.pop() {
                now = t;
                out.push((t, e));
                let r = reference.pop().unwrap();
                expected.push((r.time, r.event));
            }
        }
        while let Some(item) = queue.pop() {
            out.push(item);
            let r = reference.pop().unwrap();
            expected.push((r.time, r.event));
        }
        assert!(reference.is_empty() && queue.is_empty());
        assert_eq!(out, expected);
        assert!(out.len() > 10_000);
    }
}
