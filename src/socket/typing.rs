//! `typing`: `{ to }` from a client becomes `typing` `{ from }` on every socket of the
//! recipient, on every node (its user channel). Never stored; it shares the socket's message
//! rate. A bad payload is dropped, and answered `{ error }` when the client asked for an ack.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, rate_limit::Metered};
use crate::domain::{Session, Typing, TypingRefusal, UserId};

/// What the recipient's sockets receive.
#[derive(Serialize)]
struct TypingEvent<'a> {
    from: &'a UserId,
}

/// The acknowledgement, when one was asked for: `{}` once forwarded, or `{ error }`.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum TypingAck {
    Error(String),
}

pub async fn on_typing<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let result = forward(&socket, payload, &session, &state).await;
    let label = match &result {
        Ok(()) => "forwarded",
        Err(refusal) => refusal.metric_label(),
    };
    state.metrics.typing.with_label_values(&[label]).inc();
    let reply = match result {
        Ok(()) => ack.send(&serde_json::json!({})),
        Err(refusal) => ack.send(&TypingAck::Error(refusal.to_string())),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer a typing event");
    }
}

async fn forward<A: Adapter>(
    socket: &SocketRef<A>,
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<(), TypingRefusal> {
    let Some(payload) = payload.admit(&state.metrics, "typing") else {
        return Err(TypingRefusal::RateLimited);
    };
    let payload = payload.map_err(|_| TypingRefusal::InvalidPayload)?;
    let typing = Typing::parse(&payload)?;
    let event = TypingEvent {
        from: &session.user_id,
    };
    let Ok(json) = serde_json::value::to_raw_value(&event) else {
        return Ok(());
    };
    let to = typing.to.as_str();
    // Dropped, not refused, when the recipient blocked the sender: the sender learns nothing
    // from it. One read per typing event (not on a message's path); a failed read forwards.
    if let Ok(true) = state.blocks.holds(to, session.user_id.as_str()).await {
        state.metrics.moderation("typing_blocked");
        return Ok(());
    }
    let sent = socket
        .local()
        .to(to.to_owned())
        .emit("typing", &*json)
        .await;
    state.metrics.emitted("typing", sent);
    // Best effort, as the event is: a node that misses it shows no "typing…" for a moment.
    if let Err(err) = state.publisher.announce("typing", &[to], json.get()).await {
        state.metrics.adapter_error("typing", &err);
    }
    Ok(())
}
