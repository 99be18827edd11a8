//! Compatibility with `@socket.io/redis-emitter` (v5, key `socket.io`, namespace `/`): what a
//! backend publishes with it reaches this server's sockets as it reaches the reference's.
//! - `to(userID).emit(..)` arrives on `socket.io#/#{userID}#`, which a node subscribes while
//!   it holds a socket of that user (it follows [`UserRoutes`], as the users' own channels do);
//! - `emit(..)`, `except(..)`, several rooms at once, on `socket.io#/#`, which every node
//!   subscribes;
//! - `in(userID).disconnectSockets(..)`, a JSON request on `socket.io-request#/#`, where the
//!   Redis adapter also sends its own msgpack requests (told apart by the first byte, as the
//!   reference adapter does; on a standalone Redis the adapter's subscription hands them over).
//!
//! The emitter sends a plain PUBLISH, which a cluster's sharded subscriptions never receive:
//! these channels are on a classic connection of their own ([`PubSub::connect_classic`]).
//! What arrives is checked ([`packet`]); a malformed packet is counted and dropped.
//! [`EmitterPublisher`] sends the same packets, for the server's own API.

mod args;
mod packet;
mod publisher;
mod receive;
mod timestamp;

use tokio::sync::mpsc;

pub use packet::RESERVED_EVENTS;
pub use publisher::EmitterPublisher;
pub use receive::spawn as spawn_receiver;

use crate::{
    metrics::Metrics,
    routing::UserRoutes,
    store::redis::{ChannelMessage, PubSub, PubSubStatus, RedisTarget, keys},
};

/// Packets wait here while the node is busy; past it they are dropped (counted, as every
/// live delivery the pub/sub connection cannot hand on).
const BUFFER: usize = 4096;

/// The emitter's channels, subscribed; what arrives on them comes out of `messages`.
pub struct EmitterFeed {
    pub messages: mpsc::Receiver<ChannelMessage>,
    /// Whether the connection holds every channel it wants (for `/readyz`).
    pub status: PubSubStatus,
    /// On a standalone Redis, where the adapter's own subscription of the request channel
    /// receives the emitter's requests too: where it hands them (see
    /// [`crate::adapter::PubSubDriver`]). A second subscription there would make every node
    /// count twice in `PUBSUB NUMSUB`, by which the adapter counts the nodes it waits for.
    pub adapter_requests: Option<mpsc::Sender<ChannelMessage>>,
}

impl EmitterFeed {
    /// Opens the classic connection, subscribes the broadcast and request channels, and the
    /// room channel of every user `routes` holds, from now on. A refused SUBSCRIBE is retried
    /// by the connection's health check (meanwhile `/readyz` says 503).
    pub async fn subscribe(
        target: &RedisTarget,
        routes: &UserRoutes,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let pubsub = PubSub::connect_classic(target, metrics.clone()).await?;
        let (to, messages) = mpsc::channel(BUFFER);
        let mut shared = vec![keys::EMITTER_BROADCAST_CHANNEL.to_owned()];
        // The request channel: on a cluster the adapter's subscription is sharded and never
        // sees the emitter's plain PUBLISH, so it is subscribed here; on a standalone Redis
        // the adapter's subscription hands the emitter's requests over.
        let adapter_requests = match target {
            RedisTarget::Cluster(_) => {
                shared.push(keys::EMITTER_REQUEST_CHANNEL.to_owned());
                None
            }
            RedisTarget::Standalone(_) | RedisTarget::Sentinel(_) => Some(to.clone()),
        };
        if let Err(err) = pubsub.subscribe(&shared, &to).await {
            metrics.adapter_error("subscribe", &err);
        }
        let status = pubsub.status();
        routes.follow(pubsub, keys::emitter_room_channel, to);
        Ok(Self {
            messages,
            status,
            adapter_requests,
        })
    }
}
