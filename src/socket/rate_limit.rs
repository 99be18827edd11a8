//! A token bucket per socket: a client may burst, but not sustain more than the configured
//! rate of `private message` events. Refused events cost nothing past this check.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

/// Rate and burst of one socket's bucket; a rate of 0 disables the limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Clone)]
pub struct Bucket(Arc<Mutex<State>>);

struct State {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(limit: RateLimit) -> Self {
        Self(Arc::new(Mutex::new(State {
            tokens: limit.burst,
            last: Instant::now(),
        })))
    }

    /// Takes one token if there is one.
    pub fn try_take(&self, limit: RateLimit) -> bool {
        if limit.per_second <= 0.0 {
            return true;
        }
        let Ok(mut state) = self.0.lock() else {
            return true;
        };
        let now = Instant::now();
        let refill = now.duration_since(state.last).as_secs_f64() * limit.per_second;
        state.tokens = (state.tokens + refill).min(limit.burst);
        state.last = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limit = RateLimit {
            per_second: 1.0,
            burst: 3.0,
        };
        let bucket = Bucket::full(limit);
        let passed = (0..10).filter(|_| bucket.try_take(limit)).count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn a_zero_rate_means_no_limit() {
        let limit = RateLimit {
            per_second: 0.0,
            burst: 0.0,
        };
        let bucket = Bucket::full(limit);
        assert!((0..1000).all(|_| bucket.try_take(limit)));
    }
}
