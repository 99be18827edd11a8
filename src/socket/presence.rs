//! Presence: a user is online while any of its sockets, on any node, is connected. Each socket
//! is a field of its session hash (see `store/presence`), so the last one out is decided by
//! Redis in one step, whatever node the other sockets are on. A leave Redis cannot take is not
//! kept: the node's refresh ([`super::refresh`]) finds the entry no socket holds and drops it.

use std::sync::Arc;

use socketioxide::{
    adapter::Adapter,
    extract::{Extension, SocketRef, State},
};

use super::{AppState, admission::ConnectionSlot, handshake::Renamed, lifecycle::Lifecycle};
use crate::{
    domain::Session,
    routing::RouteError,
    store::{Departure, SocketTag, StoreError},
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
/// receives the user's events; `renamed`: the name its token replaced, out of the index.
pub async fn arrive<A: Adapter>(
    socket: &SocketRef<A>,
    session: &Session,
    renamed: Option<&Renamed>,
    state: &AppState,
) -> Result<(), ArrivalError> {
    let tag = SocketTag::new(&state.node_id, socket.id.as_str());
    let user = session.user_id.as_str();
    tokio::try_join!(
        async { Ok::<_, ArrivalError>(state.presence.connect(session, &tag).await?) },
        async { Ok(state.routes.arrived(user, socket.id.as_str()).await?) },
        async {
            let previous = renamed.map(|Renamed(name)| name);
            Ok(state.users.record(session, previous).await?)
        },
    )?;
    Ok(())
}

pub async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    // The connection is gone: its place on the node is free before the departure's Redis
    // work, not when the last handle on the socket happens to drop.
    socket.extensions.remove::<ConnectionSlot>();
    super::expiry::stop(&socket);
    // Once per socket, after its arrival was announced (see [`Lifecycle`]).
    let Some(lifecycle) = socket.extensions.get::<Lifecycle>() else {
        return leave(&socket, &session, &state).await;
    };
    if let Some(_left) = lifecycle.leaving().await {
        leave(&socket, &session, &state).await;
    }
}

/// Forgets this socket; when it was the user's last, announces `user disconnected` everywhere.
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session>, state: &AppState) {
    let user = &session.user_id;
    state.routes.left(user.as_str(), socket.id.as_str());
    let tag = SocketTag::new(&state.node_id, socket.id.as_str());
    match state.presence.disconnect(session, &tag).await {
        Ok(Departure::Offline) => {
            // The session was saved, its TTL restarted: so must be the key that leads to it.
            if let Err(err) = state.users.refresh(session).await {
                tracing::warn!(error = ?err, "cannot refresh a user's index key");
            }
            let local = socket.broadcast().local();
            state.scope.announce_offline(local, user, state).await;
        }
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(error = ?err, "cannot save a disconnection; the next refresh will");
        }
    }
}
