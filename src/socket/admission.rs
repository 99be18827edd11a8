//! Who may connect to this node, before any Redis work: a cap on the node's connections
//! (`MAX_CONNECTIONS`) and a limit on the sessions one client address may create
//! (`NEW_SESSIONS_PER_MINUTE`, `NEW_SESSIONS_BURST`).

use std::{net::IpAddr, sync::Arc, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    connections: Arc<Semaphore>,
    new_sessions: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// A connection's place on this node. Kept in the socket's extensions, so that it is given
/// back when the socket is dropped, however the socket ends (a disconnect, a handshake that
/// fails later on, a transport that closes before any handler runs).
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

impl Admission {
    pub fn new(max_connections: usize, new_sessions: Quota) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(max_connections)),
            new_sessions: Arc::new(RateLimiter::keyed(new_sessions)),
        }
    }

    /// A place for one more connection, unless the node holds as many as it may.
    /// Counted when the handshake starts, so a burst of handshakes cannot overshoot the cap.
    pub fn connection_slot(&self) -> Option<ConnectionSlot> {
        let permit = self.connections.clone().try_acquire_owned().ok()?;
        Some(ConnectionSlot(Arc::new(permit)))
    }

    /// Whether the client counted under `key` may create one more session now; counts it if so.
    pub fn may_create_session(&self, key: IpAddr) -> bool {
        self.new_sessions.check_key(&key).is_ok()
    }

    /// Every `every`, forgets the addresses whose quota has refilled (governor's
    /// `retain_recent`): the limiter then holds the addresses that created a session within
    /// about one refill of the burst, not every address ever seen. `addresses` shows how many.
    pub fn spawn_forget(
        &self,
        every: Duration,
        addresses: IntGauge,
    ) -> tokio::task::JoinHandle<()> {
        let limiter = self.new_sessions.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
                addresses.set(i64::try_from(limiter.len()).unwrap_or(i64::MAX));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn quota(per_minute: u32, burst: u32) -> Quota {
        Quota::per_minute(NonZeroU32::new(per_minute).unwrap())
            .allow_burst(NonZeroU32::new(burst).unwrap())
    }

    #[test]
    fn each_address_gets_its_own_burst_of_new_sessions() {
        let admission = Admission::new(10, quota(1, 2));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());

        assert!(admission.may_create_session(a));
        assert!(admission.may_create_session(a));
        assert!(!admission.may_create_session(a));
        assert!(admission.may_create_session(b));
    }

    #[test]
    fn a_slot_is_given_back_when_its_last_holder_drops_it() {
        let admission = Admission::new(1, quota(1, 1));
        let slot = admission.connection_slot().expect("room for one");
        assert!(admission.connection_slot().is_none());

        let copy = slot.clone();
        drop(slot);
        assert!(
            admission.connection_slot().is_none(),
            "still held by a copy"
        );
        drop(copy);

        assert!(admission.connection_slot().is_some());
    }
}
