//! The node's pub/sub connection, on a standalone Redis or a Redis Cluster (sharded pub/sub),
//! that survives Redis restarts. Both users of pub/sub go through it: the Socket.IO adapter
//! (room broadcasts) and the per-user routing of private messages.
//!
//! Standalone: redis-rs's `ConnectionManager` reconnects with backoff and re-issues the
//! SUBSCRIBEs it recorded. Cluster: the cluster connection tracks SSUBSCRIBEs and re-issues them
//! on whichever master owns each channel's slot after a reconnect or a topology change. On both,
//! a heartbeat keeps an idle connection checked, because the connection only notices a dead
//! Redis when a command fails, and a node that only receives would otherwise never find out.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures_util::future::try_join_all;
use redis::{
    AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisResult, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};
use tokio::sync::mpsc;

use prometheus::IntCounter;

use super::{RESPONSE_TIMEOUT, RedisTarget, keys};
use crate::metrics::Metrics;

/// A message received on a channel: the channel's name and the payload.
pub type ChannelMessage = (String, Vec<u8>);

/// Where the messages of each subscribed channel go.
type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChannelMessage>>>>;

/// How often an idle connection is checked.
const HEARTBEAT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct PubSub {
    conn: Connection,
    handlers: Handlers,
    _heartbeat: Arc<AbortOnDrop>,
}

#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    /// Sharded pub/sub: SSUBSCRIBE / SPUBLISH, each channel on the master that owns its slot.
    Cluster(ClusterConnection),
}

/// Stops the heartbeat when the last clone of the connection is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PubSub {
    /// Connects; messages arrive as RESP3 pushes, so the protocol is RESP3 whatever the URLs say.
    pub async fn connect(target: &RedisTarget, metrics: Metrics) -> anyhow::Result<Self> {
        let handlers = Handlers::default();
        let routes = handlers.clone();
        let counters = Counters {
            user: metrics.cross_node_received.with_label_values(&["user"]),
            adapter: metrics.cross_node_received.with_label_values(&["adapter"]),
            dropped: metrics
                .live_dropped
                .with_label_values(&["pubsub_stream_full"]),
        };
        let on_push = move |push: PushInfo| {
            route(&routes, &counters, push);
            Ok::<(), std::convert::Infallible>(())
        };
        let conn = match target {
            RedisTarget::Standalone(url) => {
                let config = ConnectionManagerConfig::new()
                    .set_automatic_resubscription()
                    .set_push_sender(on_push)
                    // Bounded, so that a hung Redis fails a publication in time; long, so that a
                    // busy one does not (a dead one fails at once anyway).
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_max_delay(Duration::from_secs(1));
                let client = redis::Client::open(resp3(url)?)?;
                Connection::Standalone(ConnectionManager::new_with_config(client, config).await?)
            }
            RedisTarget::Cluster(nodes) => {
                let nodes = nodes
                    .iter()
                    .map(|node| resp3(node))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = ClusterClient::builder(nodes)
                    .use_protocol(ProtocolVersion::RESP3)
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(RESPONSE_TIMEOUT)
                    .build()?;
                let config = redis::cluster::ClusterConfig::new().set_push_sender(on_push);
                Connection::Cluster(client.get_async_connection_with_config(config).await?)
            }
        };
        let heartbeat = tokio::spawn(heartbeat(conn.clone()));
        Ok(Self {
            conn,
            handlers,
            _heartbeat: Arc::new(AbortOnDrop(heartbeat)),
        })
    }

    /// Subscribes to `channels`, whose messages go to `to`. Returns once Redis confirmed.
    pub async fn subscribe(
        &self,
        channels: &[String],
        to: &mpsc::Sender<ChannelMessage>,
    ) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        if let Ok(mut handlers) = self.handlers.write() {
            for channel in channels {
                handlers.insert(channel.clone(), to.clone());
            }
        }
        match &self.conn {
            Connection::Standalone(conn) => conn.clone().subscribe(channels).await,
            Connection::Cluster(conn) => {
                per_channel(
                    conn,
                    channels,
                    |mut c, ch| async move { c.ssubscribe(ch).await },
                )
                .await
            }
        }
    }

    pub async fn unsubscribe(&self, channels: &[String]) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        if let Ok(mut handlers) = self.handlers.write() {
            for channel in channels {
                handlers.remove(channel);
            }
        }
        match &self.conn {
            Connection::Standalone(conn) => conn.clone().unsubscribe(channels).await,
            Connection::Cluster(conn) => {
                per_channel(conn, channels, |mut c, ch| async move {
                    c.sunsubscribe(ch).await
                })
                .await
            }
        }
    }

    pub async fn publish(&self, channel: &str, payload: &[u8]) -> RedisResult<()> {
        match &self.conn {
            Connection::Standalone(conn) => conn.clone().publish(channel, payload).await,
            Connection::Cluster(conn) => conn.clone().spublish(channel, payload).await,
        }
    }

    /// How many nodes subscribe to `channel`.
    pub async fn subscribers(&self, channel: &str) -> RedisResult<u16> {
        let (_, count): (String, u16) = match &self.conn {
            Connection::Standalone(conn) => {
                redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(channel)
                    .query_async(&mut conn.clone())
                    .await?
            }
            Connection::Cluster(conn) => {
                redis::cmd("PUBSUB")
                    .arg("SHARDNUMSUB")
                    .arg(channel)
                    .query_async(&mut conn.clone())
                    .await?
            }
        };
        Ok(count)
    }
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

fn resp3(url: &str) -> RedisResult<redis::ConnectionInfo> {
    let info = url.into_connection_info()?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(resp3))
}

async fn heartbeat(conn: Connection) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ping = redis::cmd("PING");
        let result = match &conn {
            Connection::Standalone(conn) => ping.query_async::<()>(&mut conn.clone()).await,
            Connection::Cluster(conn) => ping.query_async::<()>(&mut conn.clone()).await,
        };
        if let Err(err) = result {
            tracing::debug!(%err, "pub/sub connection down; reconnecting");
        }
    }
}

/// The counters of every received message, resolved once (not per message).
struct Counters {
    user: IntCounter,
    adapter: IntCounter,
    dropped: IntCounter,
}

/// Hands a pub/sub message to its channel's stream. A full stream drops the message (counted)
/// rather than blocking the connection every channel shares: live delivery is at most once,
/// and the message is in the recipient's history.
fn route(handlers: &Handlers, counters: &Counters, push: PushInfo) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
        (data.next(), data.next())
    else {
        return;
    };
    let Ok(channel) = String::from_utf8(channel) else {
        return;
    };
    match channel.starts_with(keys::USER_CHANNEL_PREFIX) {
        true => counters.user.inc(),
        false => counters.adapter.inc(),
    }
    let Ok(handlers) = handlers.read() else {
        return;
    };
    if let Some(to) = handlers.get(&channel)
        && to.try_send((channel, payload)).is_err()
    {
        counters.dropped.inc();
    }
}
