//! Node liveness and the expiry sweep: a heartbeat that keeps this node's presence entries
//! alive, and, in a task of its own, a sweep that removes the entries of nodes that stopped
//! refreshing theirs (SIGKILL, crash, lost host), so that their users do not stay "online".
//! A node leaving (SIGTERM) runs the same sweep on itself ([`sweep_self`]).

use std::{sync::Arc, time::Duration};

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{task::JoinHandle, time::timeout};

use super::AppState;
use crate::store::{StoreError, presence::nodes::Swept};

/// Starts the heartbeat and, beside it, the sweep of dead nodes, every `every` until the
/// handles are aborted.
///
/// Two tasks, so that the heartbeat never waits behind the sweep: sweeping a node that held
/// thousands of sockets can outlast the liveness TTL, and a heartbeat waiting for it would get
/// this live node taken for dead by its peers. Each heartbeat is bounded by `every` too, so a
/// slow Redis delays the next one by at most that.
pub fn spawn<A: Adapter>(
    io: SocketIo<A>,
    state: Arc<AppState>,
    every: Duration,
) -> [JoinHandle<()>; 2] {
    let heartbeat = tokio::spawn({
        let state = state.clone();
        every_tick(every, move || {
            let state = state.clone();
            async move {
                let beat = state.presence.nodes().heartbeat(&state.node_id);
                match timeout(every, beat).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(error = ?err, "cannot refresh this node's liveness")
                    }
                    Err(_) => tracing::warn!("refreshing this node's liveness timed out"),
                }
            }
        })
    });
    let sweep = tokio::spawn(every_tick(every, move || {
        let (io, state) = (io.clone(), state.clone());
        async move { sweep_dead(&io, &state).await }
    }));
    [heartbeat, sweep]
}

/// Runs `work` every `every`, the first at once; a late one delays the next.
async fn every_tick<F: Future<Output = ()>>(every: Duration, mut work: impl FnMut() -> F) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        work().await;
    }
}

/// Sweeps every node whose liveness key expired, and unlists those left clean.
async fn sweep_dead<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    let nodes = state.presence.nodes();
    let dead = match nodes.dead_nodes(&state.node_id).await {
        Ok(dead) => dead,
        Err(err) => return tracing::warn!(error = ?err, "cannot look for dead nodes"),
    };
    for node in dead {
        if announce(io, state, &node, nodes.sweep(&node).await).await {
            tracing::info!(%node, "swept a dead node");
            if let Err(err) = nodes.forget_if_clean(&node).await {
                tracing::warn!(%node, error = ?err, "cannot unlist a dead node");
            }
        }
    }
}

/// This node is leaving (SIGTERM, once its sockets' arrivals are all announced, before its
/// transports close): it sweeps itself as a survivor would sweep it after a crash, so that its
/// users are announced offline now. Its liveness key goes afterwards
/// ([`retire`](crate::store::presence::nodes::NodeStore::retire)), so the survivors sweep
/// whatever a socket still finishing its handshake writes after this, and unlist it.
pub async fn sweep_self<A: Adapter>(io: &SocketIo<A>, state: &AppState) {
    let me = &state.node_id;
    announce(io, state, me, state.presence.nodes().sweep(me).await).await;
}

/// Announces the users a sweep of `node` took offline; true when every session was clean.
async fn announce<A: Adapter>(
    io: &SocketIo<A>,
    state: &AppState,
    node: &str,
    swept: Result<Swept, StoreError>,
) -> bool {
    let swept = match swept {
        Ok(swept) => swept,
        Err(err) => {
            tracing::warn!(%node, error = ?err, "cannot sweep a node");
            return false;
        }
    };
    if let Some(err) = &swept.error {
        state.metrics.sweep_failed(node, swept.failed, err);
    }
    for user in &swept.offline {
        state.scope.announce_offline(io.local(), user, state).await;
    }
    swept.failed == 0
}
