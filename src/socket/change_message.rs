//! `delete message` `{ with, id }` and `edit message` `{ with, id, content }`: only the
//! message's sender may, an edit within EDIT_WINDOW_SECS of its timestamp and with the checks
//! of a new message. The message changes in both histories and the conversation's index
//! ([`crate::store::MessageStore::change`]); then every socket of both users, on every node
//! (the asking one too), receives `message deleted` `{ id, from, to }` or `message edited`
//! `{ id, from, to, content, editedAt }`. Acks: `{}` (delete), `{ message }` (edit), or
//! `{ error }`. Both share the socket's message bucket.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use serde_json::{Value, value::RawValue};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, rate_limit::Metered};
use crate::domain::{ChangeRefusal, Message, MessageChange, Session};

/// What both users' sockets receive.
#[derive(Serialize)]
struct Changed<'a> {
    id: &'a str,
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(rename = "editedAt", skip_serializing_if = "Option::is_none")]
    edited_at: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ChangeAck<'a> {
    Message(&'a RawValue),
    Error(String),
}

pub async fn on_delete_message<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let result = change(&socket, payload, false, &session, &state).await;
    let reply = match result {
        Ok(_) => {
            state.metrics.moderation("delete");
            ack.send(&serde_json::json!({}))
        }
        Err(refusal) => refused(ack, "delete", &refusal, &state),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer a delete message");
    }
}

pub async fn on_edit_message<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let result = change(&socket, payload, true, &session, &state).await;
    let reply = match result {
        Ok(Some(json)) => {
            state.metrics.moderation("edit");
            ack.send(&ChangeAck::Message(&json))
        }
        Ok(None) => refused(ack, "edit", &ChangeRefusal::StorageUnavailable, &state),
        Err(refusal) => refused(ack, "edit", &refusal, &state),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer an edit message");
    }
}

fn refused<A: Adapter>(
    ack: AckSender<A>,
    action: &str,
    refusal: &ChangeRefusal,
    state: &AppState,
) -> Result<(), socketioxide::SendError> {
    let label = format!("{action}_refused_{}", refusal.metric_label());
    state.metrics.moderation(&label);
    ack.send(&ChangeAck::Error(refusal.to_string()))
}

/// Applies the change; for an edit, answers the message as it is now.
async fn change<A: Adapter>(
    socket: &SocketRef<A>,
    payload: Metered<Value>,
    edit: bool,
    session: &Session,
    state: &AppState,
) -> Result<Option<Box<RawValue>>, ChangeRefusal> {
    let event = if edit {
        "edit message"
    } else {
        "delete message"
    };
    let Some(payload) = payload.admit(&state.metrics, event) else {
        return Err(ChangeRefusal::RateLimited);
    };
    let payload = payload.unwrap_or(Value::Null);
    let request = MessageChange::parse(&payload, edit, state.max_message_bytes)?;
    let me = &session.user_id;
    let unavailable = |err| {
        tracing::error!(error = ?err, "cannot change a message");
        ChangeRefusal::StorageUnavailable
    };
    let found = state
        .messages
        .find(me.as_str(), request.with.as_str(), &request.id)
        .await
        .map_err(unavailable)?
        .ok_or(ChangeRefusal::UnknownMessage)?;
    let now = now_ms();
    let window = u64::try_from(state.edit_window.as_millis()).unwrap_or(u64::MAX);
    request.allowed(&found.message, me, now, window)?;
    let edited = request.content.map(|content| Message {
        content: content.into_string(),
        edited_at: Some(now),
        ..found.message.clone()
    });
    let json = match &edited {
        Some(message) => Some(serde_json::value::to_raw_value(message).map_err(|err| {
            tracing::error!(%err, "cannot encode a message");
            ChangeRefusal::StorageUnavailable
        })?),
        None => None,
    };
    let (held, recipient_held) = state
        .messages
        .change(&found, json.as_deref().map(RawValue::get))
        .await
        .map_err(unavailable)?;
    if !held {
        // Another delete or edit of it came first.
        return Err(ChangeRefusal::UnknownMessage);
    }
    let message = edited.as_ref().unwrap_or(&found.message);
    let changed = Changed {
        id: &request.id,
        from: &message.from,
        to: &message.to,
        content: edited.as_ref().map(|m| m.content.as_str()),
        edited_at: edited.as_ref().and_then(|m| m.edited_at),
    };
    let name = if edit {
        "message edited"
    } else {
        "message deleted"
    };
    // A recipient that never had the message (it had blocked the sender) hears nothing of it.
    tell(socket, state, name, &changed, recipient_held).await;
    Ok(json)
}

/// Every socket of both users (of the sender alone without `recipient`): this node's (the
/// asking one too) at once, the other nodes' through each user's channel, as `messages read`
/// does.
async fn tell<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    event: &'static str,
    changed: &Changed<'_>,
    recipient: bool,
) {
    let Some(json) = super::payloads::encode(changed) else {
        return;
    };
    let users: Vec<String> = if changed.from == changed.to || !recipient {
        vec![changed.from.to_owned()]
    } else {
        vec![changed.from.to_owned(), changed.to.to_owned()]
    };
    let sent = socket
        .within(users.clone())
        .local()
        .emit(event, &*json)
        .await;
    state.metrics.emitted(event, sent);
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    if let Err(err) = state.publisher.announce(event, &users, json.get()).await {
        state.metrics.adapter_error(event, &err);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
