//! `fetch messages`: a page of the caller's conversation with one user, answered
//! `{ messages, more }` or `{ error }` by ack. It shares the socket's message bucket.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, rate_limit::Metered};
use crate::{
    domain::{Message, PageRefusal, PageRequest, Session},
    store::Page,
};

/// The acknowledgement: a page, or `{ error }`.
#[derive(Serialize)]
#[serde(untagged)]
enum PageAck<'a> {
    Page { messages: &'a [Message], more: bool },
    Error { error: String },
}

pub async fn on_fetch_messages<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let page = fetch(payload, &session, &state).await;
    let label = match &page {
        Ok(_) => "served",
        Err(refusal) => refusal.metric_label(),
    };
    state.metrics.pages.with_label_values(&[label]).inc();
    let reply = match &page {
        Ok(page) => ack.send(&PageAck::Page {
            messages: &page.messages,
            more: page.more,
        }),
        Err(refusal) => ack.send(&PageAck::Error {
            error: refusal.to_string(),
        }),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer a fetch messages");
    }
}

async fn fetch(
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<Page, PageRefusal> {
    let Some(payload) = payload.admit(&state.metrics, "fetch messages") else {
        return Err(PageRefusal::RateLimited);
    };
    let request = PageRequest::parse(&payload.unwrap_or(Value::Null))?;
    state
        .messages
        .page(&session.user_id, &request)
        .await
        .map_err(|err| {
            tracing::error!(error = ?err, "cannot read a page of messages");
            PageRefusal::StorageUnavailable
        })
}
