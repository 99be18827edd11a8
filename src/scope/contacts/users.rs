//! `users` in the `contacts` scope: the user itself (first) and its contacts, each with its
//! conversation.
//!
//! A user's contacts are its `privmsg:contacts:` set UNION the peers of its own history (read
//! at connect anyway): a history written by the Node.js server, before the sets existed, still
//! gives contacts, and those peers are added to the set so that they outlive the history.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use serde_json::value::RawValue;

use crate::{
    domain::{Message, ReadView, Session},
    scope::users::{UsersError, on_connect_only},
    socket::{AppState, payloads::UserEvent},
    store::{ContactStore, StoreError, UserEntry},
};

/// `users`, encoded: this user and its contacts, with its history and read marks; and which
/// of those contacts are online.
pub(super) async fn users_and_online(
    contacts: &ContactStore,
    session: &Session,
    state: &AppState,
) -> Result<(Box<RawValue>, Vec<String>), UsersError> {
    let (loaded, marks, blocked) = tokio::join!(
        load_users(contacts, session, state),
        state.read_marks.of(&session.user_id),
        state.blocks.of(session.user_id.as_str()),
    );
    let ((users, history), marks, blocked) = (loaded?, marks?, blocked?);
    let read = ReadView::new(&marks, &history, session.user_id.as_str());
    let history = on_connect_only(history, session, state);
    let event = users_event(&users, &history, session, &read, &blocked);
    let online = online(&users, session.user_id.as_str());
    Ok((serde_json::value::to_raw_value(&event)?, online))
}

/// The connecting user itself (first) and its contacts, and the user's history.
async fn load_users(
    store: &ContactStore,
    session: &Session,
    state: &AppState,
) -> Result<(Arc<Vec<UserEntry>>, Vec<Message>), Arc<StoreError>> {
    let me = session.user_id.as_str();
    let (history, listed) = tokio::try_join!(
        state.messages.for_user(&session.user_id),
        store.listed(me, &state.users)
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
        let (_, found) = tokio::try_join!(store.keep(me, &missing), state.users.entries(&missing))?;
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
fn users_event<'a>(
    users: &'a [UserEntry],
    history: &'a [Message],
    session: &Session,
    read: &ReadView<'a>,
    blocked: &std::collections::HashSet<String>,
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
            blocked: blocked.contains(user.user_id.as_str()),
        })
        .collect()
}

/// The contacts in `users` (as [`load_users`] returns them) that are online: those its
/// arrival is announced to (see `Contacts::announce_online_to`).
fn online(users: &[UserEntry], me: &str) -> Vec<String> {
    users
        .iter()
        .filter(|entry| entry.connected && entry.user_id.as_str() != me)
        .map(|entry| entry.user_id.as_str().to_owned())
        .collect()
}
