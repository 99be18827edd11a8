//! The presence audit: the last line of defence against a user shown online forever. Every
//! `PRESENCE_AUDIT_SECS`, each node reads the presence fields of every session and removes
//! the ones no cleanup path would ever remove:
//! - fields of nodes gone for good (neither listed nor alive): a node that unlisted itself
//!   without cleaning up, a field written for a node that never listed itself. A listed node
//!   whose liveness expired is the sweep's (`liveness`);
//! - its own fields that no socket of this node owns: a departure whose save failed and was
//!   dropped from the retry queue, or anything else that left one behind while this node
//!   lives (its liveness never expires, so no sweep would come).
//!
//! So whatever failed, every presence field is either refreshed by a live owner's socket or
//! gone, and the user announced offline, within one audit interval (after the node's death
//! is noticed, for a node that died): the bound centrifuge gets from self-expiring presence
//! entries, without a write per socket per interval.

use std::{collections::HashSet, sync::Arc, time::Duration};

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use super::AppState;
use crate::{
    domain::UserId,
    store::{PresenceField, SocketTag, StoreError},
};

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

/// Keys per page of the walk, and at most one page per [`WALK_PACE`]: 25,000 keys a second, a
/// walk of a 3,000,000-key Redis (1,000,000 users) in ~2 minutes, whereas unpaced it took the
/// core. Small pages, so that one holds Redis and the node's connection for a fraction of a
/// millisecond (as the index upkeep's, `store/users/maintenance.rs`).
const WALK_PAGE: usize = 250;
const WALK_PACE: Duration = Duration::from_millis(10);

async fn audit<A: Adapter>(io: &SocketIo<A>, state: &AppState) -> Result<(), StoreError> {
    let sessions = state.sessions.socket_fields(WALK_PAGE, WALK_PACE).await?;
    // Read after the fields: a field read above was written by a socket already in the table
    // (its connect handler runs once socketioxide has added it, and it leaves the table after
    // its disconnect handler saved its departure). One missing from the table has left: its
    // departure was saved (the removal below then finds nothing) or it never will be.
    let live: HashSet<String> = io
        .of("/")
        .map(|ns| ns.sockets())
        .unwrap_or_default()
        .iter()
        .map(|socket| socket.id.as_str().to_owned())
        .collect();
    for (session, fields) in &sessions {
        for field in fields {
            if field.node == state.node_id && !live.contains(&field.socket) {
                let tag = SocketTag::new(&field.node, &field.socket);
                removed(io, state, state.nodes.forget_socket(session, &tag).await).await;
            }
        }
    }
    sweep_gone_nodes(io, state, &sessions).await
}

/// Removes the fields of nodes that are gone for good.
async fn sweep_gone_nodes<A: Adapter>(
    io: &SocketIo<A>,
    state: &AppState,
    sessions: &[(String, Vec<PresenceField>)],
) -> Result<(), StoreError> {
    let mut nodes: Vec<String> = sessions
        .iter()
        .flat_map(|(_, fields)| fields.iter().map(|field| field.node.clone()))
        .filter(|node| *node != state.node_id)
        .collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return Ok(());
    }
    let gone = state.nodes.gone(nodes).await?;
    for (session, fields) in sessions {
        let mut owners: Vec<&str> = fields.iter().map(|field| field.node.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        for node in owners
            .into_iter()
            .filter(|node| gone.iter().any(|g| g == node))
        {
            removed(io, state, state.nodes.sweep_session(session, node).await).await;
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

/// Counts a removal of orphan fields, and announces the user it took offline.
async fn removed<A: Adapter>(
    io: &SocketIo<A>,
    state: &AppState,
    outcome: Result<Option<UserId>, StoreError>,
) {
    match outcome {
        Ok(Some(user)) => {
            state.metrics.orphans_swept.inc();
            state.scope.announce_offline(io.local(), &user, state).await;
        }
        Ok(None) => state.metrics.orphans_swept.inc(),
        Err(err) => tracing::warn!(error = ?err, "cannot remove an orphan presence field"),
    }
}
