//! A log line throttle, for failures that repeat under churn or an outage.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How often an expected, repeated failure may write a log line.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Lets one log line through per [`LOG_EVERY`], counting the ones held back.
#[derive(Default)]
pub(super) struct Throttle {
    /// Milliseconds since `start` of the last line let through (0: none yet).
    last: AtomicU64,
    held_back: AtomicU64,
    start: OnceLock<Instant>,
}

impl Throttle {
    /// `Some(lines held back since the last one)` when a line may be written now.
    pub(super) fn ready(&self) -> Option<u64> {
        let start = *self.start.get_or_init(Instant::now);
        let now = u64::try_from(start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_millis() as u64;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_log_lets_one_line_through_per_interval_and_counts_the_rest() {
        let throttle = Throttle::default();
        let started = Instant::now()
            .checked_sub(3 * LOG_EVERY)
            .expect("the clock is past a few seconds");
        throttle.start.set(started).expect("not started yet");
        assert_eq!(throttle.ready(), Some(0));
        assert_eq!(throttle.ready(), None);
        assert_eq!(throttle.ready(), None);

        // As if the last line had been written one interval ago.
        let last = throttle.last.load(Ordering::Relaxed);
        let interval = LOG_EVERY.as_millis() as u64;
        throttle.last.store(last - interval, Ordering::Relaxed);
        assert_eq!(throttle.ready(), Some(2));
        assert_eq!(throttle.ready(), None);
    }
}
