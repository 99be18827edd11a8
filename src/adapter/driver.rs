//! A pub/sub driver for the adapter that survives a Redis restart.
//!
//! socketioxide-redis's stock driver holds one multiplexed connection: once Redis goes away it
//! neither reconnects nor subscribes again, so cross-node delivery stays broken until the node
//! restarts. This driver sits on redis-rs's `ConnectionManager`, which reconnects with backoff
//! and re-issues the SUBSCRIBEs it recorded.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use redis::{
    AsyncCommands, PushInfo, PushKind, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

/// Where the messages of each subscribed channel go: the adapter's stream for that channel.
type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// How often an idle driver checks its connection. The manager reconnects only when a command
/// fails, and a node that only receives would otherwise never notice that Redis came back.
const HEARTBEAT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct ResilientDriver {
    conn: ConnectionManager,
    handlers: Handlers,
    _heartbeat: Arc<AbortOnDrop>,
}

/// Stops the heartbeat when the last clone of the driver is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ResilientDriver {
    /// Connects (the client must speak RESP3: messages arrive as pushes).
    pub async fn connect(client: redis::Client) -> redis::RedisResult<Self> {
        let handlers = Handlers::default();
        let routes = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                route(&routes, push);
                Ok::<(), std::convert::Infallible>(())
            })
            // Bounded, so that a hung Redis fails a broadcast in time; long, so that a busy one
            // does not (a dead one fails at once anyway).
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(crate::store::RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let heartbeat = tokio::spawn(heartbeat(conn.clone()));
        Ok(Self {
            conn,
            handlers,
            _heartbeat: Arc::new(AbortOnDrop(heartbeat)),
        })
    }
}

async fn heartbeat(mut conn: ConnectionManager) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = redis::cmd("PING").query_async::<()>(&mut conn).await {
            tracing::debug!(%err, "adapter connection down; the manager is reconnecting");
        }
    }
}

/// Hands a pub/sub message to its channel's stream. A full stream drops the message (with a
/// warning) rather than blocking the connection every channel shares.
fn route(handlers: &Handlers, push: PushInfo) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(Value::BulkString(chan)), Some(Value::BulkString(payload))) =
        (data.next(), data.next())
    else {
        return;
    };
    let Ok(chan) = String::from_utf8(chan) else {
        return;
    };
    let Ok(handlers) = handlers.read() else {
        return;
    };
    if let Some(tx) = handlers.get(&chan)
        && let Err(err) = tx.try_send((chan, payload))
    {
        tracing::warn!(%err, "adapter stream full, dropping a pub/sub message");
    }
}

impl Driver for ResilientDriver {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, ()>(chan, val).await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(chan.clone(), tx);
        }
        self.conn.clone().subscribe(chan).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.remove(&chan);
        }
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
