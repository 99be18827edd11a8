//! The server API (docs/protocol.md, "Server API"): what a backend beside the chat calls over HTTP,
//! at `/api/` on the client port, only when `API_KEY` is set. One router per group of
//! endpoints ([`messages`], [`users`], [`reach`], [`erase`]); in front of all of them the [`guard`] (the
//! bearer key, and the count per endpoint and status) and a bound on the body.
//!
//! The endpoints call the same verbs as the socket handlers: a message sent here takes the one
//! write path ([`crate::socket::send`]), what reaches a user's sockets on every node goes the
//! way a backend's `@socket.io/redis-emitter` goes ([`EmitterPublisher`]), and every store verb
//! is in its store.

mod erase;
mod guard;
pub mod keys;
mod messages;
mod reach;
mod reply;
mod users;

use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit, middleware};
use prometheus::{IntCounterVec, Opts};
use socketioxide::{SocketIo, adapter::Adapter};

pub use keys::ApiKeys;

use crate::{
    domain::UserId,
    emitter::EmitterPublisher,
    settings::Settings,
    socket::AppState,
    store::{ContactStore, RedisPool, UserEntry},
};
use reply::ApiError;

/// Room, in bytes, for everything of a `POST /api/messages` body but its content: two userIDs
/// (128 characters, up to 4 bytes each, a few escaped) and the field names, quotes and blanks.
const ENVELOPE_ROOM: usize = 4096;

/// The largest body the API reads: a message whose content is at MAX_MESSAGE_BYTES with every
/// byte written as a six-byte JSON escape (`\u0001`), plus [`ENVELOPE_ROOM`]. Anything larger
/// cannot hold an acceptable message, so it is refused (413) before it is read whole; a body
/// within it whose content is too long gets the socket event's own reason (400).
pub fn max_body_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(6)
        .saturating_add(ENVELOPE_ROOM)
}

/// What the endpoints share.
pub struct ApiState<A: Adapter> {
    pub app: Arc<AppState>,
    /// This node's Socket.IO server: to emit to its sockets and close them.
    pub io: SocketIo<A>,
    /// The contact sets (read by export, cleaned by erasure, in either scope).
    pub contacts: ContactStore,
    /// A user's sockets on every node, this one included: emits and disconnections.
    pub emitter: EmitterPublisher,
}

/// The API's router, to nest at `/api`. Its counter `privmsg_api_requests_total` is registered
/// with the node's metrics.
pub fn router<A: Adapter>(state: ApiState<A>, keys: ApiKeys) -> Router {
    let requests = requests_metric(&state.app.metrics);
    let body_limit = max_body_bytes(state.app.max_message_bytes);
    let guard = guard::Guard {
        keys: Arc::new(keys),
        requests,
    };
    let state = Arc::new(state);
    Router::new()
        .merge(messages::router(state.clone()))
        .merge(users::router(state.clone()))
        .merge(reach::router(state.clone()))
        .merge(erase::router(state))
        .fallback(|| async { ApiError::NoSuchEndpoint })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(guard, guard::guard))
}

/// The API's router when `settings` set API_KEY (`None`: no `/api/`), on the node's state and
/// Socket.IO server.
pub fn from_settings<A: Adapter>(
    settings: &Settings,
    app: &Arc<AppState>,
    pool: &RedisPool,
    io: &SocketIo<A>,
) -> Result<Option<Router>, String> {
    let Some(keys) = settings.api_keys()? else {
        return Ok(None);
    };
    let state = ApiState {
        app: app.clone(),
        io: io.clone(),
        contacts: ContactStore::new(pool.clone(), settings.contacts_ttl()),
        emitter: EmitterPublisher::new(pool.clone()),
    };
    tracing::info!("server API at /api/");
    Ok(Some(router(state, keys)))
}

impl<A: Adapter> ApiState<A> {
    /// The stored user a userID names (its session's username and status), else 404.
    async fn user(&self, user: &UserId) -> Result<UserEntry, ApiError> {
        let found = self
            .app
            .users
            .entries(&[user.as_str()])
            .await
            .map_err(|err| ApiError::storage(&err))?;
        found
            .into_iter()
            .flatten()
            .next()
            .ok_or(ApiError::UnknownUser)
    }
}

/// A userID from a path (percent-decoded already), checked like every other userID.
fn path_user(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or_else(|| ApiError::BadRequest("userID must be a userID".into()))
}

/// `privmsg_api_requests_total`, registered with the node's metrics (apart from the router so
/// that the configuration reference lists it without building one).
pub fn requests_metric(metrics: &crate::metrics::Metrics) -> IntCounterVec {
    let requests = IntCounterVec::new(
        Opts::new(
            "api_requests_total",
            "Server API requests, by endpoint and status",
        ),
        &["endpoint", "status"],
    )
    .expect("valid metric");
    metrics.register(Box::new(requests.clone()));
    requests
}
