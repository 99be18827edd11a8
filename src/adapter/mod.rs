//! The Socket.IO Redis adapter: carries room broadcasts between nodes over Redis pub/sub, on
//! channels prefixed `socket.io` (so `redis-cli PSUBSCRIBE 'socket.io*'` shows the traffic; on
//! a cluster, sharded pub/sub: `SSUBSCRIBE` to the channel names).

mod driver;

use redis::{IntoConnectionInfo, ProtocolVersion, cluster::ClusterClient};
use socketioxide_redis::{
    CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr, drivers::redis::ClusterDriver,
};

pub use driver::ResilientDriver;
pub use socketioxide_redis::ClusterAdapter;

/// The adapter on a standalone Redis, with the reconnecting driver.
pub type RedisAdapter<E> = CustomRedisAdapter<E, ResilientDriver>;

/// Broadcasts received from other nodes wait here while this node is busy; the default of 1,024
/// drops them under a burst (the messages are stored, but not delivered live).
const STREAM_BUFFER: usize = 65_536;

fn config() -> RedisAdapterConfig {
    RedisAdapterConfig::new()
        .with_prefix("socket.io")
        .with_stream_buffer(STREAM_BUFFER)
}

/// The drivers receive messages as RESP3 pushes, so the protocol is forced to RESP3 whatever
/// the URL says.
fn resp3(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    let info = url.into_connection_info()?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(resp3))
}

/// Connects the adapter's pub/sub connection to a standalone Redis.
pub async fn standalone(url: &str) -> anyhow::Result<RedisAdapterCtr<ResilientDriver>> {
    let client = redis::Client::open(resp3(url)?)?;
    let driver = ResilientDriver::connect(client).await?;
    Ok(RedisAdapterCtr::new_with_driver(driver, config()))
}

/// Connects the adapter's sharded pub/sub connection to a Redis Cluster.
pub async fn cluster(nodes: &[String]) -> anyhow::Result<RedisAdapterCtr<ClusterDriver>> {
    let nodes = nodes
        .iter()
        .map(|n| resp3(n))
        .collect::<Result<Vec<_>, _>>()?;
    let client = ClusterClient::builder(nodes)
        .use_protocol(ProtocolVersion::RESP3)
        .build()?;
    Ok(RedisAdapterCtr::new_with_cluster_config(&client, config()).await?)
}
