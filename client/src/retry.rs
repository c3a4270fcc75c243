//! How long and how often transient failures are retried.

use std::time::Duration;

/// How one call retries transient failures. Every Weft client starts from [`RetryPolicy::default`]
/// and changes only what its situation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Time one call may spend retrying transient failures before it fails with
    /// [`crate::ClientError::Timeout`]. It is checked after each full round over the addresses,
    /// so every address gets a try first: `Duration::ZERO` means exactly one round, for callers
    /// that pace their own retries.
    pub deadline: Duration,
    /// Pause after the first full round of failed addresses; it doubles each round.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Limit for a single HTTP exchange (a long-poll's wait is added on top).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            // Short, so a client finds a new active RM within half a second of a failover.
            max_backoff: Duration::from_millis(500),
            // A hung (e.g. paused) RM is given up on in this time, and the next address tried.
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Exponential backoff with "equal jitter": each pause is half the current step plus a random
/// part of the other half, so many clients failing together do not retry in lockstep.
pub struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(policy: &RetryPolicy) -> Self {
        Self { step: policy.initial_backoff, max: policy.max_backoff.max(policy.initial_backoff) }
    }

    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        let half = step / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=jitter_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_bounded_jitter() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::new(&policy);
        for step_ms in [100u64, 200, 400, 400, 400] {
            let delay = backoff.next_delay();
            assert!(delay >= Duration::from_millis(step_ms / 2), "{delay:?} below half of {step_ms}ms");
            assert!(delay <= Duration::from_millis(step_ms), "{delay:?} above {step_ms}ms");
        }
    }
}
