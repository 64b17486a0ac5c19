//! push-service: durable push notifications to webhooks.
//!
//! - [`queue`]: registered devices and the delivery queue, both append-only record logs
//!   in the data directory, fsync'd before a request is acknowledged; the queue log is
//!   compacted (rewritten atomically) at every start.
//! - [`worker`]: the background delivery loop: HTTP POST to each endpoint, retries with
//!   exponential backoff up to a maximum number of attempts.
//! - [`api`]: the HTTP/JSON routes.

pub mod api;
pub mod queue;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

/// The program's version: 1.1.0 with the `v1_1` feature, 1.0.0 without.
pub const VERSION: &str = if cfg!(feature = "v1_1") {
    "1.1.0"
} else {
    "1.0.0"
};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Common(#[from] im_common::Error),
    #[error("record {index} of `{path}` is not a valid entry")]
    BadRecord {
        path: PathBuf,
        index: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("field `{field}` {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per delivery, the first included, before it counts as failed.
    pub max_attempts: u32,
    /// Delay after the first failed attempt; doubles after each further one...
    pub min_delay: Duration,
    /// ...up to this cap.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, after `attempts` failed ones (1 or more).
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.min_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=9).map(|a| p.delay_after(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.delay_after(200), Duration::from_secs(60));
    }
}
