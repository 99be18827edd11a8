//! One face for standalone Redis and Redis Cluster: a pool of multiplexed connections that
//! stores are written once against.
//!
//! A multiplexed connection serves any number of concurrent requests, so a store does not need
//! one of its own per call: checking one out of deadpool for every command would cost a
//! round trip each time (deadpool checks a connection with UNWATCH + PING when handing it
//! out). The pool keeps a few connections checked out and shares them, and goes back to
//! deadpool only for a connection that failed.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use deadpool_redis::{PoolConfig, Runtime, Timeouts, cluster};
use redis::AsyncConnectionConfig;

use super::{
    StoreError,
    conn::{Conn, Inner},
};
use crate::metrics::Metrics;

/// How long a command may wait for its reply before it counts as failed: long, because a
/// write that times out may still be performed, and a refusal must mean "not stored".
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the data lives: one Redis, or the seed nodes of a Redis Cluster.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    Standalone(String),
    Cluster(Vec<String>),
}

#[derive(Clone)]
pub struct RedisPool {
    pool: Pool,
    metrics: Metrics,
    /// Connections in use, shared round-robin; a slot is emptied when its connection fails.
    shared: Arc<Shared>,
}

struct Shared {
    slots: Vec<Mutex<Option<Inner>>>,
    next: AtomicUsize,
}

/// A slot of the shared connections, for a failing connection to empty its own.
#[derive(Clone)]
pub(super) struct Slot {
    shared: Arc<Shared>,
    index: usize,
}

impl Slot {
    pub(super) fn discard(&self) {
        if let Some(slot) = self.shared.slots.get(self.index)
            && let Ok(mut slot) = slot.lock()
        {
            *slot = None;
        }
    }
}

#[derive(Clone)]
enum Pool {
    Standalone(deadpool_redis::Pool),
    Cluster(cluster::Pool),
}

impl RedisPool {
    /// Builds the pool; connections open lazily, so a node can start before Redis answers.
    pub fn new(target: &RedisTarget, size: usize, metrics: Metrics) -> anyhow::Result<Self> {
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
        };
        let shared = Arc::new(Shared {
            slots: (0..size.clamp(1, 8)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        });
        Ok(Self {
            pool,
            metrics,
            shared,
        })
    }

    /// A connection to send commands on: one of the shared ones, opened from deadpool when its
    /// slot is empty.
    pub async fn get(&self) -> Result<Conn, StoreError> {
        let index = self.shared.next.fetch_add(1, Ordering::Relaxed) % self.shared.slots.len();
        let slot = Slot {
            shared: self.shared.clone(),
            index,
        };
        let cached = self.shared.slots[index].lock().ok().and_then(|s| s.clone());
        let inner = match cached {
            Some(inner) => inner,
            None => {
                let inner = match &self.pool {
                    Pool::Standalone(pool) => Inner::Standalone((*pool.get().await?).clone()),
                    Pool::Cluster(pool) => Inner::Cluster((*pool.get().await?).clone()),
                };
                if let Ok(mut cached) = self.shared.slots[index].lock() {
                    *cached = Some(inner.clone());
                }
                inner
            }
        };
        Ok(Conn::new(inner, self.metrics.clone(), slot))
    }
}
