//! The publisher: how an event for some users reaches the other nodes that hold a socket of
//! theirs. It owns the three things every publication shares, so that each is decided in one
//! place whatever publishes (a stored message, an introduction, typing, a read mark, a
//! contact's presence):
//! - the channels: one per user, `socket.io-user#{userID}` ([`keys::user_channel`]);
//! - the envelope: `{originNode}|{event}|{JSON}` ([`Envelope`]);
//! - the no-echo rule: the node that publishes has emitted to its own sockets already, so a
//!   channel only it would hear is skipped ([`Publisher::publication`] decides which channels
//!   that may be), and whatever still comes back to it is dropped on receipt
//!   ([`Envelope::receive`]).
//!
//! Its two Redis implementations sit beside it, one chosen at start from the Redis the node
//! talks to: [`standalone`] (PUBLISH, all channels in one round trip) and [`cluster`]
//! (SPUBLISH, one call per channel, each on its slot's master). Both run `publish.lua` for the
//! channels this node hears itself, and so does the standalone message log's script in the
//! call that stores the message (`store_messages.lua`), given the same two lists.

pub mod cluster;
mod envelope;
mod standalone;

pub use envelope::{Envelope, PRESENCE_EVENTS, ROUTED_EVENTS, Received};

use super::UserRoutes;
use crate::store::{
    RedisKind, RedisPool, StoreError,
    redis::{PubSub, keys},
};

/// One payload and the channels it goes on, already sorted by the no-echo rule.
#[derive(Clone, Debug, Default)]
pub struct Publication {
    pub payload: Vec<u8>,
    /// Published in any case: no socket of their users is on this node.
    pub channels: Vec<String>,
    /// Channels this node subscribes to itself (it emitted to those users' sockets here):
    /// published only when another client subscribes to them too, which Redis counts in the
    /// call that publishes, so that a subscriber elsewhere is never missed.
    pub unless_alone: Vec<String>,
}

impl Publication {
    /// The payload up to `data`, which it ends with (an envelope of the message's JSON): the
    /// message script gets only this and appends the JSON it stores, so that the JSON crosses
    /// the wire once (the whole payload was a third of each message's bytes in the call).
    pub fn head_before(&self, data: &str) -> Result<Vec<u8>, StoreError> {
        self.payload
            .strip_suffix(data.as_bytes())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| StoreError::Refused("the envelope does not carry the message".into()))
    }
}

/// Publishes events for users, on the Redis the node talks to.
#[derive(Clone)]
pub struct Publisher {
    routes: UserRoutes,
    pubsub: PubSub,
    how: How,
}

/// The Redis implementation, chosen once when built.
#[derive(Clone)]
enum How {
    Standalone(standalone::StandalonePublisher),
    Cluster(cluster::ClusterPublisher),
}

impl Publisher {
    /// The publisher for the Redis behind `pool` (its kind picks the implementation, once).
    pub fn new(routes: UserRoutes, pubsub: PubSub, pool: RedisPool) -> Self {
        let how = match pool.kind() {
            RedisKind::Standalone => How::Standalone(standalone::StandalonePublisher::new(pool)),
            RedisKind::Cluster => How::Cluster(cluster::ClusterPublisher::new(pool)),
        };
        Self {
            routes,
            pubsub,
            how,
        }
    }

    /// The publication of `event` with `data` (JSON) for `users`: the one place that decides
    /// which channels may be skipped as echoes. A user this node holds, with its channel's
    /// subscription confirmed and whole, goes in [`Publication::unless_alone`]; every other
    /// user's channel (one still being subscribed, or lost in an outage, included) is published
    /// on as it is.
    pub fn publication(&self, event: &str, users: &[&str], data: &str) -> Publication {
        let mut publication = Publication {
            payload: Envelope::encode(self.routes.node_id(), event, data),
            ..Publication::default()
        };
        for user in users {
            let channel = keys::user_channel(user);
            if self.routes.holds(user) && self.pubsub.holds(&channel) {
                publication.unless_alone.push(channel);
            } else {
                publication.channels.push(channel);
            }
        }
        publication
    }

    /// Publishes an event that follows no write of its own (typing, read marks, a contact's
    /// presence): what [`Publisher::publication`] decides, in one round trip.
    pub async fn announce(
        &self,
        event: &str,
        users: &[&str],
        data: &str,
    ) -> Result<(), StoreError> {
        let publication = self.publication(event, users, data);
        match &self.how {
            How::Standalone(publisher) => publisher.publish(&publication).await,
            How::Cluster(publisher) => publisher.publish(&publication).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_get_the_envelope_without_the_json_they_already_have() {
        let json = r#"{"content":"a|b","from":"x","to":"y"}"#;
        let message = Publication {
            payload: Envelope::encode("node1", "private message", json),
            ..Publication::default()
        };
        let head = message
            .head_before(json)
            .expect("an envelope of the message");
        assert_eq!(head, b"node1|private message|");
        assert_eq!([head.as_slice(), json.as_bytes()].concat(), message.payload);
        assert!(
            message.head_before(r#"{"content":"other"}"#).is_err(),
            "a payload that does not end with the message"
        );
    }
}
