//! The node's pub/sub connection, on a standalone Redis or a Redis Cluster (sharded pub/sub),
//! that survives Redis restarts, failovers and slot migrations. Both users of pub/sub go
//! through it: the Socket.IO adapter (room broadcasts) and the per-user routing of private
//! messages.
//!
//! A second, classic connection ([`PubSub::connect_classic`]) receives what the Socket.IO
//! emitter publishes with a plain PUBLISH, which sharded subscriptions never see.
//!
//! The node keeps the list of channels it wants; a health check (see [`health`]) asks Redis
//! twice a second how many this node's connection holds, subscribes them again when some are
//! missing, and replaces a cluster connection that stays broken. [`PubSubStatus`] says whether
//! the node receives cross-node traffic right now (`/readyz`, the `pubsub_connected` gauge).

mod connection;
mod health;
mod routes;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use prometheus::{IntCounterVec, IntGauge};
use redis::RedisResult;
use tokio::sync::{mpsc, watch};

pub use health::PubSubStatus;

use self::{connection::Connection, routes::Routes};
use super::RedisTarget;
use crate::metrics::Metrics;

/// A message received on a channel: the channel's name and the payload.
pub type ChannelMessage = (String, Vec<u8>);

/// Which subscriptions a connection makes on a Redis Cluster (on a standalone Redis both are
/// plain SUBSCRIBEs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// SSUBSCRIBE on the master of each channel's slot: the node's own traffic.
    Sharded,
    /// SUBSCRIBE on one node, for what others send with a plain PUBLISH (the Socket.IO
    /// emitter), which every node of a cluster relays to its classic subscribers.
    Classic,
}

/// The figures one connection keeps.
struct Meters {
    /// 1 while the connection holds every wanted channel.
    connected: IntGauge,
    /// Repairs, by how.
    repairs: IntCounterVec,
}

#[derive(Clone)]
pub struct PubSub {
    shared: Arc<Shared>,
    _health: Arc<AbortOnDrop>,
}

struct Shared {
    target: RedisTarget,
    flavor: Flavor,
    /// The current connection; a cluster connection that stays broken is replaced.
    conn: RwLock<Connection>,
    routes: Arc<Routes>,
    /// The wanted channels Redis confirmed once: what the health check expects the connection
    /// to hold (a subscription still in flight is not expected yet).
    confirmed: Mutex<HashSet<String>>,
    /// Held while subscriptions change (subscribe, unsubscribe, repair, a new connection), so
    /// that a repair never subscribes again a channel being given up.
    changing: tokio::sync::Mutex<()>,
    /// Redis refused (or never answered) a SUBSCRIBE of wanted channels: the health check
    /// subscribes every wanted channel again, whatever the counts say, until Redis takes them.
    refused: AtomicBool,
    status: PubSubStatus,
    /// Counts the times the connection became whole again after an interruption.
    resumed: watch::Sender<u64>,
    repairs: IntCounterVec,
}

