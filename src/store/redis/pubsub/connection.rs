//! One pub/sub connection, to a standalone Redis (perhaps found through Sentinel) or to a Redis
//! Cluster (sharded pub/sub), and the commands that differ between the two.

use std::{sync::Arc, time::Duration};

use futures_util::future::try_join_all;
use redis::{
    AsyncCommands, ErrorKind, IntoConnectionInfo, ProtocolVersion, PushInfo, RedisError,
    RedisResult, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo},
};

use super::{Flavor, routes::Routes};
use crate::store::redis::{RESPONSE_TIMEOUT, RedisTarget, sentinel::is_master};

/// How many commands the cluster connection retries on its own. Few: a command that fails is
/// the health check's signal (it repairs the connection), and each retry after a lost node
/// reconnects at once, so a dead cluster would otherwise be dialled in a tight loop.
const CLUSTER_RETRIES: u32 = 3;

#[derive(Clone)]
pub(super) enum Connection {
    Standalone(ConnectionManager),
    /// Sharded pub/sub: SSUBSCRIBE / SPUBLISH, each channel on the master that owns its slot.
    Cluster(ClusterConnection),
    /// The master Sentinel named when the connection was opened; `None` when none could be
    /// found then (the node started while no sentinel or master answered): every command fails
    /// until the health check replaces it. Each check also asks `ROLE`, so that a connection
    /// to a master demoted by a failover is replaced, not left subscribed on a replica that
    /// never hears what the other nodes publish on the new master.
    Sentinel(Option<ConnectionManager>),
}

impl Connection {
    /// Connects; messages arrive as RESP3 pushes, so the protocol is RESP3 whatever the URLs
    /// say. Pushes go to `routes`, tagged with `generation`.
    pub(super) async fn open(
        target: &RedisTarget,
        flavor: Flavor,
        routes: &Arc<Routes>,
        generation: u64,
    ) -> RedisResult<Self> {
        let on_push = {
            let routes = routes.clone();
            move |push: PushInfo| {
                routes.on_push(generation, push);
                Ok::<(), std::convert::Infallible>(())
            }
        };
        // The manager reconnects with backoff and re-issues the SUBSCRIBEs it recorded.
        let config = ConnectionManagerConfig::new()
            .set_automatic_resubscription()
            .set_push_sender(on_push.clone())
            // Bounded, so that a hung Redis fails a publication in time; long, so that
            // a busy one does not (a dead one fails at once anyway).
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        Ok(match (target, flavor) {
            (RedisTarget::Standalone(url), _) => {
                let client = redis::Client::open(resp3(url)?)?;
                Self::Standalone(ConnectionManager::new_with_config(client, config).await?)
            }
            (RedisTarget::Sentinel(sentinel), _) => {
                let client = sentinel.master(ProtocolVersion::RESP3).await?;
                // A master that is gone fails the commands at once instead of holding them
                // while the manager dials it again with backoff (its checks would only time
                // out, for seconds): the health check then opens a connection on the master
                // the sentinels name now.
                let config = config.set_number_of_retries(0);
                let manager = ConnectionManager::new_with_config(client, config).await?;
                Self::Sentinel(Some(manager))
            }
            (RedisTarget::Cluster(nodes), Flavor::Classic) => {
                Self::Standalone(one_of(nodes, generation, config).await?)
            }
            (RedisTarget::Cluster(nodes), Flavor::Sharded) => {
                let nodes = nodes
                    .iter()
                    .map(|node| resp3(node))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = ClusterClient::builder(nodes)
                    .use_protocol(ProtocolVersion::RESP3)
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(CLUSTER_RETRIES)
                    .build()?;
                let config = ClusterConfig::new().set_push_sender(on_push);
                Self::Cluster(client.get_async_connection_with_config(config).await?)
            }
        })
    }

