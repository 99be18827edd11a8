//! Delivery of what arrives on this node's user channels: each event goes to the local sockets
//! of the user whose channel it came on.

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{Envelope, Received, publisher::ROUTED_EVENTS};
use crate::{
    metrics::Metrics,
    store::redis::{ChannelMessage, keys},
};

/// How many received messages one pass delivers before yielding.
const BATCH: usize = 256;

/// Delivers every message that comes out of `deliveries` until the routes are gone.
pub fn spawn<A: Adapter>(
    io: SocketIo<A>,
    mut deliveries: mpsc::Receiver<ChannelMessage>,
    node_id: String,
    metrics: Metrics,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while deliveries.recv_many(&mut batch, BATCH).await > 0 {
            let mut rest = &batch[..];
            while let Some(((_, payload), _)) = rest.split_first() {
                let same = rest.iter().take_while(|(_, p)| p == payload).count();
                let (run, after) = rest.split_at(same);
                deliver(&io, &node_id, &metrics, run, payload).await;
                rest = after;
            }
            batch.clear();
        }
    })
}

/// Delivers `payload`, received on each channel of `run`: one publication on several users'
/// channels (a contact's presence to the contacts this node holds, a message to both its
/// users) arrives as consecutive copies, decoded and emitted once for all of those users.
async fn deliver<A: Adapter>(
    io: &SocketIo<A>,
    node_id: &str,
    metrics: &Metrics,
    run: &[ChannelMessage],
    payload: &[u8],
) {
    let users: Vec<String> = run
        .iter()
        .filter_map(|(channel, _)| channel.strip_prefix(keys::USER_CHANNEL_PREFIX))
        .map(str::to_owned)
        .collect();
    // No room at all would be every socket of the node.
    if users.is_empty() {
        return;
    }
    match Envelope::receive(payload, node_id, ROUTED_EVENTS) {
        Received::Echo => {}
        Received::Malformed => {
            for (channel, _) in run {
                tracing::warn!(channel, "dropping a malformed message on a user channel");
                metrics.live_dropped("malformed");
            }
        }
        Received::Event(event, data) => {
            let sent = io.local().to(users).emit(event, data).await;
            metrics.emitted(event, sent);
        }
    }
}
