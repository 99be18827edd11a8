//! The Socket.IO Redis adapter: carries room broadcasts between nodes over Redis pub/sub, on
//! channels prefixed `socket.io` (so `redis-cli PSUBSCRIBE 'socket.io*'` shows the traffic; on
//! a cluster, sharded pub/sub: `SSUBSCRIBE` to the channel names). One adapter type for both
//! kinds of Redis: the difference lives in the pub/sub connection under the driver.

mod driver;

use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

pub use driver::PubSubDriver;

use tokio::sync::mpsc;

use crate::store::redis::{ChannelMessage, PubSub};

/// The adapter, on a standalone Redis or a Redis Cluster.
pub type RedisAdapter<E> = CustomRedisAdapter<E, PubSubDriver>;

/// Broadcasts received from other nodes wait here while this node is busy; the default of 1,024
/// drops them under a burst (the messages are stored, but not delivered live).
const STREAM_BUFFER: usize = 65_536;

/// The adapter's constructor, on the node's pub/sub connection; the Socket.IO emitter's
/// requests that its subscription receives go to `emitter_requests`.
pub fn constructor(
    pubsub: PubSub,
    emitter_requests: Option<mpsc::Sender<ChannelMessage>>,
) -> RedisAdapterCtr<PubSubDriver> {
    let config = RedisAdapterConfig::new()
        .with_prefix("socket.io")
        .with_stream_buffer(STREAM_BUFFER);
    RedisAdapterCtr::new_with_driver(PubSubDriver::new(pubsub, emitter_requests), config)
}
