//! The presence audit: the last line of defence against a user shown online forever. Every
//! `PRESENCE_AUDIT_SECS`, each node reads which nodes own the presence fields of every session
//! and removes the fields of nodes that are gone for good (neither listed nor alive), which no
//! other path would remove: a node that unlisted itself without cleaning up, a field written
//! for a node that never listed itself. A listed node whose liveness expired is the sweep's
//! (`liveness`). So whatever failed, a user's last socket is gone from Redis, and the user
//! announced offline, within one audit interval after its node is.

use std::{sync::Arc, time::Duration};

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use super::{AppState, presence};

/// Starts the audit loop: every `every`, the first one `every` after start.
pub fn spawn<A: Adapter>(io: SocketIo<A>, state: Arc<AppState>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = audit(&io, &state).await {
                tracing::warn!(error = ?err, "cannot audit presence; trying again next time");
            }
        }
    })
}

async fn audit<A: Adapter>(
    io: &SocketIo<A>,
    state: &AppState,
) -> Result<(), crate::store::StoreError> {
    let owners = state.sessions.socket_owners().await?;
    let mut nodes: Vec<String> = owners
        .iter()
        .flat_map(|(_, nodes)| nodes.iter().cloned())
        .filter(|node| *node != state.node_id)
        .collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return Ok(());
    }
    let gone = state.nodes.gone(nodes).await?;
    for (session, nodes) in &owners {
        for node in nodes.iter().filter(|node| gone.contains(node)) {
            match state.nodes.sweep_session(session, node).await {
                Ok(Some(user)) => {
                    state.metrics.orphans_swept.inc();
                    presence::announce_offline(io.local(), &user, state).await;
                }
                Ok(None) => state.metrics.orphans_swept.inc(),
                Err(err) => tracing::warn!(error = ?err, "cannot remove an orphan presence field"),
            }
        }
    }
    if !gone.is_empty() {
        tracing::warn!(
            nodes = gone.len(),
            "removed presence fields of nodes gone for good"
        );
    }
    Ok(())
}
