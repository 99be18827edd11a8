//! A token bucket per socket: a client may burst, but not sustain more than the configured
//! rate of `private message` and `search users` events. [`Metered`] takes the token before
//! the payload is deserialized, so a refused event costs nothing past this check, however
//! large its payload (up to MAX_PAYLOAD_BYTES).

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde::de::DeserializeOwned;
use socketioxide::{
    adapter::Adapter,
    extract::TryData,
    handler::{FromMessageParts, Value},
    socket::Socket,
};

/// Rate and burst of one socket's bucket; a rate of 0 disables the limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// One socket's bucket, in its extensions, with its rate: an extractor has no access to the
/// server's state.
#[derive(Clone)]
pub struct Bucket(Arc<Mutex<State>>, RateLimit);

struct State {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn full(limit: RateLimit) -> Self {
        let state = State {
            tokens: limit.burst,
            last: Instant::now(),
        };
        Self(Arc::new(Mutex::new(state)), limit)
    }

    /// Takes one token if there is one.
    pub fn try_take(&self) -> bool {
        let limit = self.1;
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

/// An event's payload, deserialized only if the socket's bucket had a token for it; used in
/// place of `TryData`, which would parse the payload before the handler could check the rate.
pub enum Metered<T> {
    /// Over the socket's rate: the payload was dropped unread.
    RateLimited,
    /// Within the rate: the payload (or why it did not parse), and its size in bytes.
    Allowed {
        payload: Result<T, socketioxide::ParserError>,
        bytes: usize,
    },
}

impl<T> Metered<T> {
    /// The payload if the event was within the rate (its size counted under `event`), `None`
    /// if it was over it.
    pub fn admit(
        self,
        metrics: &crate::metrics::Metrics,
        event: &str,
    ) -> Option<Result<T, socketioxide::ParserError>> {
        let Self::Allowed { payload, bytes } = self else {
            return None;
        };
        metrics
            .payload_bytes_decoded
            .with_label_values(&[event])
            .inc_by(bytes as u64);
        Some(payload)
    }
}

impl<A: Adapter, T: DeserializeOwned> FromMessageParts<A> for Metered<T> {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        value: &mut Value,
        ack: &Option<i64>,
    ) -> Result<Self, Infallible> {
        // A socket without a bucket (none is inserted before `on_connect`) is not limited.
        let allowed = socket
            .extensions
            .get::<Bucket>()
            .is_none_or(|bucket| bucket.try_take());
        if !allowed {
            return Ok(Self::RateLimited);
        }
        let bytes = value.len();
        let Ok(TryData(payload)) = TryData::<T>::from_message_parts(socket, value, ack);
        Ok(Self::Allowed { payload, bytes })
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
        let passed = (0..10).filter(|_| bucket.try_take()).count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn a_zero_rate_means_no_limit() {
        let limit = RateLimit {
            per_second: 0.0,
            burst: 0.0,
        };
        let bucket = Bucket::full(limit);
        assert!((0..1000).all(|_| bucket.try_take()));
    }
}
