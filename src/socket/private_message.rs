//! `private message`: parse, check, store durably, forward to the recipient's and the sender's
//! other sockets on every node, then acknowledge. A refused message is neither stored nor sent.
//! The message is encoded to JSON once; storage, local delivery, the other nodes and the ack
//! all use that one encoding.

use std::sync::Arc;

use serde_json::{Value, value::RawValue};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, payloads::MessageAck, rate_limit::Metered};
use crate::{
    domain::{Message, OutgoingMessage, Refusal, Session},
    store::Record,
};

pub async fn on_private_message<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let reply = match send(&socket, payload, &session, &state).await {
        Ok(message) => {
            state.metrics.messages_accepted.inc();
            ack.send(&MessageAck::Message(&message))
        }
        Err(refusal) => {
            tracing::debug!(sid = %socket.id, %refusal, "private message refused");
            let reason = refusal.metric_label();
            state
                .metrics
                .messages_refused
                .with_label_values(&[reason])
                .inc();
            ack.send(&MessageAck::Error(refusal.to_string()))
        }
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot acknowledge a private message");
    }
}

async fn send<A: Adapter>(
    socket: &SocketRef<A>,
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<Box<RawValue>, Refusal> {
    // The rate was checked before the payload was parsed, so that a flood costs one check
    // per event whatever it contains.
    let Some(payload) = payload.admit(&state.metrics, "private message") else {
        return Err(Refusal::RateLimited);
    };
    let payload = payload.map_err(|_| Refusal::InvalidPayload)?;
    let outgoing = OutgoingMessage::parse(&payload, state.max_message_bytes)?;
    // Held until the message is stored and forwarded: past the limit, refuse at once rather
    // than let every message wait behind a growing queue.
    let _pending = state
        .pending_messages
        .try_acquire()
        .map_err(|_| Refusal::Busy)?;
    let message = Message::new(&session.user_id, outgoing);
    let json = serde_json::value::to_raw_value(&message).map_err(|err| {
        tracing::error!(%err, "cannot encode a message");
        Refusal::StorageUnavailable
    })?;
    let (from, to) = (message.from.as_str(), message.to.as_str());
    let record = Record {
        from,
        to,
        id: message.id.as_deref().unwrap_or_default(),
        json: json.get(),
    };
    // Stored, and published to the other nodes, before it is emitted here: whatever a client
    // is shown is also in the history.
    state
        .scope
        .store_message(socket, session, state, &record)
        .await?;
    emit_here(socket, state, from, to, &json).await;
    Ok(json)
}

/// Emits a stored message to this node's sockets of either user, but not the sending one. Most
/// messages have none here (the recipient on another node, no other tab): those skip the
/// emit, which would encode the packet before finding no socket to send it to.
async fn emit_here<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    from: &str,
    to: &str,
    json: &RawValue,
) {
    if !state.routes.others_here(&[to, from], socket.id.as_str()) {
        return;
    }
    let local = socket.local().to([to.to_owned(), from.to_owned()]);
    let sent = local.emit("private message", json).await;
    state.metrics.emitted("private message", sent);
}
