//! The owner's refresh: every `NODE_TTL_SECS`, this node makes its presence entries in Redis
//! say what its sockets are. It drops the entries no socket of it holds (a leave whose write
//! failed, during an outage or otherwise) and writes again those of its live sockets that are
//! missing (a peer swept it while it was alive but silent, Redis lost writes), announcing the
//! users that took offline or back online. So whatever went wrong heals within one interval
//! once Redis answers. What it costs per socket is in `store/presence`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use socketioxide::{SocketIo, adapter::Adapter, extract::SocketRef};
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use super::{AppState, lifecycle::Lifecycle};
use crate::{
    domain::Session,
    store::{SocketTag, StoreError},
};

/// Starts the refresh loop: every `every`, the first one `every` after start. A task of its
/// own: the heartbeat never waits behind it.
pub fn spawn<A: Adapter>(io: SocketIo<A>, state: Arc<AppState>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = refresh(&io, &state).await {
                tracing::warn!(error = ?err, "cannot refresh presence; trying again next time");
            }
        }
    })
}

async fn refresh<A: Adapter>(io: &SocketIo<A>, state: &AppState) -> Result<(), StoreError> {
    let indexed = state.presence.indexed(&state.node_id).await?;
    // Read after the index: an entry read above was written by a socket already in the table
    // (its connect handler runs once socketioxide has added it, and it leaves the table after
    // its disconnect handler ran). One missing from the table has left: its leave was saved
    // (dropping it again finds nothing) or it failed.
    let sockets = io.of("/").map(|ns| ns.sockets()).unwrap_or_default();
    let live: HashMap<&str, &SocketRef<A>> = sockets.iter().map(|s| (s.id.as_str(), s)).collect();
    for (socket, session) in &indexed {
        if !live.contains_key(socket.as_str()) {
            drop_entry(io, state, session, socket).await;
        }
    }
    restore(state, &sockets, &indexed).await
}

/// Removes the entry of a socket this node no longer holds; announces its user if that was
/// its last socket anywhere.
async fn drop_entry<A: Adapter>(io: &SocketIo<A>, state: &AppState, session: &str, socket: &str) {
    let tag = SocketTag::new(&state.node_id, socket);
    match state.presence.drop_entry(session, &tag).await {
        Ok(offline) => {
            state
                .metrics
                .presence_repairs
                .with_label_values(&["dropped"])
                .inc();
            if let Some(user) = offline {
                state.scope.announce_offline(io.local(), &user, state).await;
            }
        }
        Err(err) => tracing::warn!(error = ?err, "cannot drop a presence entry"),
    }
}

/// Writes again the entries of live sockets that Redis lacks (field or index entry), and
/// announces the users that brings back online.
async fn restore<A: Adapter>(
    state: &AppState,
    sockets: &[SocketRef<A>],
    indexed: &HashMap<String, String>,
) -> Result<(), StoreError> {
    let held: Vec<(&SocketRef<A>, Arc<Session>)> = sockets
        .iter()
        .filter_map(|socket| Some((socket, socket.extensions.get::<Arc<Session>>()?)))
        .collect();
    let tags: Vec<(&Session, SocketTag)> = held
        .iter()
        .map(|(socket, session)| {
            let tag = SocketTag::new(&state.node_id, socket.id.as_str());
            (&**session, tag)
        })
        .collect();
    let recorded = state.presence.recorded(&tags).await?;
    for (((socket, session), (_, tag)), recorded) in held.iter().zip(&tags).zip(recorded) {
        if recorded && indexed.contains_key(socket.id.as_str()) {
            continue;
        }
        // Only a socket that is announced and not leaving, held so until written: recording
        // one that just left would leave its entry behind; one still joining records itself.
        let Some(lifecycle) = socket.extensions.get::<Lifecycle>() else {
            continue;
        };
        let Some(_live) = lifecycle.if_live().await else {
            continue;
        };
        match state.presence.connect(session, tag).await {
            Ok(came_online) => {
                state
                    .metrics
                    .presence_repairs
                    .with_label_values(&["restored"])
                    .inc();
                if came_online {
                    let local = socket.broadcast().local();
                    state.scope.announce_online(local, session, state).await;
                }
            }
            Err(err) => tracing::warn!(error = ?err, "cannot record a socket again"),
        }
    }
    Ok(())
}
