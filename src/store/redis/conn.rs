//! A multiplexed Redis connection, standalone or cluster, behind one type: the commands the
//! stores need that differ between the two (SCAN over every master, per-key fan-out), and a
//! timer on every command for the metrics.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::future::try_join_all;
use redis::{
    Arg, Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};

use crate::{metrics::Metrics, store::StoreError};

/// One place a SCAN runs: the standalone Redis, or one master of a cluster.
pub struct ScanRoute(Option<RoutingInfo>);

/// A multiplexed connection: cheap to clone, and concurrent requests on clones share one
/// socket, pipelined on the wire. Every command it sends is timed in the metrics.
#[derive(Clone)]
pub struct Conn {
    inner: Inner,
    metrics: Metrics,
    /// Where the connection came from, emptied when the connection fails.
    slot: Slot,
}

#[derive(Clone)]
pub(super) enum Inner {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// A connection checked out of deadpool for as long as it works: dropping the lease hands it
/// back, and deadpool's recycle check then discards it if it is broken.
pub(super) enum Lease {
    Standalone(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
    Sentinel(super::sentinel::Lease),
}

impl Lease {
    fn inner(&self) -> Inner {
        match self {
            Self::Standalone(conn) => Inner::Standalone((**conn).clone()),
            Self::Cluster(conn) => Inner::Cluster((**conn).clone()),
            Self::Sentinel(conn) => Inner::Standalone((**conn).clone()),
        }
    }
}

/// One connection of the pool, shared by every caller that draws it; emptied when it fails.
#[derive(Clone, Default)]
pub(super) struct Slot(Arc<SlotState>);

#[derive(Default)]
struct SlotState {
    /// The connection, and the count of lost connections of the pool when it was filled.
    current: Mutex<Option<(Lease, Inner, u64)>>,
    /// Held while the slot is being filled, so that callers drawing an empty slot wait for one
    /// checkout instead of each taking a connection out of deadpool: with as many slots as the
    /// pool has connections, those extra checkouts would wait on connections held by slots.
    filling: tokio::sync::Mutex<()>,
    /// Counts the connections of the pool found dropped (or on a Redis that is no longer the
    /// master), shared by every slot of the pool: a slot filled before the last such loss is
    /// filled again before use. When Redis dies or a failover demotes it, every connection to
    /// it is dead, and each would otherwise fail one caller's command before being replaced.
    lost: Arc<AtomicU64>,
}

impl Slot {
    /// `count` slots that are emptied together when one finds its connection lost.
    pub(super) fn family(count: usize) -> Arc<[Slot]> {
        let lost = Arc::new(AtomicU64::new(0));
        (0..count)
            .map(|_| {
                Slot(Arc::new(SlotState {
                    lost: lost.clone(),
                    ..SlotState::default()
                }))
            })
            .collect()
    }

    pub(super) fn current(&self) -> Option<Inner> {
        let slot = self.0.current.lock().ok()?;
        let lost = self.0.lost.load(Ordering::Acquire);
        match slot.as_ref() {
            Some((_, inner, filled)) if *filled >= lost => Some(inner.clone()),
            _ => None,
        }
    }

    /// The slot's connection, checked out with `checkout` when the slot is empty.
    pub(super) async fn get_or_fill<E>(
        &self,
        checkout: impl Future<Output = Result<Lease, E>>,
    ) -> Result<Inner, E> {
        let _filling = self.0.filling.lock().await;
        if let Some(inner) = self.current() {
            return Ok(inner);
        }
        // A stale connection goes back to deadpool (whose recycle check discards it) before
        // the checkout: the pool has no more connections than slots, so a slot holding it
        // while waiting for another would wait for good once every slot is stale.
        if let Ok(mut slot) = self.0.current.lock() {
            *slot = None;
        }
        let lease = checkout.await?;
        let inner = lease.inner();
        let filled = self.0.lost.load(Ordering::Acquire);
        if let Ok(mut slot) = self.0.current.lock() {
            *slot = Some((lease, inner.clone(), filled));
        }
        Ok(inner)
    }

