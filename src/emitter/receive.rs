//! What arrives on the emitter's channels, applied to this node's sockets: an event emitted to
//! the rooms (userIDs) it names, or their sockets disconnected.

use std::time::{Duration, Instant};

use socketioxide::{SocketIo, adapter::Adapter};
use tokio::{sync::mpsc, task::JoinHandle};

use super::packet::{self, Refusal, Request};
use crate::{
    metrics::Metrics,
    store::redis::{ChannelMessage, keys},
};

/// How many packets one pass takes.
const BATCH: usize = 64;
/// A backend that keeps sending bad packets is logged once per this, with a count.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Applies every packet that comes out of `messages`; a packet over `max_bytes` (the largest
/// Engine.IO payload: no client could take it) is refused unread.
pub fn spawn<A: Adapter>(
    io: SocketIo<A>,
    mut messages: mpsc::Receiver<ChannelMessage>,
    metrics: Metrics,
    max_bytes: usize,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut log = RefusalLog::default();
        while messages.recv_many(&mut batch, BATCH).await > 0 {
            for (channel, payload) in batch.drain(..) {
                let result = if channel == keys::EMITTER_REQUEST_CHANNEL {
                    request(&io, &metrics, &payload, max_bytes).await
                } else {
                    emit(&io, &metrics, &payload, max_bytes).await
                };
                if let Err(refusal) = result {
                    metrics
                        .emitter_packets
                        .with_label_values(&[refusal.reason()])
                        .inc();
                    log.refused(&channel, &refusal);
                }
            }
        }
    })
}

async fn emit<A: Adapter>(
    io: &SocketIo<A>,
    metrics: &Metrics,
    payload: &[u8],
    max_bytes: usize,
) -> Result<(), Refusal> {
    let broadcast = packet::broadcast(payload, max_bytes)?;
    // No room: every socket of the node, as the reference's `emit()` without `to`.
    let sent = io
        .local()
        .to(broadcast.rooms)
        .except(broadcast.except)
        .emit(&broadcast.event, &broadcast.args)
        .await;
    // One label for every event: the names are the backend's, unbounded.
    metrics.emitted("emitter", sent);
    metrics
        .emitter_packets
        .with_label_values(&["emitted"])
        .inc();
    Ok(())
}

async fn request<A: Adapter>(
    io: &SocketIo<A>,
    metrics: &Metrics,
    payload: &[u8],
    max_bytes: usize,
) -> Result<(), Refusal> {
    match packet::request(payload, max_bytes)? {
        // The adapter's own: it reads them on its own subscription.
        Request::Adapter => {}
        // `close` or not, the client is told `io server disconnect` either way.
        Request::Disconnect { rooms, except } => {
            let closed = io.local().to(rooms).except(except).disconnect().await;
            metrics.emitted("emitter", closed);
            metrics
                .emitter_packets
                .with_label_values(&["disconnected"])
                .inc();
        }
    }
    Ok(())
}

/// Logs refusals at most once per [`LOG_EVERY`], with how many were not logged.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    fn refused(&mut self, channel: &str, refusal: &Refusal) {
        if self.last.is_some_and(|last| last.elapsed() < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(Instant::now());
        let suppressed = std::mem::take(&mut self.suppressed);
        tracing::warn!(channel, %refusal, suppressed, "ignoring a Socket.IO emitter packet");
    }
}
