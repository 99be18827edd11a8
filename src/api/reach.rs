//! `POST /api/users/{userID}/emit` `{ event, data }` and `POST /api/users/{userID}/disconnect`
//! `{ revoke? }`: a user's sockets on every node, reached the way a backend's
//! `@socket.io/redis-emitter` reaches them (the same packets on the same channels, received by
//! every node holding one of them, this one included), so there is one path to test and to
//! watch (`privmsg_emitter_packets_total`).

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, State,
        rejection::{BytesRejection, PathRejection},
    },
    http::StatusCode,
    routing::post,
};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{
    ApiState,
    reply::{ApiError, JsonBody},
    users::user_in,
};
use crate::emitter::RESERVED_EVENTS;

/// What a backend may not send as an event: the protocol's own events (a client would take
/// them for the server's word: a message nobody stored, a presence nobody has), and the names
/// Socket.IO keeps for itself ([`RESERVED_EVENTS`]).
const PROTOCOL_EVENTS: [&str; 9] = [
    "session",
    "users",
    "user connected",
    "user disconnected",
    "private message",
    "messages read",
    "typing",
    "message deleted",
    "message edited",
];

/// How long an event name may be, in characters.
const MAX_EVENT_CHARS: usize = 64;

pub(super) fn router<A: Adapter>(state: Arc<ApiState<A>>) -> Router {
    Router::new()
        .route("/users/{user}/emit", post(emit::<A>))
        .route("/users/{user}/disconnect", post(disconnect::<A>))
        .with_state(state)
}

async fn emit<A: Adapter>(
    State(api): State<Arc<ApiState<A>>>,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = user_in(path)?;
    let (event, data) = event_of(&body)?;
    api.user(&user).await?;
    (api.emitter)
        .emit_to_user(user.as_str(), event, data)
        .await
        .map_err(|err| ApiError::storage(&err))?;
    Ok((StatusCode::ACCEPTED, Json(json!({}))))
}

/// The `event` and `data` of an emit body, checked.
fn event_of(body: &Value) -> Result<(&str, &Value), ApiError> {
    let bad = |reason: &str| ApiError::BadRequest(reason.to_owned());
    let fields = body
        .as_object()
        .ok_or_else(|| bad("invalid payload: expected an object { event, data }"))?;
    let event = fields
        .get("event")
        .and_then(Value::as_str)
        .filter(|event| (1..=MAX_EVENT_CHARS).contains(&event.chars().count()))
        .ok_or_else(|| bad("event must be a string of 1 to 64 characters"))?;
    if PROTOCOL_EVENTS.contains(&event) || RESERVED_EVENTS.contains(&event) {
        return Err(bad("reserved event"));
    }
    let data = fields.get("data").ok_or_else(|| bad("data is missing"))?;
    Ok((event, data))
}

async fn disconnect<A: Adapter>(
    State(api): State<Arc<ApiState<A>>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = user_in(path)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        _ => ApiError::BadRequest("cannot read the body".into()),
    })?;
    let revoke = revoke_in(&body)?;
    api.user(&user).await?;
    let storage = |err| ApiError::storage(&err);
    if revoke {
        // Sessions first, so that no sessionID restores the user once its sockets are closed.
        let sessions = api.app.sessions.of_user(&user).await.map_err(storage)?;
        api.app.sessions.delete(&sessions).await.map_err(storage)?;
        api.app.users.unlink(&user).await.map_err(storage)?;
    }
    (api.emitter)
        .disconnect_user(user.as_str())
        .await
        .map_err(storage)?;
    Ok(Json(json!({})))
}

/// `revoke` of a disconnect body: the body is optional (none, or `{}`, is `revoke: false`).
fn revoke_in(body: &[u8]) -> Result<bool, ApiError> {
    let bad = |reason: &str| ApiError::BadRequest(reason.to_owned());
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("body is not JSON: {err}")))?;
    let fields = value
        .as_object()
        .ok_or_else(|| bad("invalid payload: expected an object { revoke? }"))?;
    match fields.get("revoke") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(revoke)) => Ok(*revoke),
        Some(_) => Err(bad("revoke must be a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emit_body_is_checked() {
        let ok = json!({ "event": "notice", "data": { "n": 1 } });
        assert_eq!(event_of(&ok).map(|(e, _)| e).ok(), Some("notice"));
        for (body, reason) in [
            (
                json!([]),
                "invalid payload: expected an object { event, data }",
            ),
            (
                json!({ "data": 1 }),
                "event must be a string of 1 to 64 characters",
            ),
            (
                json!({ "event": "", "data": 1 }),
                "event must be a string of 1 to 64 characters",
            ),
            (
                json!({ "event": "x".repeat(65), "data": 1 }),
                "event must be a string of 1 to 64 characters",
            ),
            (
                json!({ "event": "private message", "data": 1 }),
                "reserved event",
            ),
            (
                json!({ "event": "disconnect", "data": 1 }),
                "reserved event",
            ),
            (json!({ "event": "notice" }), "data is missing"),
        ] {
            let refused = event_of(&body).err().map(|err| err.to_string());
            assert_eq!(refused.as_deref(), Some(reason), "{body}");
        }
    }

    #[test]
    fn a_disconnect_body_is_optional() {
        assert!(!revoke_in(b"").unwrap_or(true));
        assert!(!revoke_in(b"{}").unwrap_or(true));
        assert!(revoke_in(br#"{"revoke":true}"#).unwrap_or(false));
        assert!(revoke_in(br#"{"revoke":"yes"}"#).is_err());
        assert!(revoke_in(b"[1]").is_err());
        assert!(revoke_in(b"nope").is_err());
    }
}
