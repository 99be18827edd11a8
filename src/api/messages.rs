//! `POST /api/messages` `{ from, to, content }`: a message from a stored user, stored and
//! delivered exactly as if `from` had sent it from a socket (the one write path, the socket
//! event's checks and reasons), answered `201 { message }` once stored.

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::post};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::{
    ApiState,
    reply::{ApiError, JsonBody},
};
use crate::{
    domain::{OutgoingMessage, UserId},
    socket::send::{Here, Sender, send_message},
};

pub(super) fn router<A: Adapter>(state: Arc<ApiState<A>>) -> Router {
    Router::new()
        .route("/messages", post(send::<A>))
        .with_state(state)
}

async fn send<A: Adapter>(
    State(api): State<Arc<ApiState<A>>>,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    let fields = body.as_object().ok_or_else(|| {
        ApiError::BadRequest("invalid payload: expected an object { from, to, content }".into())
    })?;
    let from = fields
        .get("from")
        .and_then(Value::as_str)
        .and_then(UserId::parse)
        .ok_or_else(|| ApiError::BadRequest("from must be a userID".into()))?;
    // `content` and `to` as the socket event checks them, with its reasons.
    let outgoing = OutgoingMessage::parse(&body, api.app.max_message_bytes)?;
    let (sender, recipient) = tokio::join!(api.user(&from), api.user(&outgoing.to));
    let (sender, _) = (sender?, recipient?);
    let sender = Sender {
        user_id: &from,
        username: &sender.username,
        connected: sender.connected,
    };
    let sent = send_message(&api.app, &Here::all(&api.io), &sender, outgoing).await;
    let message = sent.inspect_err(|refusal| {
        let reason = refusal.metric_label();
        api.app
            .metrics
            .messages_refused
            .with_label_values(&[reason])
            .inc();
    })?;
    api.app.metrics.messages_accepted.inc();
    Ok((StatusCode::CREATED, Json(json!({ "message": message }))))
}
