//! What both scopes' `users` share: why it could not be built, what a socket that cannot have
//! it gets, and how much of the history it carries.

use std::sync::Arc;

use socketioxide::{adapter::Adapter, extract::SocketRef};

use crate::{
    domain::{Message, Session, newest_per_conversation},
    socket::AppState,
    store::StoreError,
};

/// Why `users` could not be built.
#[derive(Debug, thiserror::Error)]
pub(super) enum UsersError {
    #[error("the directory of users is not loaded yet")]
    NotLoaded,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Contacts(#[from] Arc<StoreError>),
    #[error("cannot encode users")]
    Encode(#[from] serde_json::Error),
}

/// Drops a socket that cannot have `users` (it would show nobody).
pub(super) fn refuse_users<A: Adapter>(socket: SocketRef<A>, err: &UsersError) {
    tracing::error!(error = ?err, "cannot list users; dropping the socket");
    socket.disconnect().ok();
}

/// What of the history `users` carries (`HISTORY_ON_CONNECT`).
pub(super) fn on_connect_only(
    history: Vec<Message>,
    session: &Session,
    state: &AppState,
) -> Vec<Message> {
    match state.history_on_connect.0 {
        None => history,
        Some(n) => newest_per_conversation(history, session.user_id.as_str(), n),
    }
}
