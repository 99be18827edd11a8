//! `messages read`: `{ with, upTo }` moves the caller's read mark of its conversation with
//! `with` forward (never back), then every socket of both users, on every node, receives
//! `messages read` `{ by, with, upTo }`. The ack, when asked for, is `{}` or `{ error }`. It
//! shares the socket's message bucket.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, rate_limit::Metered};
use crate::domain::{ReadRefusal, ReadRequest, Session, UserId};

/// What both users' sockets receive.
#[derive(Serialize)]
struct ReadEvent<'a> {
    by: &'a UserId,
    with: &'a UserId,
    #[serde(rename = "upTo")]
    up_to: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ReadAck {
    Error(String),
}

pub async fn on_messages_read<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let result = mark(&socket, payload, &session, &state).await;
    let label = match &result {
        Ok(()) => "marked",
        Err(refusal) => refusal.metric_label(),
    };
    state.metrics.reads.with_label_values(&[label]).inc();
    let reply = match result {
        Ok(()) => ack.send(&serde_json::json!({})),
        Err(refusal) => ack.send(&ReadAck::Error(refusal.to_string())),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer a messages read");
    }
}

async fn mark<A: Adapter>(
    socket: &SocketRef<A>,
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<(), ReadRefusal> {
    let Some(payload) = payload.admit(&state.metrics, "messages read") else {
        return Err(ReadRefusal::RateLimited);
    };
    let request = ReadRequest::parse(&payload.unwrap_or(Value::Null))?;
    let me = &session.user_id;
    let unavailable = |err| {
        tracing::error!(error = ?err, "cannot save a read mark");
        ReadRefusal::StorageUnavailable
    };
    let known = state
        .messages
        .holds(me, &request.with, &request.up_to)
        .await;
    if !known.map_err(unavailable)? {
        return Err(ReadRefusal::UnknownMessage);
    }
    let up_to = state
        .read_marks
        .mark(me, &request.with, &request.up_to)
        .await
        .map_err(unavailable)?;
    let event = ReadEvent {
        by: me,
        with: &request.with,
        up_to: &up_to,
    };
    let Ok(json) = serde_json::value::to_raw_value(&event) else {
        return Ok(());
    };
    let users: Vec<String> = if *me == request.with {
        vec![me.to_string()]
    } else {
        vec![me.to_string(), request.with.to_string()]
    };
    // This node's sockets of both users, the calling one included (its other views update
    // from the event alone); the other nodes' through each user's channel.
    let sent = socket
        .within(users.clone())
        .local()
        .emit("messages read", &*json)
        .await;
    state.metrics.emitted("messages read", sent);
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let announced = state
        .publisher
        .announce("messages read", &users, json.get());
    if let Err(err) = announced.await {
        state.metrics.adapter_error("messages read", &err);
    }
    Ok(())
}
