//! The subscription manager: one task that owns this node's per-user subscriptions, so that
//! SUBSCRIBE and UNSUBSCRIBE for a user reach Redis in the order the user's sockets arrived and
//! left, and a connect storm costs one SUBSCRIBE command per batch, not one per user.

use std::collections::{HashMap, HashSet};

use tokio::sync::{mpsc, oneshot};

use crate::{
    metrics::Metrics,
    store::redis::{ChannelMessage, PubSub},
};

/// A change of the set of users this node holds.
pub enum Change {
    /// The user's first socket arrived: subscribe, then answer (once Redis confirmed, or
    /// refused and the channel is left to the health check).
    Hold(String, oneshot::Sender<()>),
    /// The user's last socket left.
    Release(String),
}

/// How many changes one batch takes at most.
const BATCH: usize = 1024;

/// Applies `changes` until every sender is gone, each user on its channel `channel_of(user)`;
/// messages of subscribed channels go to `to`.
pub async fn manage(
    pubsub: PubSub,
    to: mpsc::Sender<ChannelMessage>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    metrics: Metrics,
    channel_of: fn(&str) -> String,
) {
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut batch = Vec::with_capacity(BATCH);
    while changes.recv_many(&mut batch, BATCH).await > 0 {
        // The last change of each user in the batch is the one that holds.
        let mut wanted: HashMap<String, bool> = HashMap::new();
        let mut waiting = Vec::new();
        for change in batch.drain(..) {
            match change {
                Change::Hold(user, reply) => {
                    wanted.insert(user, true);
                    waiting.push(reply);
                }
                Change::Release(user) => {
                    wanted.insert(user, false);
                }
            }
        }
        let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
        for (user, held) in wanted {
            let channel = channel_of(&user);
            match (held, subscribed.contains(&channel)) {
                (true, false) => subscribe.push(channel),
                (false, true) => unsubscribe.push(channel),
                _ => {}
            }
        }

        // Subscribed or not, the channels are held from now on: a refused SUBSCRIBE leaves them
        // wanted, and the pub/sub connection's health check subscribes them again until Redis
        // takes them. So the sockets that wait are let in either way, and a socket of the same
        // user that arrived meanwhile (answered at once) is not left deaf for good.
        if let Err(err) = pubsub.subscribe(&subscribe, &to).await {
            metrics.adapter_error("subscribe", &err);
            tracing::warn!(%err, "cannot subscribe to users' channels yet; retrying");
        }
        subscribed.extend(subscribe);
        for reply in waiting {
            // The socket may have gone meanwhile: nobody to tell.
            let _ = reply.send(());
        }
        // Given up whatever Redis answers: the channels are unwanted already, so a refused
        // UNSUBSCRIBE only leaves this node receiving, and dropping, those users' events; and
        // the user's next first socket here subscribes (and wants) its channel again, where
        // keeping it would skip that and leave the socket deaf.
        if let Err(err) = pubsub.unsubscribe(&unsubscribe).await {
            metrics.adapter_error("unsubscribe", &err);
        }
        for channel in &unsubscribe {
            subscribed.remove(channel);
        }
    }
}
