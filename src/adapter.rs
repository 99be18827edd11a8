//! The Socket.IO Redis adapter: carries room broadcasts between nodes over Redis pub/sub, on
//! channels prefixed `socket.io` (so `redis-cli PSUBSCRIBE 'socket.io*'` shows the traffic).

use redis::{IntoConnectionInfo, ProtocolVersion};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr, drivers::redis::RedisDriver};

pub use socketioxide_redis::RedisAdapter;

/// Connects the adapter's pub/sub connection. The driver receives messages as RESP3 pushes,
/// so the protocol is forced to RESP3 whatever the URL says.
pub async fn redis(redis_url: &str) -> anyhow::Result<RedisAdapterCtr<RedisDriver>> {
    let info = redis_url.into_connection_info()?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(resp3))?;
    let config = RedisAdapterConfig::new().with_prefix("socket.io");
    Ok(RedisAdapterCtr::new_with_redis_config(&client, config).await?)
}
