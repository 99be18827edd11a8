//! `USERS_SCOPE=contacts`: a user sees itself and its contacts ([`users`]), and only its
//! contacts hear of it. Presence events and the first-message introduction travel on each
//! contact's `socket.io-user#{userID}` channel (routed like private messages: only the nodes
//! holding a socket of a contact get them); this node emits to its own sockets itself and skips
//! its echo.

mod users;

use serde_json::value::RawValue;
use socketioxide::{adapter::Adapter, extract::SocketRef, operators::BroadcastOperators};

use super::{Kept, users::refuse_users};
use crate::{
    domain::{Refusal, Session, UserId},
    socket::{
        AppState,
        payloads::{UserEvent, encode},
        send::Sender,
    },
    store::{ContactStore, Record},
};

pub struct Contacts {
    /// Who exchanged messages with whom.
    store: ContactStore,
}

impl Contacts {
    pub(super) fn new(store: ContactStore) -> Self {
        Self { store }
    }

    pub(super) async fn welcome<A: Adapter>(
        &self,
        socket: SocketRef<A>,
        session: &Session,
        state: &AppState,
    ) {
        // `users` first: a contact's `users` reads presence from Redis, written already, so
        // nothing depends on this order, and the announcement's publications (one per
        // contact) then do not queue ahead of this user's reads. It goes to the contacts
        // `users` listed online (see `announce_online_to`).
        let local = socket.broadcast().local();
        let (users, online) = match users::users_and_online(&self.store, session, state).await {
            Ok(listed) => listed,
            Err(err) => return refuse_users(socket, &err),
        };
        if socket.emit("users", &*users).is_ok() {
            self.announce_online_to(local, session, state, online).await;
        }
    }

    /// Tells the user's contacts, on every node, that this socket's user is online. `local` is
    /// this node's emitter, without the arriving socket.
    pub(super) async fn announce_online<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        session: &Session,
        state: &AppState,
    ) {
        if let Some(contacts) = self.contacts_of(session.user_id.as_str()).await {
            self.announce_online_to(local, session, state, contacts)
                .await;
        }
    }

    /// Tells `contacts` (on every node) that this socket's user is online: at connect, the
    /// contacts its `users` just listed online. One listed offline needs no announcement: its
    /// connect writes its presence to Redis before reading this user's, and this user's was
    /// written before its `users` read that contact's, so whichever read came second saw the
    /// other online, and a contact that connects later lists this user online itself.
    async fn announce_online_to<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        session: &Session,
        state: &AppState,
        contacts: Vec<String>,
    ) {
        let online = UserEvent::announced(&session.user_id, session.username.as_str(), true);
        if let Some(online) = encode(&online) {
            let user = session.user_id.as_str();
            announce(local, state, user, "user connected", &online, contacts).await;
        }
    }

    /// Tells `user`'s contacts, on every node, that its last socket is gone. `local` is this
    /// node's emitter (`socket.local()` or `io.local()`).
    pub(super) async fn announce_offline<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        user: &UserId,
        state: &AppState,
    ) {
        let user = user.as_str();
        let Some(contacts) = self.contacts_of(user).await else {
            return;
        };
        if let Some(offline) = encode(&user) {
            announce(local, state, user, "user disconnected", &offline, contacts).await;
        }
    }

    /// `user`'s contact set, for an announcement; `None` (logged) when Redis cannot give it:
    /// the contacts then miss this one until they next connect (their `users` reads presence
    /// from Redis).
    async fn contacts_of(&self, user: &str) -> Option<Vec<String>> {
        self.store
            .of(user)
            .await
            .inspect_err(|err| tracing::warn!(error = ?err, "cannot read a user's contacts"))
            .ok()
    }

    /// Stores a message between two different users, makes them contacts, and publishes it: a
    /// first message is preceded by the introduction of the sender to the recipient's sockets,
    /// here and on the other nodes (published first on the same channel). A note to oneself
    /// makes no contact and is stored as in the `all` scope.
    pub(super) async fn store_message<A: Adapter>(
        &self,
        local: &BroadcastOperators<A>,
        sender: &Sender<'_>,
        state: &AppState,
        record: &Record<'_>,
    ) -> Result<Kept, Refusal> {
        let (from, to) = (record.from, record.to);
        if from == to {
            return super::store_and_publish(state, record).await;
        }
        let sender = UserEvent::announced(sender.user_id, sender.username, sender.connected);
        let sender = encode(&sender).ok_or(Refusal::StorageUnavailable)?;
        let introduction = state
            .publisher
            .publication("user connected", &[to], sender.get());
        let message = state
            .publisher
            .publication("private message", &[to, from], record.json);
        let stored = state
            .messages
            .store_making_contacts(record, &message, &introduction)
            .await
            .map_err(|err| {
                tracing::error!(error = ?err, "cannot store a message");
                Refusal::StorageUnavailable
            })?;
        let introduced = stored.introduced;
        let kept = Kept::from_stored(stored, state);
        if introduced {
            let sent = local
                .clone()
                .to(to.to_owned())
                .emit("user connected", &*sender)
                .await;
            state.metrics.emitted("user connected", sent);
        }
        Ok(kept)
    }
}

async fn announce<A: Adapter>(
    local: BroadcastOperators<A>,
    state: &AppState,
    user: &str,
    event: &str,
    data: &RawValue,
    contacts: Vec<String>,
) {
    let contacts: Vec<String> = contacts.into_iter().filter(|c| c != user).collect();
    if contacts.is_empty() {
        return;
    }
    let sent = local.to(contacts.clone()).emit(event, data).await;
    state.metrics.emitted(event, sent);
    let channels: Vec<&str> = contacts.iter().map(String::as_str).collect();
    if let Err(err) = state.publisher.announce(event, &channels, data.get()).await {
        state.metrics.adapter_error(event, &err);
    }
}