    /// Empties this slot; with `lost`, the connection is gone, and so, most likely, are the
    /// pool's other ones to the same Redis: every slot is filled again before its next use.
    fn discard(&self, lost: bool) {
        if lost {
            self.0.lost.fetch_add(1, Ordering::AcqRel);
        }
        if let Ok(mut slot) = self.0.current.lock() {
            *slot = None;
        }
    }
}

impl Conn {
    pub(super) fn new(inner: Inner, metrics: Metrics, slot: Slot) -> Self {
        Self {
            inner,
            metrics,
            slot,
        }
    }

    /// Every key matching `pattern`, SCANning `count` at a time: on a cluster, on every master.
    pub async fn scan_keys(
        &mut self,
        pattern: &str,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for route in self.scan_routes().await? {
            let mut cursor: u64 = 0;
            loop {
                let (next, batch) = self.scan_page(&route, cursor, pattern, count).await?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }

    /// A walk of every key matching `pattern`, a SCAN page of `count` at a time (on a cluster,
    /// on every master), at most one page per `pace`: for the background walks of the whole
    /// keyspace, which must leave Redis to the users.
    pub async fn walk_keys(
        &mut self,
        pattern: &str,
        count: usize,
        pace: Duration,
    ) -> Result<KeyWalk, StoreError> {
        let mut routes = self.scan_routes().await?.into_iter();
        Ok(KeyWalk {
            conn: self.clone(),
            route: routes.next(),
            routes,
            cursor: 0,
            pattern: pattern.to_owned(),
            count,
            pacer: pacer(pace),
        })
    }

    /// Where a SCAN must run to see every key: this Redis, or each master of a cluster. For
    /// callers that walk the keys a page at a time ([`Conn::scan_page`]) instead of holding
    /// them all.
    pub async fn scan_routes(&mut self) -> Result<Vec<ScanRoute>, StoreError> {
        Ok(match &mut self.inner {
            Inner::Standalone(_) => vec![ScanRoute(None)],
            Inner::Cluster(conn) => masters(conn)
                .await?
                .into_iter()
                .map(|route| ScanRoute(Some(route)))
                .collect(),
        })
    }

    /// One SCAN step on `route` from `cursor`: the next cursor (0 when done) and the keys.
    pub async fn scan_page(
        &mut self,
        route: &ScanRoute,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let reply = match (&mut self.inner, &route.0) {
            (Inner::Cluster(conn), Some(route)) => conn.route_command(scan, route.clone()).await?,
            _ => scan.query_async::<Value>(self).await?,
        };
        Ok(redis::from_redis_value(reply)?)
    }

    /// Runs `cmd` on this Redis, or on each master of a cluster; answers each one's reply
    /// (for REDIS_WAIT_REPLICAS's watch of every master's replicas).
    pub async fn on_every_master(&mut self, cmd: Cmd) -> Result<Vec<Value>, StoreError> {
        let mut replies = Vec::new();
        for route in self.scan_routes().await? {
            let reply = match (&mut self.inner, &route.0) {
                (Inner::Cluster(conn), Some(route)) => {
                    conn.route_command(cmd.clone(), route.clone()).await?
                }
                _ => cmd.query_async::<Value>(self).await?,
            };
            replies.push(reply);
        }
        Ok(replies)
    }

    /// Runs independent single-key `cmds` in one round trip and returns their replies in
    /// order: one pipeline on a standalone Redis; on a cluster, concurrent commands each routed
    /// by its own key (a pipeline there must stay within one slot).
    pub async fn each<T: redis::FromRedisValue>(
        &self,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        if let Inner::Standalone(_) = self.inner {
            let mut pipe = redis::pipe();
            for cmd in cmds {
                pipe.add_command(cmd);
            }
            return Ok(pipe.query_async(&mut self.clone()).await?);
        }
        let calls = cmds.into_iter().map(|cmd| {
            let mut conn = self.clone();
            async move { cmd.query_async::<T>(&mut conn).await }
        });
        Ok(try_join_all(calls).await?)
    }
}

impl Conn {
    /// Runs `cmds`, which all touch keys of one slot (one history: its push, trim and
    /// expiry), as one pipeline: one request, to the master that owns the slot on a cluster.
    /// [`Conn::each`] would send a cluster one request per command. The first command Redis
    /// refuses fails the whole call, as with [`Conn::each`]. Answers every command's reply.
    pub async fn on_one_slot(&self, cmds: Vec<Cmd>) -> Result<Vec<Value>, StoreError> {
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd);
        }
        Ok(pipe.query_async(&mut self.clone()).await?)
    }

