//! `GET /api/users/{userID}` (who it is, whether it is online) and
//! `GET /api/users/{userID}/export` (everything stored about it, never a sessionID).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use axum::{
    Json, Router,
    extract::{Path, State, rejection::PathRejection},
    routing::get,
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{ApiState, path_user, reply::ApiError};
use crate::domain::UserId;

pub(super) fn router<A: Adapter>(state: Arc<ApiState<A>>) -> Router {
    Router::new()
        .route("/users/{user}", get(user::<A>))
        .route("/users/{user}/export", get(export::<A>))
        .with_state(state)
}

/// The userID of a path, percent-decoded by axum and checked.
pub(super) fn user_in(path: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(raw) = path.map_err(|_| ApiError::BadRequest("userID must be a userID".into()))?;
    path_user(&raw)
}

async fn user<A: Adapter>(
    State(api): State<Arc<ApiState<A>>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = user_in(path)?;
    let entry = api.user(&user).await?;
    Ok(Json(json!(entry)))
}

async fn export<A: Adapter>(
    State(api): State<Arc<ApiState<A>>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = user_in(path)?;
    let entry = api.user(&user).await?;
    let me = user.as_str();
    let (history, contacts, marks) = tokio::join!(
        api.app.messages.for_user(&user),
        api.contacts.of(me),
        api.app.read_marks.of(&user),
    );
    let storage = |err| ApiError::storage(&err);
    let (history, contacts, marks) = (
        history.map_err(storage)?,
        contacts.map_err(storage)?,
        marks.map_err(storage)?,
    );
    // The contact set is written in the `contacts` scope only; whoever the user exchanged a
    // message with is a contact by the protocol's definition in either scope.
    let contacts: BTreeSet<&str> = contacts
        .iter()
        .map(String::as_str)
        .chain(history.iter().map(|message| message.peer_of(me)))
        .filter(|peer| *peer != me)
        .collect();
    let reads: BTreeMap<&String, &String> = marks.mine.iter().collect();
    Ok(Json(json!({
        "user": { "userID": entry.user_id, "username": entry.username },
        "messages": history,
        "contacts": contacts,
        "reads": reads,
    })))
}
