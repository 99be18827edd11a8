//! The scope of the user directory (`USERS_SCOPE`, PROTOCOL.md "Scope of the user directory"):
//! who a joining user sees in `users`, who hears of its arrivals and departures, and what
//! storing a message also does. Chosen once, at start ([`Scope::new`]); the handlers call it
//! and never look at the setting.
//!
//! - [`all`]: everyone sees and hears of everyone, from each node's in-memory directory and
//!   the presence channel;
//! - [`contacts`]: a user sees itself and its contacts, only they hear of it, and the first
//!   message between two users makes them contacts.
//!
//! Handlers are generic over socketioxide's `Adapter`, so the scope is an enum rather than a
//! trait object; each method below only forwards to its variant's implementation.

pub mod all;
pub mod contacts;
mod users;

use std::time::Duration;

use socketioxide::{SocketIo, adapter::Adapter, extract::SocketRef, operators::BroadcastOperators};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    domain::{Refusal, Session, UserId},
    metrics::Metrics,
    settings::{Settings, UsersScope},
    socket::{AppState, send::Sender},
    store::{
        ContactStore, Record, RedisPool, Stored,
        redis::{ChannelMessage, PubSub},
    },
};

pub enum Scope {
    All(all::All),
    /// Boxed: its store is several times the size of the `all` scope's state.
    Contacts(Box<contacts::Contacts>),
}

/// What a scope receives from the other nodes on channels of its own, until its background
/// work starts ([`Scope::spawn`]): the presence channel's events in the `all` scope.
pub struct Inbox(Option<mpsc::Receiver<ChannelMessage>>);

impl Scope {
    /// The scope `settings` ask for, with its own state: the `all` scope's directory (still to
    /// load) and its presence channel, subscribed here; the `contacts` scope's contact sets.
    pub async fn new(
        settings: &Settings,
        pool: &RedisPool,
        pubsub: &PubSub,
        node_id: &str,
        metrics: &Metrics,
    ) -> redis::RedisResult<(Self, Inbox)> {
        Ok(match settings.users_scope {
            UsersScope::All => {
                let (all, events) = all::All::new(pubsub, node_id, metrics).await?;
                (Self::All(all), Inbox(Some(events)))
            }
            UsersScope::Contacts => {
                let store = ContactStore::new(pool.clone(), settings.contacts_ttl());
                let contacts = Box::new(contacts::Contacts::new(store));
                (Self::Contacts(contacts), Inbox(None))
            }
        })
    }

    /// Starts the scope's background work: in the `all` scope, the directory's first load and
    /// resync (every `resync_every`, and when pub/sub `resumed`) and the delivery of the
    /// presence channel's events; the `contacts` scope has none (a connect reads the contacts).
    pub fn spawn<A: Adapter>(
        &self,
        io: SocketIo<A>,
        inbox: Inbox,
        state: &AppState,
        resync_every: Duration,
        resumed: watch::Receiver<u64>,
    ) -> Vec<JoinHandle<()>> {
        match (self, inbox) {
            (Self::All(all), Inbox(Some(events))) => {
                all.spawn(io, events, state, resync_every, resumed)
            }
            _ => Vec::new(),
        }
    }

    /// Sends `users` to a socket that joined, and announces its user's arrival to whoever
    /// hears of it, in the order the scope needs. A socket that cannot have `users` is
    /// dropped (it would show nobody) and nothing is announced.
    pub async fn welcome<A: Adapter>(
        &self,
        socket: SocketRef<A>,
        session: &Session,
        state: &AppState,
    ) {
        match self {
            Self::All(all) => all.welcome(socket, session, state).await,
            Self::Contacts(contacts) => contacts.welcome(socket, session, state).await,
        }
    }

    /// Tells whoever hears of this user, on every node, that it is online: this node's sockets
    /// in `local` (the caller leaves out the arriving socket) and the other nodes'. Every
    /// arrival is announced here and nowhere else.
    pub async fn announce_online<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        session: &Session,
        state: &AppState,
    ) {
        match self {
            Self::All(all) => all.announce_online(local, session, state).await,
            Self::Contacts(contacts) => contacts.announce_online(local, session, state).await,
        }
    }

    /// Tells whoever hears of `user`, on this node (`local`) and the others, that it is
    /// offline: its last socket anywhere is gone. Every departure is announced here and
    /// nowhere else.
    pub async fn announce_offline<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        user: &UserId,
        state: &AppState,
    ) {
        match self {
            Self::All(all) => all.announce_offline(local, user, state).await,
            Self::Contacts(contacts) => contacts.announce_offline(local, user, state).await,
        }
    }

    /// Stores a message in both histories and publishes it to the other nodes holding a socket
    /// of either user (in the `contacts` scope, making the two users contacts, and introducing
    /// `sender` first to this node's sockets of the recipient, through `local`); the caller
    /// then emits it to this node's sockets. Needs no socket: the API sends through it too.
    /// Answers whether the recipient blocked the sender (then it is the sender's alone).
    pub async fn store_message<A: Adapter>(
        &self,
        local: &BroadcastOperators<A>,
        sender: &Sender<'_>,
        state: &AppState,
        record: &Record<'_>,
    ) -> Result<Kept, Refusal> {
        match self {
            Self::All(_) => store_and_publish(state, record).await,
            Self::Contacts(contacts) => contacts.store_message(local, sender, state, record).await,
        }
    }

    /// Forgets an erased user in this node's own state (the `all` scope's directory, so that
    /// `users` lists it no more here; the other nodes' directories drop it at their next
    /// resync). The `contacts` scope keeps nothing of a user in memory.
    pub fn forget(&self, user: &str) {
        if let Self::All(all) = self {
            all.forget(user);
        }
    }
}

/// Stores a message and publishes it, in one round trip, to the other nodes that hold a socket
/// of either user: every message in the `all` scope, a note to oneself in `contacts` (it makes
/// no contact). Stored before it is forwarded, so whatever a client is shown is also in the
/// history; a failed forward is not a lost message: the recipient finds it in its history.
async fn store_and_publish(state: &AppState, record: &Record<'_>) -> Result<Kept, Refusal> {
    let (from, to) = (record.from, record.to);
    let users: &[&str] = if from == to { &[to] } else { &[to, from] };
    let publication = state
        .publisher
        .publication("private message", users, record.json);
    let stored = state
        .messages
        .store_and_publish(record, &publication)
        .await
        .map_err(|err| {
            tracing::error!(error = ?err, "cannot store a message");
            Refusal::StorageUnavailable
        })?;
    Ok(Kept::from_stored(stored, state))
}

/// Where a stored message was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// In both histories (once for a note to oneself), for both users.
    Both,
    /// The recipient blocked the sender: in the sender's history only, for the sender alone.
    SenderOnly,
}

impl Kept {
    /// Counts what storing did, and says where the message was kept.
    fn from_stored(stored: Stored, state: &AppState) -> Self {
        match stored.published {
            Ok(()) => state.metrics.messages_delivered.inc(),
            Err(err) => state.metrics.adapter_error("private message", &err),
        }
        if stored.blocked {
            state.metrics.moderation("message_blocked");
            Self::SenderOnly
        } else {
            Self::Both
        }
    }
}
