//! One socket's life on this node: joining → live → left, and the one lock that orders them.
//!
//! The connect handler holds the lock from the socket's arrival until its arrival is
//! announced; the departure (disconnect handler, drain) takes it after, and only once. So a
//! socket that closes while its `users` listing is still loading is announced offline after
//! it was announced online, never before (which left observers showing a ghost online), and
//! the node's refresh never records again a socket that has left.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// Where a socket is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Recorded, or being recorded, and not yet announced.
    #[default]
    Joining,
    /// Announced; its departure not yet started.
    Live,
    /// Its departure was taken in hand (once).
    Left,
}

/// Kept in the socket's extensions.
#[derive(Clone, Default)]
pub struct Lifecycle(Arc<Mutex<Phase>>);

impl Lifecycle {
    /// The lock, for the connect handler to hold while the socket joins (taken before anything
    /// else can see the socket, so it is free).
    pub async fn joining(&self) -> OwnedMutexGuard<Phase> {
        self.0.clone().lock_owned().await
    }

    /// The departure: waits until the socket's arrival is announced, then hands the lock to
    /// the first caller only (`None` for a departure already taken in hand).
    pub async fn leaving(&self) -> Option<OwnedMutexGuard<Phase>> {
        let mut phase = self.0.clone().lock_owned().await;
        if *phase == Phase::Left {
            return None;
        }
        *phase = Phase::Left;
        Some(phase)
    }

    /// The lock if the socket is live (announced and not leaving), for the refresh.
    pub async fn if_live(&self) -> Option<OwnedMutexGuard<Phase>> {
        let phase = self.0.clone().lock_owned().await;
        (*phase == Phase::Live).then_some(phase)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_departure_waits_for_the_arrival_and_happens_once() {
        let lifecycle = Lifecycle::default();
        let mut joining = lifecycle.joining().await;
        let departure = tokio::spawn({
            let lifecycle = lifecycle.clone();
            async move { lifecycle.leaving().await.map(|phase| *phase) }
        });
        // The departure cannot proceed while the arrival holds the lock.
        tokio::task::yield_now().await;
        assert!(!departure.is_finished());
        *joining = Phase::Live;
        drop(joining);

        let departed = tokio::time::timeout(Duration::from_secs(5), departure)
            .await
            .expect("the departure proceeds once the arrival is announced")
            .expect("no panic");
        assert_eq!(departed, Some(Phase::Left));
        assert!(lifecycle.leaving().await.is_none(), "a second departure");
        assert!(
            lifecycle.if_live().await.is_none(),
            "a left socket is not live"
        );
    }

    #[tokio::test]
    async fn only_a_live_socket_is_recorded_again() {
        let lifecycle = Lifecycle::default();
        assert!(lifecycle.if_live().await.is_none(), "joining");
        *lifecycle.joining().await = Phase::Live;
        assert!(lifecycle.if_live().await.is_some());
    }
}
