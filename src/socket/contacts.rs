//! `USERS_SCOPE=contacts`: a user sees itself and its contacts, and only its contacts hear of
//! it. Presence events and the first-message introduction travel on each contact's
//! `socket.io-user#{userID}` channel (routed like private messages: only the nodes holding a
//! socket of a contact get them); this node emits to its own sockets itself and skips its echo.
//!
//! A user's contacts are its `privmsg:contacts:` set UNION the peers of its own history (read
//! at connect anyway): a history written by the Node.js server, before the sets existed, still
//! gives contacts, and those peers are added to the set so that they outlive the history.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use serde_json::value::RawValue;
use socketioxide::{adapter::Adapter, operators::BroadcastOperators};

use super::{
    AppState,
    payloads::{UserEvent, encode},
};
use crate::{
    domain::{Message, ReadView, Session},
    store::{StoreError, UserEntry},
};

/// The connecting user itself (first) and its contacts, and the user's history.
pub async fn load_users(
    session: &Session,
    state: &AppState,
) -> Result<(Arc<Vec<UserEntry>>, Vec<Message>), Arc<StoreError>> {
    let me = session.user_id.as_str();
    let (history, listed) = tokio::try_join!(
        state.messages.for_user(&session.user_id),
        state.contacts.listed(me, &state.users)
    )?;
    let known: BTreeSet<&str> = listed.iter().map(|(user, _)| user.as_str()).collect();
    let missing: Vec<&str> = history
        .iter()
        .map(|message| message.peer_of(me))
        .filter(|peer| *peer != me && !known.contains(peer))
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .collect();
    // Only for a history the set does not cover (written by the Node.js server): two round
    // trips more, once, since those peers are then in the set.
    let found = if missing.is_empty() {
        Vec::new()
    } else {
        let (_, found) = tokio::try_join!(
            state.contacts.keep(me, &missing),
            state.users.entries(&missing)
        )?;
        found
    };
    // A contact whose session expired is gone for good (a new session is a new user).
    let mut contacts: Vec<UserEntry> = listed
        .into_iter()
        .filter_map(|(_, entry)| entry)
        .chain(found.into_iter().flatten())
        .filter(|entry| entry.user_id.as_str() != me)
        .collect();
    contacts.sort_unstable_by(|a, b| a.user_id.as_str().cmp(b.user_id.as_str()));
    let mut users = Vec::with_capacity(contacts.len() + 1);
    users.push(UserEntry {
        user_id: session.user_id.clone(),
        username: session.username.as_str().to_owned(),
        connected: true,
    });
    users.extend(contacts);
    Ok((Arc::new(users), history))
}

/// Pairs each listed user with this user's conversation with them, oldest first.
pub fn users_event<'a>(
    users: &'a [UserEntry],
    history: &'a [Message],
    session: &Session,
    read: &ReadView<'a>,
) -> Vec<UserEvent<'a>> {
    let me = session.user_id.as_str();
    let mut by_peer: HashMap<&str, Vec<&Message>> = HashMap::new();
    for message in history {
        by_peer
            .entry(message.peer_of(me))
            .or_default()
            .push(message);
    }
    users
        .iter()
        .map(|user| UserEvent {
            user_id: &user.user_id,
            username: &user.username,
            connected: user.connected,
            messages: by_peer.remove(user.user_id.as_str()).unwrap_or_default(),
            unread: Some(read.unread(user.user_id.as_str())),
            read_up_to: (user.user_id != session.user_id)
                .then(|| read.read_up_to(user.user_id.as_str()))
                .flatten(),
        })
        .collect()
}

/// Tells the user's contacts, on every node, that this socket's user is online. `local` is
/// this node's emitter, without the arriving socket.
pub async fn announce_online<A: Adapter>(
    local: BroadcastOperators<A>,
    session: &Session,
    state: &AppState,
) {
    if let Some(contacts) = contacts_of(state, session.user_id.as_str()).await {
        announce_online_to(local, session, state, contacts).await;
    }
}

/// Tells `contacts` (on every node) that this socket's user is online: at connect, the
/// contacts its `users` just listed online. One listed offline needs no announcement: its
/// connect writes its presence to Redis before reading this user's, and this user's was
/// written before its `users` read that contact's, so whichever read came second saw the other
/// online, and a contact that connects later lists this user online itself.
pub async fn announce_online_to<A: Adapter>(
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

/// The contacts in `users` (as [`load_users`] returns them) that are online, for
/// [`announce_online_to`].
pub fn online(users: &[UserEntry], me: &str) -> Vec<String> {
    users
        .iter()
        .filter(|entry| entry.connected && entry.user_id.as_str() != me)
        .map(|entry| entry.user_id.as_str().to_owned())
        .collect()
}

/// Tells `user`'s contacts, on every node, that its last socket is gone. `local` is this
/// node's emitter (`socket.local()` or `io.local()`).
pub async fn announce_offline<A: Adapter>(
    local: BroadcastOperators<A>,
    state: &AppState,
    user: &str,
) {
    let Some(contacts) = contacts_of(state, user).await else {
        return;
    };
    if let Some(offline) = encode(&user) {
        announce(local, state, user, "user disconnected", &offline, contacts).await;
    }
}

/// `user`'s contact set, for an announcement; `None` (logged) when Redis cannot give it: the
/// contacts then miss this one until they next connect (their `users` reads presence from
/// Redis).
async fn contacts_of(state: &AppState, user: &str) -> Option<Vec<String>> {
    state
        .contacts
        .of(user)
        .await
        .inspect_err(|err| tracing::warn!(error = ?err, "cannot read a user's contacts"))
        .ok()
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
    let announcement = state.routes.announcement(event, &channels, data.get());
    if let Err(err) = state.announcer.publish(&announcement).await {
        state.metrics.adapter_error(event, &err);
    }
}
