//! Node liveness: a heartbeat that keeps this node listed as alive, and, in a task of its own,
//! a sweep that cleans up after nodes that died without draining (SIGKILL, crash, lost host),
//! so that their users do not stay "online" until their session expires.

use std::{sync::Arc, time::Duration};

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{sync::Notify, task::JoinHandle, time::timeout};

use super::{AppState, lifecycle::Lifecycle, presence};
use crate::domain::Session;

/// Starts the heartbeat and, beside it, the node's upkeep (saving departures again, sweeping
/// dead nodes, repairing after being swept), every `every` until the handles are aborted.
///
/// Two tasks, so that the heartbeat never waits behind the upkeep: a sweep of a node that held
/// thousands of sockets, or departures retried after an outage, can outlast the liveness TTL,
/// and a heartbeat waiting for them would get this live node taken for dead by its peers, who
/// would then announce all its users offline. Each heartbeat is bounded by `every` too, so a
/// slow Redis delays the next one by at most that.
pub fn spawn<A: Adapter>(
    io: SocketIo<A>,
    state: Arc<AppState>,
    every: Duration,
) -> [JoinHandle<()>; 2] {
    let swept = Arc::new(Notify::new());
    let heartbeat = tokio::spawn(heartbeat(state.clone(), every, swept.clone()));
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = swept.notified() => repair(&io, &state).await,
            }
            presence::retry_departures(&io, &state).await;
            sweep(&io, &state).await;
        }
    });
    [heartbeat, upkeep]
}

/// Refreshes this node's liveness every `every`; rings `swept` when the node finds it had been
/// taken for dead (not on the first beat, when it was simply not listed yet).
async fn heartbeat(state: Arc<AppState>, every: Duration, swept: Arc<Notify>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tick.tick().await;
        match timeout(every, state.nodes.heartbeat(&state.node_id)).await {
            Ok(Ok(was_listed)) if !was_listed && !first => swept.notify_one(),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = ?err, "cannot refresh this node's liveness"),
            Err(_) => tracing::warn!("refreshing this node's liveness timed out"),
        }
        first = false;
    }
}

/// Cleans up after every node whose liveness key expired, announcing the users who went
/// offline with it.
async fn sweep<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    let dead = match state.nodes.dead_nodes(&state.node_id).await {
        Ok(dead) => dead,
        Err(err) => return tracing::warn!(error = ?err, "cannot look for dead nodes"),
    };
    for node in dead {
        match state.nodes.sweep(&node).await {
            Ok(swept) => {
                if let Some(err) = &swept.error {
                    state.metrics.sweep_failed(&node, swept.failed, err);
                } else {
                    tracing::info!(%node, users = swept.offline.len(), "swept a dead node");
                }
                for user in swept.offline {
                    state.scope.announce_offline(io.local(), &user, state).await;
                }
            }
            Err(err) => tracing::warn!(%node, error = ?err, "cannot sweep a dead node"),
        }
    }
}

/// This node is leaving (SIGTERM, after its departures were saved, before its transports
/// close): it sweeps itself as a survivor would sweep it after a crash, so that whatever the
/// drain missed (a departure that failed, a socket that finished its handshake after the
/// drain's snapshot) is removed and its users announced offline now. Its liveness key goes
/// afterwards ([`NodeStore::retire`]), so the survivors check what is left.
///
/// [`NodeStore::retire`]: crate::store::NodeStore::retire
pub async fn sweep_self<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    let me = &state.node_id;
    match state.nodes.sweep_sessions(me).await {
        Ok(swept) => {
            if let Some(err) = &swept.error {
                state.metrics.sweep_failed(me, swept.failed, err);
            }
            if !swept.offline.is_empty() {
                tracing::info!(
                    users = swept.offline.len(),
                    "the drain left sockets behind; swept"
                );
            }
            for user in swept.offline {
                state.scope.announce_offline(io.local(), &user, state).await;
            }
        }
        Err(err) => tracing::warn!(error = ?err, "cannot sweep this node; survivors will"),
    }
}

/// This node was taken for dead (it missed heartbeats, e.g. while Redis was unreachable) and
/// its sockets were swept: record them again and tell everyone these users are still here.
async fn repair<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    let sockets = io.of("/").map(|ns| ns.sockets()).unwrap_or_default();
    tracing::warn!(
        sockets = sockets.len(),
        "this node had been swept as dead; repairing"
    );
    for socket in sockets {
        let Some(session) = socket.extensions.get::<std::sync::Arc<Session>>() else {
            continue;
        };
        // Only a socket that is announced and not leaving: recording one that just left would
        // leave its field behind; one still joining records itself.
        let Some(lifecycle) = socket.extensions.get::<Lifecycle>() else {
            continue;
        };
        let Some(_live) = lifecycle.if_live().await else {
            continue;
        };
        if let Err(err) = presence::arrive(&socket, &session, None, state).await {
            tracing::warn!(error = ?err, "cannot record a socket again");
            continue;
        }
        state
            .scope
            .announce_online(socket.broadcast().local(), &session, state)
            .await;
    }
}