    /// Runs `steps` in their order, each step's commands touching keys of one slot, for writes
    /// whose order readers rely on; answers every command's reply, in order. One pipeline on a
    /// standalone Redis, which runs it in order. On a cluster the steps may sit on different
    /// masters, where no pipeline keeps their order: one request per step (a pipeline, or the
    /// command itself when it is alone), each sent once the one before answered.
    pub async fn in_order(&self, steps: Vec<Vec<Cmd>>) -> Result<Vec<Value>, StoreError> {
        if let Inner::Standalone(_) = self.inner {
            return self.on_one_slot(steps.concat()).await;
        }
        let mut replies = Vec::new();
        for step in steps {
            match <[Cmd; 1]>::try_from(step) {
                Ok([cmd]) => replies.push(cmd.query_async(&mut self.clone()).await?),
                Err(step) => replies.extend(self.on_one_slot(step).await?),
            }
        }
        Ok(replies)
    }
}

/// The address of every master of the cluster, as the cluster names them.
async fn masters(conn: &mut ClusterConnection) -> Result<Vec<RoutingInfo>, StoreError> {
    let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut masters: Vec<(String, u16)> = Vec::new();
    for range in slots {
        let Some(Value::Array(master)) = range.into_iter().nth(2) else {
            continue;
        };
        let mut fields = master.into_iter();
        let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
            continue;
        };
        let node = (
            redis::from_redis_value::<String>(host)?,
            redis::from_redis_value(port)?,
        );
        if !masters.contains(&node) {
            masters.push(node);
        }
    }
    Ok(masters
        .into_iter()
        .map(|(host, port)| {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port })
        })
        .collect())
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let verb = match cmd.args_iter().next() {
            Some(Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
            _ => "OTHER".to_owned(),
        };
        let slot = self.slot.clone();
        let call = match &mut self.inner {
            Inner::Standalone(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(conn) => conn.req_packed_command(cmd),
        };
        Box::pin(self.metrics.time_redis(verb, discard_if_broken(slot, call)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let slot = self.slot.clone();
        let call = match &mut self.inner {
            Inner::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        };
        Box::pin(
            self.metrics
                .time_redis("PIPELINE".to_owned(), discard_if_broken(slot, call)),
        )
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Standalone(conn) => conn.get_db(),
            Inner::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Runs `call`; when the connection itself failed (not a command error), or reaches a Redis
/// that is no longer the master (READONLY: demoted by a failover, and back as a replica),
/// empties its slot so that the next caller gets a fresh connection (through Sentinel, on the
/// new master).
async fn discard_if_broken<T>(
    slot: Slot,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    let result = call.await;
    // A cluster connection that lost every master answers `ClusterConnectionNotFound` until
    // redis-rs repairs it in the background, on its own backoff: after a whole-cluster outage
    // that was seen to last over 5 s past the cluster serving again (while the pub/sub
    // connection, replaced by us, was back). Discarded, the slot's next call opens a new one.
    if let Err(err) = &result {
        let lost = err.is_io_error()
            || err.is_connection_dropped()
            || err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly);
        if lost || err.is_timeout() || err.kind() == redis::ErrorKind::ClusterConnectionNotFound {
            slot.discard(lost);
        }
    }
    result
}

/// A pacer for a walk: its first tick at once, then one per `every` (later if a step is slow).
pub fn pacer(every: Duration) -> tokio::time::Interval {
    let mut pacer = tokio::time::interval(every);
    pacer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pacer
}

/// A paced walk of the keys matching a pattern ([`Conn::walk_keys`]).
pub struct KeyWalk {
    conn: Conn,
    /// Where the walk is (`None` once done), and where it goes after.
    route: Option<ScanRoute>,
    routes: std::vec::IntoIter<ScanRoute>,
    cursor: u64,
    pattern: String,
    count: usize,
    pacer: tokio::time::Interval,
}

impl KeyWalk {
    /// The next page of keys (perhaps empty: SCAN may return none for a step), `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        let Some(route) = &self.route else {
            return Ok(None);
        };
        self.pacer.tick().await;
        let (next, keys) = self
            .conn
            .scan_page(route, self.cursor, &self.pattern, self.count)
            .await?;
        if next == 0 {
            self.route = self.routes.next();
        }
        self.cursor = next;
        Ok(Some(keys))
    }
}
