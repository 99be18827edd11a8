//! The connection handler: record the socket, tell the user who they are, then who is there
//! and who hears of its arrival, as the directory's scope decides ([`crate::scope`]).

use std::sync::Arc;

use socketioxide::{
    adapter::Adapter,
    extract::{Extension, SocketRef, State},
};

use super::{
    AppState, block, change_message, expiry, fetch_messages,
    handshake::{Renamed, TokenExpires},
    lifecycle::{Lifecycle, Phase},
    messages_read,
    payloads::SessionEvent,
    presence, private_message,
    rate_limit::Bucket,
    search, typing,
};
use crate::domain::Session;

pub async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    socket.extensions.insert(Bucket::full(state.rate_limit));
    // Held until this socket's arrival is announced: its departure waits for it (see
    // `lifecycle`), so no observer hears of it online after it left.
    let lifecycle = Lifecycle::default();
    let mut phase = lifecycle.joining().await;
    socket.extensions.insert(lifecycle);
    socket.on("private message", private_message::on_private_message::<A>);
    socket.on("search users", search::on_search_users::<A>);
    socket.on("typing", typing::on_typing::<A>);
    socket.on("fetch messages", fetch_messages::on_fetch_messages::<A>);
    socket.on("messages read", messages_read::on_messages_read::<A>);
    socket.on("refresh token", expiry::on_refresh_token::<A>);
    socket.on("block user", block::on_block_user::<A>);
    socket.on("unblock user", block::on_unblock_user::<A>);
    socket.on("delete message", change_message::on_delete_message::<A>);
    socket.on("edit message", change_message::on_edit_message::<A>);
    // Armed before the disconnect handler is in place, so that the handler always finds it to
    // stop (a socket closed before then is stopped below).
    if let Some(TokenExpires(at)) = socket.extensions.remove::<TokenExpires>() {
        expiry::watch(&socket, at);
    }
    socket.on_disconnect(presence::on_disconnect::<A>);
    socket.join(session.user_id.as_str().to_owned());

    // Taken, not read: the old name is dropped once, by this arrival.
    let renamed = socket.extensions.remove::<Renamed>();
    if let Err(err) = presence::arrive(&socket, &session, renamed.as_ref(), &state).await {
        tracing::error!(error = ?err, "cannot save a session; dropping the socket");
        socket.disconnect().ok();
        return;
    }
    // A socket that closed before its disconnect handler was in place would leave its presence
    // field behind; undo it here, once (the handler, if it also runs, finds it left).
    if !socket.connected() {
        expiry::stop(&socket);
        *phase = Phase::Left;
        presence::leave(&socket, &session, &state).await;
        return;
    }
    joined(socket, &session, &state).await;
    *phase = Phase::Live;
}

/// `session`, then `users` and the arrival's announcement, as the directory's scope has them.
async fn joined<A: Adapter>(socket: SocketRef<A>, session: &Session, state: &AppState) {
    let event = SessionEvent {
        session_id: session.id.expose(),
        user_id: &session.user_id,
    };
    socket.emit("session", &event).ok();
    state.scope.welcome(socket, session, state).await;
}
