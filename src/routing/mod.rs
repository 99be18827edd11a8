//! Routing by user: a private message reaches only the nodes that hold a socket of a user it is
//! for. Each node subscribes to the pub/sub channel of every user it holds a socket of
//! (`socket.io-user#{userID}`, sharded pub/sub on a cluster, so channels spread over the
//! masters), and publishes a user's events on that user's channel. Presence broadcasts to
//! everyone (`user connected`, `user disconnected`) travel on the presence channel, in the same
//! envelope (see [`crate::directory`]); in the `contacts` scope, presence goes to each contact
//! on its own channel instead.
//!
//! The node that accepts a message delivers it to its own sockets itself, and skips its echo:
//! what is published, on which channels, and which of them may be skipped is [`publisher`]'s.

mod delivery;
pub mod publisher;
mod subscriptions;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
};

use tokio::sync::{mpsc, oneshot};

pub use delivery::spawn as spawn_delivery;
pub use publisher::{Envelope, PRESENCE_EVENTS, Publication, Publisher, Received};
use subscriptions::Change;

use crate::{
    metrics::Metrics,
    store::redis::{ChannelMessage, PubSub, keys},
};

/// Pub/sub messages received for this node's users wait here while the node is busy; past it,
/// live deliveries are dropped (counted; the messages are in the histories).
const DELIVERY_BUFFER: usize = 65_536;

/// Why a socket could not be routed to.
#[derive(Debug, thiserror::Error)]
#[error("cannot subscribe to the user's channel: {0}")]
pub struct RouteError(String);

#[derive(Clone)]
pub struct UserRoutes(Arc<Inner>);

struct Inner {
    node_id: String,
    metrics: Metrics,
    /// The sockets of each user on this node; a user is subscribed while it has one.
    local: Mutex<HashMap<String, HashSet<String>>>,
    changes: mpsc::UnboundedSender<Change>,
    /// Other subscription managers that follow the same users, each on channels of its own
    /// (the Socket.IO emitter's rooms, see [`UserRoutes::follow`]).
    followers: RwLock<Vec<mpsc::UnboundedSender<Change>>>,
}

impl UserRoutes {
    /// Starts the subscription manager on `pubsub`. What arrives on the users' channels comes
    /// out of the returned receiver, for [`spawn_delivery`].
    pub fn start(
        node_id: String,
        pubsub: PubSub,
        metrics: Metrics,
    ) -> (Self, mpsc::Receiver<ChannelMessage>) {
        let (to_delivery, deliveries) = mpsc::channel(DELIVERY_BUFFER);
        let (changes, pending) = mpsc::unbounded_channel();
        tokio::spawn(subscriptions::manage(
            pubsub,
            to_delivery,
            pending,
            metrics.clone(),
            keys::user_channel,
        ));
        let inner = Inner {
            node_id,
            metrics,
            local: Mutex::default(),
            changes,
            followers: RwLock::default(),
        };
        (Self(Arc::new(inner)), deliveries)
    }

    /// Subscribes `pubsub` to `channel_of(user)` for every user this node holds, from now on
    /// and for as long as it holds them (with the same batching and ordering as the users'
    /// own channels); messages go to `to`. A socket's arrival waits for this channel too, so
    /// that whatever is sent to its user once it is connected reaches it.
    pub fn follow(
        &self,
        pubsub: PubSub,
        channel_of: fn(&str) -> String,
        to: mpsc::Sender<ChannelMessage>,
    ) {
        let (changes, pending) = mpsc::unbounded_channel();
        tokio::spawn(subscriptions::manage(
            pubsub,
            to,
            pending,
            self.0.metrics.clone(),
            channel_of,
        ));
        // Under the lock, so that no arrival or departure slips between the users held now
        // and the changes to come.
        let Ok(local) = self.0.local.lock() else {
            return;
        };
        for user in local.keys() {
            let (reply, _) = oneshot::channel();
            let _ = changes.send(Change::Hold(user.clone(), reply));
        }
        if let Ok(mut followers) = self.0.followers.write() {
            followers.push(changes);
        }
    }

    pub fn node_id(&self) -> &str {
        &self.0.node_id
    }

    /// Records a socket of `user` on this node; returns once this node receives the user's
    /// events (at once unless it is the user's first socket here), or once Redis refused the
    /// subscription, which the pub/sub connection then retries until Redis takes it (as after
    /// an outage: the socket reads its history, and hears other nodes again once subscribed).
    /// Idempotent per socket.
    pub async fn arrived(&self, user: &str, socket: &str) -> Result<(), RouteError> {
        let (reply, subscribed) = oneshot::channel();
        let mut followed = Vec::new();
        {
            let Ok(mut local) = self.0.local.lock() else {
                return Err(RouteError("poisoned".into()));
            };
            let sockets = local.entry(user.to_owned()).or_default();
            let first = sockets.is_empty();
            if !sockets.insert(socket.to_owned()) {
                return Ok(());
            }
            self.count(&local, 1);
            if !first {
                return Ok(());
            }
            // Sent under the lock, so that the manager sees this user's changes in order.
            let _ = self.0.changes.send(Change::Hold(user.to_owned(), reply));
            if let Ok(followers) = self.0.followers.read() {
                for follower in followers.iter() {
                    let (reply, subscribed) = oneshot::channel();
                    let _ = follower.send(Change::Hold(user.to_owned(), reply));
                    followed.push(subscribed);
                }
            }
        }
        let stopped = |_| RouteError("the subscription manager stopped".into());
        subscribed.await.map_err(stopped)?;
        for subscribed in followed {
            subscribed.await.map_err(stopped)?;
        }
        Ok(())
    }

    /// Forgets a socket of `user`; the user's channel is dropped with its last socket here.
    /// Idempotent per socket.
    pub fn left(&self, user: &str, socket: &str) {
        let Ok(mut local) = self.0.local.lock() else {
            return;
        };
        let Some(sockets) = local.get_mut(user) else {
            return;
        };
        if !sockets.remove(socket) {
            return;
        }
        if sockets.is_empty() {
            local.remove(user);
            let _ = self.0.changes.send(Change::Release(user.to_owned()));
            if let Ok(followers) = self.0.followers.read() {
                for follower in followers.iter() {
                    let _ = follower.send(Change::Release(user.to_owned()));
                }
            }
        }
        self.count(&local, -1);
    }

    /// Whether this node holds a socket of `user` (one arriving included).
    pub fn holds(&self, user: &str) -> bool {
        self.0
            .local
            .lock()
            .is_ok_and(|local| local.contains_key(user))
    }

    /// Whether this node holds a socket of any of `users` other than `except` (the sending
    /// socket): if not, there is nothing to emit here, and the event need not be encoded for
    /// the node's sockets at all. Asked after the event is stored: a socket recorded later
    /// reads its history after that, so it finds the event there.
    pub fn others_here(&self, users: &[&str], except: &str) -> bool {
        self.0.local.lock().is_ok_and(|local| {
            users.iter().any(|user| {
                local
                    .get(*user)
                    .is_some_and(|sockets| sockets.iter().any(|socket| socket != except))
            })
        })
    }

    fn count(&self, local: &HashMap<String, HashSet<String>>, sockets: i64) {
        self.0.metrics.sockets.add(sockets);
        self.0.metrics.users_online.set(local.len() as i64);
    }
}
