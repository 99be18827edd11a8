//! Delivery of what arrives on this node's user channels: each event goes to the local sockets
//! of the user whose channel it came on.

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{Envelope, Received, envelope::ROUTED_EVENTS};
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
            for (channel, payload) in batch.drain(..) {
                deliver(&io, &node_id, &metrics, &channel, &payload).await;
            }
        }
    })
}

async fn deliver<A: Adapter>(
    io: &SocketIo<A>,
    node_id: &str,
    metrics: &Metrics,
    channel: &str,
    payload: &[u8],
) {
    let Some(user) = channel.strip_prefix(keys::USER_CHANNEL_PREFIX) else {
        return;
    };
    match Envelope::receive(payload, node_id, ROUTED_EVENTS) {
        Received::Echo => {}
        Received::Malformed => {
            tracing::warn!(channel, "dropping a malformed message on a user channel");
            metrics.live_dropped("malformed");
        }
        Received::Event(event, data) => {
            let sent = io.local().to(user.to_owned()).emit(event, data).await;
            metrics.emitted(event, sent);
        }
    }
}
