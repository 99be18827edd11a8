//! Presence: a user is online while any of its sockets, on any node, is connected. Each socket
//! is a field of its session hash (see `redis-scripts/session_*.lua`), so the last one out is
//! decided by Redis in one step, whatever node the other sockets are on.

use std::sync::Arc;

use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{Extension, SocketRef, State},
};

use super::{AppState, contacts, payloads::UserEvent};
use crate::{
    domain::Session,
    routing::RouteError,
    settings::UsersScope,
    store::{SocketTag, StoreError},
};

/// Why a socket could not be recorded as present.
#[derive(Debug, thiserror::Error)]
pub enum ArrivalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// Records a new socket of `session`, marks the session connected, and makes sure this node
/// receives the user's events.
pub async fn arrive<A: Adapter>(
    socket: &SocketRef<A>,
    session: &Session,
    state: &AppState,
) -> Result<(), ArrivalError> {
    let tag = SocketTag::new(&state.node_id, socket.id.as_str());
    let user = session.user_id.as_str();
    // Recorded under this node too, so that survivors can clean up if this node dies.
    tokio::try_join!(
        async { Ok::<_, ArrivalError>(state.sessions.connect(session, &tag).await?) },
        async {
            Ok(state
                .nodes
                .track(&state.node_id, session.id.expose())
                .await?)
        },
        async { Ok(state.routes.arrived(user, socket.id.as_str()).await?) },
        async { Ok(state.users.record(session).await?) },
    )?;
    Ok(())
}

pub async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    leave(&socket, &session, &state).await;
}

/// Saves and announces the departure of every socket of this node, for a graceful shutdown.
///
/// Needed because socketioxide 0.18's `SocketIo::close` drops its namespaces before closing the
/// transports, so the disconnect handlers never run. Leaving is idempotent, so this stays right
/// if a later version does run them.
pub async fn leave_all<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    let sockets = io.of("/").map(|ns| ns.sockets()).unwrap_or_default();
    tracing::info!(
        sockets = sockets.len(),
        "saving the departure of every local socket"
    );
    let departures = sockets.iter().filter_map(|socket| {
        let session = socket.extensions.get::<Arc<Session>>()?;
        Some(async move { leave(socket, &session, state).await })
    });
    futures_util::future::join_all(departures).await;
}

/// Tells every other socket, on every node, that this user is online.
pub async fn announce_online<A: Adapter>(
    socket: &SocketRef<A>,
    session: &Session,
    state: &AppState,
) {
    if state.scope == UsersScope::Contacts {
        return contacts::announce_online(socket, session, state).await;
    }
    let online = UserEvent {
        user_id: &session.user_id,
        username: session.username.as_str(),
        connected: true,
        messages: Vec::new(),
    };
    let sent = socket.broadcast().emit("user connected", &online).await;
    state.metrics.emitted("user connected", sent);
}

/// Forgets this socket; when it was the user's last, announces `user disconnected` everywhere.
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, session: &Session, state: &AppState) {
    let user = session.user_id.as_str();
    state.routes.left(user, socket.id.as_str());
    let tag = SocketTag::new(&state.node_id, socket.id.as_str());
    match state.sessions.disconnect(session, &tag).await {
        Ok(true) => {
            // The session was saved, its TTL restarted: so must be the key that leads to it.
            if let Err(err) = state.users.refresh(session).await {
                tracing::warn!(error = ?err, "cannot refresh a user's index key");
            }
            if state.scope == UsersScope::Contacts {
                return contacts::announce_offline(socket.local(), state, user).await;
            }
            let sent = socket.broadcast().emit("user disconnected", user).await;
            state.metrics.emitted("user disconnected", sent);
        }
        Ok(false) => {}
        Err(err) => tracing::error!(error = ?err, "cannot save a disconnection"),
    }
}
