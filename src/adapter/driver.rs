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
pub struct PubSubDriver {
    pubsub: PubSub,
    /// Where the Socket.IO emitter's JSON requests go, when they arrive on the adapter's own
    /// subscription of the request channel (a standalone Redis; see `crate::emitter`).
    emitter_requests: Option<mpsc::Sender<ChanItem>>,
}

impl PubSubDriver {
    pub fn new(pubsub: PubSub, emitter_requests: Option<mpsc::Sender<ChanItem>>) -> Self {
        Self {
            pubsub,
            emitter_requests,
        }
    }
}

impl Driver for PubSubDriver {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.pubsub.publish(&chan, &val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        if chan == keys::EMITTER_REQUEST_CHANNEL {
            // The Socket.IO emitter's JSON requests share this channel (on a standalone Redis
            // they reach this subscription too): they go to `crate::emitter`, not to the
            // adapter, which reads msgpack only and would log each one as an error.
            let (all, mut received) = mpsc::channel::<ChanItem>(size);
            subscribe_or_retry(&self.pubsub, chan, &all).await;
            let emitter = self.emitter_requests.clone();
            tokio::spawn(async move {
                while let Some(item) = received.recv().await {
                    if item.1.first() == Some(&b'{') {
                        // A full emitter queue drops it, as the pub/sub connection would.
                        if let Some(emitter) = &emitter {
                            let _ = emitter.try_send(item);
                        }
                    } else if tx.send(item).await.is_err() {
                        break;
                    }
                }
            });
        } else {
            subscribe_or_retry(&self.pubsub, chan, &tx).await;
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.pubsub.unsubscribe(&[chan]).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        self.pubsub.subscribers(chan).await
    }
}

/// Subscribes `chan` for the adapter. A refusal is not the adapter's error: the channel stays
/// wanted and the pub/sub health check subscribes it once Redis takes it (meanwhile `/readyz`
/// says the node misses cross-node traffic). Failing here would stop a node started while no
/// sentinel names a master from starting at all, where it should start and say why it is not
/// ready.
async fn subscribe_or_retry(pubsub: &PubSub, chan: String, to: &mpsc::Sender<ChanItem>) {
    if let Err(err) = pubsub.subscribe(std::slice::from_ref(&chan), to).await {
        tracing::warn!(%err, channel = %chan, "adapter channel not subscribed yet; retried");
    }
}