    /// Subscribes to `channels`; returns once Redis confirmed every one.
    pub(super) async fn subscribe(&self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Standalone(_) | Self::Sentinel(_) => self.single()?.subscribe(channels).await,
            Self::Cluster(conn) => {
                per_channel(
                    conn,
                    channels,
                    |mut c, ch| async move { c.ssubscribe(ch).await },
                )
                .await
            }
        }
    }

    pub(super) async fn unsubscribe(&self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Standalone(_) | Self::Sentinel(_) => self.single()?.unsubscribe(channels).await,
            Self::Cluster(conn) => {
                per_channel(conn, channels, |mut c, ch| async move {
                    c.sunsubscribe(ch).await
                })
                .await
            }
        }
    }

    pub(super) async fn publish(&self, channel: &str, payload: &[u8]) -> RedisResult<()> {
        match self {
            Self::Standalone(_) | Self::Sentinel(_) => {
                self.single()?.publish(channel, payload).await
            }
            Self::Cluster(conn) => conn.clone().spublish(channel, payload).await,
        }
    }

    /// How many nodes subscribe to `channel`.
    pub(super) async fn subscribers(&self, channel: &str) -> RedisResult<u16> {
        let mut numsub = redis::cmd("PUBSUB");
        let (_, count): (String, u16) = match self {
            Self::Standalone(_) | Self::Sentinel(_) => {
                numsub.arg("NUMSUB").arg(channel);
                numsub.query_async(&mut self.single()?).await?
            }
            Self::Cluster(conn) => {
                numsub.arg("SHARDNUMSUB").arg(channel);
                numsub.query_async(&mut conn.clone()).await?
            }
        };
        Ok(count)
    }

    /// How many channels Redis has this connection subscribed to, by `CLIENT INFO` on the
    /// connection itself: on a cluster, the sum over every master (as the connection knows
    /// them) of its connection's sharded subscriptions there. Fails if any master fails to
    /// answer.
    pub(super) async fn subscription_count(&self) -> RedisResult<usize> {
        let mut info = redis::cmd("CLIENT");
        info.arg("INFO");
        match self {
            Self::Standalone(_) | Self::Sentinel(_) => {
                let mut conn = self.single()?;
                if let Self::Sentinel(_) = self
                    && !is_master(&mut conn).await?
                {
                    return Err(unexpected("no longer the master (failover)"));
                }
                let text: String = info.query_async(&mut conn).await?;
                count_field(&text, "sub")
            }
            Self::Cluster(conn) => {
                let all_masters =
                    RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let answers = conn.clone().route_command(info, all_masters).await?;
                let Value::Map(answers) = answers else {
                    return Err(unexpected("CLIENT INFO from every master"));
                };
                let mut total = 0;
                for (_, answer) in answers {
                    let text: String = redis::from_redis_value(answer.extract_error()?)?;
                    total += count_field(&text, "ssub")?;
                }
                Ok(total)
            }
        }
    }
}

impl Connection {
    /// The connection to one Redis (standalone, or the master Sentinel named).
    fn single(&self) -> RedisResult<ConnectionManager> {
        match self {
            Self::Standalone(conn) | Self::Sentinel(Some(conn)) => Ok(conn.clone()),
            Self::Sentinel(None) => Err(unexpected("no Redis master found through Sentinel")),
            Self::Cluster(_) => Err(unexpected("a cluster connection has no single node")),
        }
    }
}

/// A classic connection to one node of a cluster (a plain PUBLISH reaches the classic
/// subscribers of every node): the seeds in turn, from a different one for each `generation`,
/// so that a connection replaced because its node is gone moves to another.
async fn one_of(
    nodes: &[String],
    generation: u64,
    config: ConnectionManagerConfig,
) -> RedisResult<ConnectionManager> {
    // A node that is down is passed over at once rather than retried with backoff.
    let config = config.set_number_of_retries(0);
    let mut last = unexpected("no cluster node to connect to");
    let start = usize::try_from(generation).unwrap_or(0);
    for i in 0..nodes.len() {
        let node = &nodes[(start + i) % nodes.len()];
        let client = redis::Client::open(resp3(node)?)?;
        match ConnectionManager::new_with_config(client, config.clone()).await {
            Ok(conn) => return Ok(conn),
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// The value of `name=` in a `CLIENT INFO` line (`... sub=2 psub=0 ssub=1 ...`).
fn count_field(info: &str, name: &str) -> RedisResult<usize> {
    info.split_whitespace()
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| unexpected("CLIENT INFO without a subscription count"))
}

fn unexpected(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::UnexpectedReturnType, what))
}

fn resp3(url: &str) -> RedisResult<redis::ConnectionInfo> {
    let info = url.into_connection_info()?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(resp3))
}

/// Runs `call` once per channel, concurrently: on a cluster the channels of one call may sit on
/// different slots, and a sharded (un)subscribe must stay within one.
async fn per_channel<F, Fut>(
    conn: &ClusterConnection,
    channels: &[String],
    call: F,
) -> RedisResult<()>
where
    F: Fn(ClusterConnection, String) -> Fut,
    Fut: Future<Output = RedisResult<()>>,
{
    let calls = channels
        .iter()
        .map(|channel| call(conn.clone(), channel.clone()));
    try_join_all(calls).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::count_field;

    #[test]
    fn the_subscription_counts_are_read_from_client_info() {
        let info = "id=3 addr=127.0.0.1:35286 flags=N db=0 sub=2 psub=0 ssub=5 multi=-1 resp=3";
        assert_eq!(count_field(info, "sub").ok(), Some(2));
        assert_eq!(count_field(info, "ssub").ok(), Some(5));
        assert!(count_field("id=3 addr=x", "ssub").is_err());
    }
}
