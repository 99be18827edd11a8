//! `private message`: rate-limit and parse, then the one write path of a message
//! ([`super::send`]: store durably, forward to the recipient's and the sender's other sockets
//! on every node), then acknowledge. A refused message is neither stored nor sent. The message
//! is encoded to JSON once; storage, local delivery, the other nodes and the ack all use that
//! one encoding.

use std::sync::Arc;

use serde_json::{Value, value::RawValue};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{
    AppState,
    payloads::MessageAck,
    rate_limit::Metered,
    send::{Here, Sender, send_message},
};
use crate::domain::{OutgoingMessage, Refusal, Session};

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
    // A socket is its user's live presence: the sender is connected.
    let sender = Sender {
        user_id: &session.user_id,
        username: session.username.as_str(),
        connected: true,
    };
    send_message(state, &Here::but(socket), &sender, outgoing).await
}
