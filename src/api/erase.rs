//! `DELETE /api/users/{userID}`: erasure (docs/protocol.md, "Server API"). The user's sessions,
//! history, contacts (both sides), read marks (both sides) and names go, every message it
//! SENT leaves its recipients' histories and conversation indexes, and its sockets are closed;
//! afterwards it is listed, found and restored nowhere. Messages it received stay in their
//! senders' histories.
//!
//! The keys sit on different slots of a cluster, so this is a sequence of single-key steps,
//! each idempotent (a Lua script per key where a key is read and rewritten), in an order that
//! lets the whole run again after a failure part-way: the user's index key, by which the
//! erasure knows the user, goes last.

use std::{collections::BTreeSet, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, State, rejection::PathRejection},
    routing::delete,
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{ApiState, reply::ApiError, users::user_in};
use crate::domain::UserId;

pub(super) fn router<A: Adapter>(state: Arc<ApiState<A>>) -> Router {
    Router::new()
        .route("/users/{user}", delete(erase::<A>))
        .with_state(state)
}

async fn erase<A: Adapter>(
    State(api): State<Arc<ApiState<A>>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = user_in(path)?;
    let storage = |err| ApiError::storage(&err);
    // Known by its index key, not by its session: a run that failed after deleting the
    // sessions still finds the user, and finishes the job.
    let indexed = api.app.users.session_of(&user).await.map_err(storage)?;
    let Some(indexed) = indexed else {
        return Err(ApiError::UnknownUser);
    };
    // Sessions first: no sessionID restores the user from here on, and the departures of the
    // sockets closed below find nothing to save (no session written back, no key refreshed).
    let mut sessions = api.app.sessions.of_user(&user).await.map_err(storage)?;
    sessions.push(indexed.expose().to_owned());
    api.app.sessions.delete(&sessions).await.map_err(storage)?;
    // Boxed: closing runs the sockets' disconnect handlers within this task, and their futures
    // and this one's on one stack overflowed a 2 MiB worker stack in a debug build.
    Box::pin(close_sockets_here(&api, &user)).await;
    // And on every other node, as `disconnectSockets` does.
    api.emitter
        .disconnect_user(user.as_str())
        .await
        .map_err(storage)?;
    // Whoever hears of the user (its contacts, still stored, in that scope) sees it offline.
    let state = &api.app;
    Box::pin(state.scope.announce_offline(api.io.local(), &user, state)).await;
    let peers = peers_of(&api, &user).await?;
    state
        .messages
        .erase_sent(&user, &peers)
        .await
        .map_err(storage)?;
    api.contacts
        .forget(user.as_str(), &peers)
        .await
        .map_err(storage)?;
    state
        .read_marks
        .forget(&user, &peers)
        .await
        .map_err(storage)?;
    state.blocks.forget(user.as_str()).await.map_err(storage)?;
    state
        .messages
        .delete_history(&user)
        .await
        .map_err(storage)?;
    state.users.forget(&user).await.map_err(storage)?;
    state.scope.forget(user.as_str());
    tracing::info!(%user, "server API: user erased");
    Ok(Json(json!({})))
}

/// Everyone the user may have left a trace with: whom its history, its contact set and its
/// read marks name.
async fn peers_of<A: Adapter>(api: &ApiState<A>, user: &UserId) -> Result<Vec<String>, ApiError> {
    let storage = |err| ApiError::storage(&err);
    let me = user.as_str();
    let (history, contacts, marks) = tokio::join!(
        api.app.messages.for_user(user),
        api.contacts.of(me),
        api.app.read_marks.of(user),
    );
    let (history, contacts, marks) = (
        history.map_err(storage)?,
        contacts.map_err(storage)?,
        marks.map_err(storage)?,
    );
    let peers: BTreeSet<String> = history
        .iter()
        .map(|message| message.peer_of(me).to_owned())
        .chain(contacts)
        .chain(marks.mine.into_keys())
        .chain(marks.theirs.into_keys())
        .filter(|peer| peer != me)
        .collect();
    Ok(peers.into_iter().collect())
}

/// Closes the user's sockets on this node (the clients see `io server disconnect`).
async fn close_sockets_here<A: Adapter>(api: &ApiState<A>, user: &UserId) {
    let closed = api
        .io
        .local()
        .within(user.as_str().to_owned())
        .disconnect()
        .await;
    if let Err(err) = closed {
        tracing::warn!(error = ?err, "server API: cannot close an erased user's sockets");
    }
}
