//! The connection handler: record the socket, tell the user who they are and who is there,
//! tell everyone else the user is here.

use std::{collections::HashMap, sync::Arc, time::Instant};

use socketioxide::{
    adapter::Adapter,
    extract::{Extension, SocketRef, State},
};

use super::{
    AppState, contacts,
    payloads::{SessionEvent, UserEvent},
    presence, private_message,
    rate_limit::Bucket,
    search,
};
use crate::{
    domain::{Message, Session},
    settings::UsersScope,
    store::{StoreError, UserEntry},
};

pub async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    socket.extensions.insert(Bucket::full(state.rate_limit));
    socket.on("private message", private_message::on_private_message::<A>);
    socket.on("search users", search::on_search_users::<A>);
    socket.on_disconnect(presence::on_disconnect::<A>);
    socket.join(session.user_id.as_str().to_owned());

    if let Err(err) = presence::arrive(&socket, &session, &state).await {
        tracing::error!(error = ?err, "cannot save a session; dropping the socket");
        socket.disconnect().ok();
        return;
    }
    let written = Instant::now();
    // A socket that closed before its disconnect handler was in place would leave its presence
    // field behind; undo it here (the handler, if it also runs, finds nothing to remove).
    if !socket.connected() {
        presence::leave(&socket, &session, &state).await;
        return;
    }

    let event = SessionEvent {
        session_id: session.id.expose(),
        user_id: &session.user_id,
    };
    socket.emit("session", &event).ok();

    let loaded = match state.scope {
        UsersScope::All => load_users(&session, &state, written).await,
        UsersScope::Contacts => contacts::load_users(&session, &state).await,
    };
    match loaded {
        Ok((users, history)) => {
            socket
                .emit("users", &users_event(&users, &history, &session))
                .ok();
        }
        Err(err) => {
            tracing::error!(error = ?err, "cannot list users; dropping the socket");
            socket.disconnect().ok();
            return;
        }
    }

    presence::announce_online(&socket, &session, &state).await;
}

/// Every user (from a listing no older than this user's own session write) and this user's
/// history.
async fn load_users(
    session: &Session,
    state: &AppState,
    written: Instant,
) -> Result<(Arc<Vec<UserEntry>>, Vec<Message>), Arc<StoreError>> {
    let history = async {
        state
            .messages
            .for_user(&session.user_id)
            .await
            .map_err(Arc::new)
    };
    tokio::try_join!(state.listing.list_after(written), history)
}

/// Pairs each stored user with this user's conversation with them, oldest first.
fn users_event<'a>(
    users: &'a [UserEntry],
    history: &'a [Message],
    session: &Session,
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
        })
        .collect()
}
