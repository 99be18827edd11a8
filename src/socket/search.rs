//! `search users` (both scopes): users whose username starts with the query, case-insensitive,
//! ordered by username, never the caller; answered `{ users }` or `{ error }` by ack.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};

use super::{AppState, rate_limit::Metered};
use crate::{
    domain::{ReadView, SearchQuery, SearchRefusal, Session},
    store::UserEntry,
};

/// The acknowledgement of a search: exactly one of the two fields.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum SearchAck<'a> {
    Users(&'a [Found]),
    Error(String),
}

/// One user found, with the messages from it the caller has not read.
#[derive(Serialize)]
struct Found {
    #[serde(flatten)]
    entry: UserEntry,
    unread: usize,
    /// The caller blocked this user; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    blocked: bool,
}

pub async fn on_search_users<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let found = search(payload, &session, &state).await;
    let label = match &found {
        Ok(_) => "served",
        Err(refusal) => refusal.metric_label(),
    };
    state.metrics.searches.with_label_values(&[label]).inc();
    let reply = match &found {
        Ok(users) => ack.send(&SearchAck::Users(users)),
        Err(refusal) => ack.send(&SearchAck::Error(refusal.to_string())),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer a search");
    }
}

async fn search(
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<Vec<Found>, SearchRefusal> {
    // Searches share the socket's message bucket, taken before the payload is parsed, so
    // that a flood costs one check each.
    let Some(payload) = payload.admit(&state.metrics, "search users") else {
        return Err(SearchRefusal::RateLimited);
    };
    let query = SearchQuery::parse(&payload.unwrap_or(Value::Null))?;
    let me = &session.user_id;
    // The unread counts come from the caller's history and marks, read at the same time.
    let (found, history, marks, blocked) = tokio::join!(
        state.users.search(&query.prefix, query.limit, me.as_str()),
        state.messages.for_user(me),
        state.read_marks.of(me),
        state.blocks.of(me.as_str()),
    );
    let unavailable = |err| {
        tracing::error!(error = ?err, "cannot search users");
        SearchRefusal::StorageUnavailable
    };
    let (found, history, marks) = (
        found.map_err(unavailable)?,
        history.map_err(unavailable)?,
        marks.map_err(unavailable)?,
    );
    let blocked = blocked.map_err(unavailable)?;
    let read = ReadView::new(&marks, &history, me.as_str());
    Ok(found
        .into_iter()
        .map(|entry| Found {
            unread: read.unread(entry.user_id.as_str()),
            blocked: blocked.contains(entry.user_id.as_str()),
            entry,
        })
        .collect())
}
