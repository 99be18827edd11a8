//! The adapter's driver: socketioxide-redis's `Driver` on the node's pub/sub connection.
//!
//! socketioxide-redis's stock drivers hold a connection that, once Redis goes away, neither
//! reconnects nor subscribes again (standalone), or may not resubscribe (cluster), so
//! cross-node delivery stays broken until the node restarts. [`PubSub`] reconnects, and checks
//! twice a second that Redis holds every subscription the node needs, subscribing again if not.

use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

use crate::store::redis::{PubSub, keys};

#[derive(Clone)]
pub struct PubSubDriver(PubSub);

impl PubSubDriver {
    pub fn new(pubsub: PubSub) -> Self {
        Self(pubsub)
    }
}

impl Driver for PubSubDriver {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.0.publish(&chan, &val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        if chan == keys::EMITTER_REQUEST_CHANNEL {
            // The Socket.IO emitter's JSON requests share this channel (on a standalone Redis
            // they reach this subscription too): they are for `crate::emitter`, and the
            // adapter, which reads msgpack only, would log each one as an error.
            let (all, mut received) = mpsc::channel::<ChanItem>(size);
            self.0.subscribe(&[chan], &all).await?;
            tokio::spawn(async move {
                while let Some(item) = received.recv().await {
                    if item.1.first() == Some(&b'{') {
                        continue;
                    }
                    if tx.send(item).await.is_err() {
                        break;
                    }
                }
            });
        } else {
            self.0.subscribe(&[chan], &tx).await?;
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.0.unsubscribe(&[chan]).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        self.0.subscribers(chan).await
    }
}