/// Stops the health check when the last clone of the connection is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PubSub {
    /// The node's own pub/sub connection: sharded on a cluster.
    pub async fn connect(target: &RedisTarget, metrics: Metrics) -> anyhow::Result<Self> {
        let meters = Meters {
            connected: metrics.pubsub_connected.clone(),
            repairs: metrics.pubsub_repairs.clone(),
        };
        Self::open(target, Flavor::Sharded, Routes::new(&metrics), meters).await
    }

    /// A connection with classic subscriptions whatever the Redis, for what others publish
    /// with a plain PUBLISH (the Socket.IO emitter); on a cluster, to one node, moved to
    /// another when that one stays unreachable.
    pub async fn connect_classic(target: &RedisTarget, metrics: Metrics) -> anyhow::Result<Self> {
        let meters = Meters {
            connected: metrics.emitter_pubsub_connected.clone(),
            repairs: metrics.emitter_pubsub_repairs.clone(),
        };
        Self::open(target, Flavor::Classic, Routes::emitter(&metrics), meters).await
    }

    async fn open(
        target: &RedisTarget,
        flavor: Flavor,
        routes: Routes,
        meters: Meters,
    ) -> anyhow::Result<Self> {
        let routes = Arc::new(routes);
        let conn = match Connection::open(target, flavor, &routes, routes.generation()).await {
            Ok(conn) => conn,
            // Started while no sentinel (or no master) answers: the node starts anyway, not
            // ready, and the health check connects once the sentinels name a master.
            Err(err) if matches!(target, RedisTarget::Sentinel(_)) => {
                tracing::warn!(%err, "no Redis master found through Sentinel yet");
                Connection::Sentinel(None)
            }
            Err(err) => return Err(err.into()),
        };
        let shared = Arc::new(Shared {
            target: target.clone(),
            flavor,
            conn: RwLock::new(conn),
            routes,
            confirmed: Mutex::default(),
            changing: tokio::sync::Mutex::new(()),
            refused: AtomicBool::new(false),
            status: PubSubStatus::new(meters.connected),
            resumed: watch::Sender::new(0),
            repairs: meters.repairs,
        });
        let health = tokio::spawn(health::watch(shared.clone()));
        Ok(Self {
            shared,
            _health: Arc::new(AbortOnDrop(health)),
        })
    }

    /// Whether this node receives cross-node traffic right now.
    pub fn status(&self) -> PubSubStatus {
        self.shared.status.clone()
    }

    /// Changes each time the connection holds every wanted channel again after an interruption
    /// (a lost connection, channels Redis dropped, a replaced cluster connection): what was
    /// published in between never arrived, so state kept fresh by messages must be read again.
    pub fn resumed(&self) -> watch::Receiver<u64> {
        self.shared.resumed.subscribe()
    }

    /// Subscribes to `channels`, whose messages go to `to`, until unsubscribed. Returns once
    /// Redis confirmed. A failed call leaves them wanted, as after an outage: the health check
    /// subscribes them again until Redis takes them (meanwhile `/readyz` says this node misses
    /// cross-node traffic), so that no socket of their users stays deaf for good, whichever of
    /// them asked first.
    pub async fn subscribe(
        &self,
        channels: &[String],
        to: &mpsc::Sender<ChannelMessage>,
    ) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        let _changing = self.shared.changing.lock().await;
        self.shared.routes.want(channels, to);
        if let Err(err) = self.shared.conn().subscribe(channels).await {
            self.shared.refused.store(true, Ordering::Release);
            self.shared.routes.alarm.notify_one();
            return Err(err);
        }
        if let Ok(mut confirmed) = self.shared.confirmed.lock() {
            confirmed.extend(channels.iter().cloned());
        }
        Ok(())
    }

    pub async fn unsubscribe(&self, channels: &[String]) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        let _changing = self.shared.changing.lock().await;
        self.shared.routes.unwant(channels);
        if let Ok(mut confirmed) = self.shared.confirmed.lock() {
            for channel in channels {
                confirmed.remove(channel);
            }
        }
        self.shared.conn().unsubscribe(channels).await
    }

    pub async fn publish(&self, channel: &str, payload: &[u8]) -> RedisResult<()> {
        self.shared.conn().publish(channel, payload).await
    }

    /// Whether this node receives `channel` right now: Redis confirmed the subscription, and
    /// the connection has held every wanted channel since its last check. A publisher that
    /// holds the channel and counts one subscriber knows that subscriber is itself.
    pub fn holds(&self, channel: &str) -> bool {
        self.shared.status.is_up()
            && self
                .shared
                .confirmed
                .lock()
                .is_ok_and(|confirmed| confirmed.contains(channel))
    }

    /// How many nodes subscribe to `channel`.
    pub async fn subscribers(&self, channel: &str) -> RedisResult<u16> {
        self.shared.conn().subscribers(channel).await
    }
}

impl Shared {
    /// The current connection (a cheap clone: commands on clones share it).
    fn conn(&self) -> Connection {
        match self.conn.read() {
            Ok(conn) => conn.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn confirmed_count(&self) -> usize {
        self.confirmed.lock().map_or(0, |confirmed| confirmed.len())
    }

    /// After every wanted channel was subscribed again: exactly those are confirmed, and none
    /// is left refused. Callers hold `changing`.
    fn confirm_only(&self, wanted: Vec<String>) {
        self.refused.store(false, Ordering::Release);
        if let Ok(mut confirmed) = self.confirmed.lock() {
            *confirmed = wanted.into_iter().collect();
        }
    }

    /// Whether a SUBSCRIBE was refused since every wanted channel was last subscribed.
    fn has_refused(&self) -> bool {
        self.refused.load(Ordering::Acquire)
    }

    /// On a cluster: a sharded connection is rebuilt on a fresh topology, a classic one on
    /// another node. Through Sentinel: on the master the sentinels name now.
    fn can_rebuild(&self) -> bool {
        matches!(
            self.target,
            RedisTarget::Cluster(_) | RedisTarget::Sentinel(_)
        )
    }

    /// Opens a new connection and puts it in place of the current one, which is dropped (its
    /// pushes are ignored from now on). The new one holds no subscription yet: the confirmed
    /// channels stay expected, so the next check finds them missing until they are subscribed
    /// again. Callers hold `changing`.
    async fn reconnect(&self) -> RedisResult<()> {
        let generation = self.routes.generation() + 1;
        let conn = Connection::open(&self.target, self.flavor, &self.routes, generation).await?;
        self.routes.switch_to(generation);
        let old = match self.conn.write() {
            Ok(mut current) => std::mem::replace(&mut *current, conn),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), conn),
        };
        drop(old);
        Ok(())
    }
}
