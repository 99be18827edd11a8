//! The presence channel (`socket.io-presence#`, `all` scope): every node subscribes to it and
//! publishes `user connected` / `user disconnected` on it, in the routing envelope
//! `{originNode}|{event}|{JSON}` (PUBLISH on a standalone Redis, SPUBLISH on a cluster, through
//! the node's one pub/sub connection). Each node applies what it receives to its directory and
//! emits it to its own sockets; the origin did both before publishing, so it skips its echo.

use serde::Deserialize;
use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{sync::mpsc, task::JoinHandle};

use super::Directory;
use crate::{
    domain::UserId,
    metrics::Metrics,
    routing::{Envelope, PRESENCE_EVENTS, Received},
    store::redis::{ChannelMessage, PubSub, keys},
};

/// Presence events received from other nodes wait here while this node is busy (a connect
/// storm elsewhere); past it they are dropped, counted, and the next resync heals the
/// directory (the sockets miss the live event, as for any dropped live delivery).
const DELIVERY_BUFFER: usize = 65_536;

/// How many received events one pass handles before yielding.
const BATCH: usize = 256;

/// This node's end of the presence channel: what it publishes.
#[derive(Clone)]
pub struct PresenceChannel {
    pubsub: PubSub,
    node_id: String,
}

impl PresenceChannel {
    /// Subscribes to the channel (held through outages by the pub/sub connection); what other
    /// nodes publish comes out of the returned receiver, for [`spawn_delivery`].
    pub async fn subscribe(
        pubsub: PubSub,
        node_id: String,
    ) -> redis::RedisResult<(Self, mpsc::Receiver<ChannelMessage>)> {
        let (to_delivery, deliveries) = mpsc::channel(DELIVERY_BUFFER);
        // Refused (a node started while no sentinel names a master): the channel stays
        // wanted and the connection's health check subscribes it once Redis takes it;
        // meanwhile `/readyz` says why the node is not ready.
        if let Err(err) = pubsub
            .subscribe(&[keys::PRESENCE_CHANNEL.to_owned()], &to_delivery)
            .await
        {
            tracing::warn!(%err, "presence channel not subscribed yet; retried");
        }
        Ok((Self { pubsub, node_id }, deliveries))
    }

    /// Publishes `event` with `data` (JSON, encoded once for every node and every socket).
    pub async fn publish(&self, event: &str, data: &str) -> redis::RedisResult<()> {
        let payload = Envelope::encode(&self.node_id, event, data);
        self.pubsub.publish(keys::PRESENCE_CHANNEL, &payload).await
    }
}

/// Applies and delivers every event that comes out of `deliveries`, until the channel is gone.
pub fn spawn_delivery<A: Adapter>(
    io: SocketIo<A>,
    mut deliveries: mpsc::Receiver<ChannelMessage>,
    directory: Directory,
    node_id: String,
    metrics: Metrics,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while deliveries.recv_many(&mut batch, BATCH).await > 0 {
            for (_, payload) in batch.drain(..) {
                deliver(&io, &directory, &node_id, &metrics, &payload).await;
            }
        }
    })
}

/// The part of `user connected` the directory keeps.
#[derive(Deserialize)]
struct Online {
    #[serde(rename = "userID")]
    user_id: String,
    username: String,
}

async fn deliver<A: Adapter>(
    io: &SocketIo<A>,
    directory: &Directory,
    node_id: &str,
    metrics: &Metrics,
    payload: &[u8],
) {
    let (event, data) = match Envelope::receive(payload, node_id, PRESENCE_EVENTS) {
        // Its own publication: it applied and emitted it before publishing.
        Received::Echo => return,
        Received::Event(event, data) if apply(directory, event, data.get()).is_some() => {
            (event, data)
        }
        _ => {
            tracing::warn!("dropping a malformed message on the presence channel");
            metrics.live_dropped("malformed");
            return;
        }
    };
    // Encoded once for every local socket: socketioxide's local broadcast encodes the packet
    // once and hands the same bytes to each socket (socketioxide-core 0.20,
    // `CoreLocalAdapter::broadcast`).
    let sent = io.local().emit(event, data).await;
    metrics.emitted(event, sent);
}

/// Applies a received event to the directory; `None` if its data is not what the event
/// carries.
fn apply(directory: &Directory, event: &str, data: &str) -> Option<()> {
    if event == "user connected" {
        let online: Online = serde_json::from_str(data).ok()?;
        directory.connected(&UserId::from_stored(online.user_id), &online.username);
    } else {
        let user: String = serde_json::from_str(data).ok()?;
        directory.disconnected(&user);
    }
    Some(())
}
