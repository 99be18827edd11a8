//! One face for standalone Redis and Redis Cluster: a pool handing out multiplexed connections,
//! and a SCAN that visits every master. Stores are written once against this.

use std::time::Duration;

use deadpool_redis::{PoolConfig, Runtime, Timeouts, cluster};
use futures_util::future::try_join_all;
use redis::{
    Arg, Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};

use super::StoreError;
use crate::metrics::Metrics;

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
}

#[derive(Clone)]
enum Pool {
    Standalone(deadpool_redis::Pool),
    Cluster(cluster::Pool),
}

/// A multiplexed connection: cheap to clone, and concurrent requests on clones share one
/// socket, pipelined on the wire. Every command it sends is timed in the metrics.
#[derive(Clone)]
pub struct Conn {
    inner: Inner,
    metrics: Metrics,
}

#[derive(Clone)]
enum Inner {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
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
                let mut config = deadpool_redis::Config::from_url(url.as_str());
                config.pool = Some(limits);
                Pool::Standalone(config.create_pool(Some(Runtime::Tokio1))?)
            }
            RedisTarget::Cluster(urls) => {
                let mut config = cluster::Config::from_urls(urls.clone());
                config.pool = Some(limits);
                Pool::Cluster(config.create_pool(Some(Runtime::Tokio1))?)
            }
        };
        Ok(Self { pool, metrics })
    }

    pub async fn get(&self) -> Result<Conn, StoreError> {
        let inner = match &self.pool {
            Pool::Standalone(pool) => Inner::Standalone((*pool.get().await?).clone()),
            Pool::Cluster(pool) => Inner::Cluster((*pool.get().await?).clone()),
        };
        Ok(Conn {
            inner,
            metrics: self.metrics.clone(),
        })
    }
}

impl Conn {
    /// Every key matching `pattern`, SCANning `count` at a time: on a cluster, on every master.
    pub async fn scan_keys(
        &mut self,
        pattern: &str,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let routes = match &mut self.inner {
            Inner::Standalone(_) => vec![None],
            Inner::Cluster(conn) => masters(conn).await?.into_iter().map(Some).collect(),
        };
        let mut keys = Vec::new();
        for route in routes {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count);
                let reply = match (&mut self.inner, &route) {
                    (Inner::Cluster(conn), Some(route)) => {
                        conn.route_command(scan, route.clone()).await?
                    }
                    _ => scan.query_async::<Value>(self).await?,
                };
                let (next, batch): (u64, Vec<String>) = redis::from_redis_value(reply)?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }

    /// Runs `cmds` concurrently on clones of this connection; each is routed by its own key,
    /// so this is valid on a cluster where a MULTI or a multi-key pipeline would not be.
    pub async fn each<T: redis::FromRedisValue>(
        &self,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>, StoreError> {
        let calls = cmds.into_iter().map(|cmd| {
            let mut conn = self.clone();
            async move { cmd.query_async::<T>(&mut conn).await }
        });
        Ok(try_join_all(calls).await?)
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
        let call = match &mut self.inner {
            Inner::Standalone(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(conn) => conn.req_packed_command(cmd),
        };
        Box::pin(self.metrics.time_redis(verb, call))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let call = match &mut self.inner {
            Inner::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        };
        Box::pin(self.metrics.time_redis("PIPELINE".to_owned(), call))
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Standalone(conn) => conn.get_db(),
            Inner::Cluster(conn) => conn.get_db(),
        }
    }
}
