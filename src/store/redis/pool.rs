//! The node's Redis connections: at most `REDIS_POOL_SIZE` multiplexed connections, opened by
//! deadpool-redis and shared round-robin by every caller.
//!
//! Why shared rather than checked out per command: a multiplexed connection serves any number
//! of concurrent requests (pipelined on the wire), while a deadpool checkout costs a round trip
//! of its own (deadpool checks a connection with UNWATCH + PING when handing it out). So each
//! slot checks one connection out of deadpool and keeps it until it fails; deadpool still
//! opens, limits and health-checks the connections, and the slot count is the pool size.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use deadpool_redis::{PoolConfig, Runtime, Timeouts, cluster};
use redis::AsyncConnectionConfig;

use super::{
    RESPONSE_TIMEOUT, RedisKind, RedisTarget,
    conn::{Conn, Lease, Slot},
    sentinel::{self, SentinelWatch},
};
use crate::{metrics::Metrics, store::StoreError};

#[derive(Clone)]
pub struct RedisPool {
    pool: Pool,
    metrics: Metrics,
    /// One slot per connection of the pool; a slot is emptied when its connection fails.
    slots: Arc<[Slot]>,
    next: Arc<AtomicUsize>,
    /// Through Sentinel: whether a sentinel answers (for `/readyz`).
    sentinels: Option<SentinelWatch>,
}

#[derive(Clone)]
enum Pool {
    Standalone(deadpool_redis::Pool),
    Cluster(cluster::Pool),
    /// A standalone master found through Sentinel, looked up again for each new connection.
    Sentinel(sentinel::Pool),
}

impl RedisPool {
    /// Builds the pool; connections open lazily, so a node can start before Redis answers.
    /// Through Sentinel it also starts watching the sentinels, so it must be built on the
    /// runtime then.
    pub fn new(target: &RedisTarget, size: usize, metrics: Metrics) -> anyhow::Result<Self> {
        // Settings refuse 0; one slot at the least keeps `get` from dividing by zero anyway.
        let size = size.max(1);
        let mut limits = PoolConfig::new(size);
        // Without a wait timeout a request would queue forever behind a dead Redis.
        let limit = Some(Duration::from_secs(2));
        limits.timeouts = Timeouts {
            wait: limit,
            create: limit,
            recycle: limit,
        };
        let pool = match target {
            RedisTarget::Standalone(url) => {
                // redis-rs gives up on a reply after 500 ms by default. Under load that turns
                // writes Redis does perform into errors; only a hung Redis should time out.
                let connection = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let manager = deadpool_redis::Manager::new_with_config(url.as_str(), connection)?;
                Pool::Standalone(
                    deadpool_redis::Pool::builder(manager)
                        .config(limits)
                        .runtime(Runtime::Tokio1)
                        .build()?,
                )
            }
            RedisTarget::Cluster(urls) => {
                let mut config = cluster::Config::from_urls(urls.clone());
                config.pool = Some(limits);
                Pool::Cluster(config.create_pool(Some(Runtime::Tokio1))?)
            }
            RedisTarget::Sentinel(target) => {
                let manager = sentinel::Manager::new(target.clone(), sentinel::connection_config());
                Pool::Sentinel(
                    sentinel::Pool::builder(manager)
                        .config(limits)
                        .runtime(Runtime::Tokio1)
                        .build()?,
                )
            }
        };
        let sentinels = match target {
            RedisTarget::Sentinel(target) => Some(SentinelWatch::start(target)),
            _ => None,
        };
        Ok(Self {
            pool,
            sentinels,
            metrics,
            slots: Slot::family(size),
            next: Arc::default(),
        })
    }

    /// Whether it reaches one Redis or a Redis Cluster (keys on different slots may sit on
    /// different masters): for the stores to choose, once when built, between their two
    /// implementations of a verb.
    pub fn kind(&self) -> RedisKind {
        match self.pool {
            Pool::Standalone(_) | Pool::Sentinel(_) => RedisKind::Standalone,
            Pool::Cluster(_) => RedisKind::Cluster,
        }
    }

    /// Through Sentinel: whether a sentinel answers now.
    pub fn sentinels(&self) -> Option<&SentinelWatch> {
        self.sentinels.as_ref()
    }

    /// The metrics its connections time their commands in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A connection to send commands on: the next slot's, checked out of deadpool when the slot
    /// is empty (first use, or after its connection failed).
    pub async fn get(&self) -> Result<Conn, StoreError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[index];
        if let Some(inner) = slot.current() {
            return Ok(Conn::new(inner, self.metrics.clone(), slot.clone()));
        }
        let checkout = async {
            Ok::<_, StoreError>(match &self.pool {
                Pool::Standalone(pool) => Lease::Standalone(pool.get().await?),
                Pool::Cluster(pool) => Lease::Cluster(pool.get().await?),
                Pool::Sentinel(pool) => Lease::Sentinel(pool.get().await?),
            })
        };
        let inner = slot.get_or_fill(checkout).await?;
        Ok(Conn::new(inner, self.metrics.clone(), slot.clone()))
    }
}
