//! Presence: a user is online while any of its sockets, on any node, is connected. Each socket
//! is a field of its session hash (see `redis-scripts/session_*.lua`), so the last one out is
//! decided by Redis in one step, whatever node the other sockets are on.

use std::sync::Arc;

use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{Extension, SocketRef, State},
    operators::BroadcastOperators,
};

use super::{
    AppState, admission::ConnectionSlot, departures::Pending, handshake::Renamed,
    lifecycle::Lifecycle,
};
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
        async { Ok::<_, ArrivalError>(state.sessions.connect(session, &tag).await?) },
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
    leave_once(&socket, &session, &state).await;
}

/// [`leave`], once per socket, after its arrival was announced (see [`Lifecycle`]).
async fn leave_once<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session>, state: &AppState) {
    let Some(lifecycle) = socket.extensions.get::<Lifecycle>() else {
        return leave(socket, session, state).await;
    };
    if let Some(_left) = lifecycle.leaving().await {
        leave(socket, session, state).await;
    }
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
        Some(async move { leave_once(socket, &session, state).await })
    });
    futures_util::future::join_all(departures).await;
}

/// Forgets this socket; when it was the user's last, announces `user disconnected` everywhere.
/// A departure Redis cannot take now is kept and saved again later ([`retry_departures`]).
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session>, state: &AppState) {
    state
        .routes
        .left(session.user_id.as_str(), socket.id.as_str());
    let tag = SocketTag::new(&state.node_id, socket.id.as_str());
    save_departure(socket.broadcast().local(), session, tag, state).await;
}

/// Saves again the departures Redis could not take before (called at every heartbeat).
pub async fn retry_departures<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    for pending in state.departures.take() {
        save_departure(io.local(), &pending.session, pending.tag, state).await;
    }
}

async fn save_departure<A: Adapter>(
    local: BroadcastOperators<A>,
    session: &Arc<Session>,
    tag: SocketTag,
    state: &AppState,
) {
    let departure = match state.sessions.disconnect(session, &tag).await {
        Ok(departure) => departure,
        Err(err) => {
            tracing::warn!(error = ?err, "cannot save a disconnection yet; trying again later");
            let session = session.clone();
            return state.departures.keep(Pending { session, tag });
        }
    };
    let user = session.user_id.as_str();
    // Not while another socket of the user is arriving here: its field may not be written yet.
    if departure != Departure::Stays
        && !state.routes.holds(user)
        && let Err(err) = state
            .nodes
            .untrack(&state.node_id, session.id.expose())
            .await
    {
        tracing::warn!(error = ?err, "cannot forget a session this node no longer holds");
    }
    if departure == Departure::Offline {
        // The session was saved, its TTL restarted: so must be the key that leads to it.
        if let Err(err) = state.users.refresh(session).await {
            tracing::warn!(error = ?err, "cannot refresh a user's index key");
        }
        state
            .scope
            .announce_offline(local, &session.user_id, state)
            .await;
    }
}
