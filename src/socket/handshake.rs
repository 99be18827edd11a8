//! The connect middleware: restore a session by its sessionID, else create one from a username,
//! else refuse. Nothing is sent to the socket before this succeeds.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{SocketRef, State, TryData},
};

use super::AppState;
use crate::domain::{Session, SessionId, Username};

/// Why a handshake was refused; the `Display` text is what the client's `connect_error` shows.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The demo client matches this exact text to send the user back to the username screen.
    #[error("invalid username")]
    InvalidUsername,
    #[error("too many connections for this user")]
    TooManySockets,
    #[error("service unavailable, retry later")]
    Unavailable,
}

pub async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(state): State<Arc<AppState>>,
) -> Result<(), HandshakeError> {
    // A malformed auth payload is treated like a missing one: it can still fall through to
    // `invalid username`, the one refusal the client knows how to handle.
    let auth = auth.unwrap_or(Value::Null);
    let session = match restore(&auth, &state).await? {
        Some(session) => session,
        None => {
            let username = auth
                .get("username")
                .and_then(Value::as_str)
                .and_then(Username::parse)
                .ok_or(HandshakeError::InvalidUsername)?;
            Session::create(username)
        }
    };
    tracing::debug!(sid = %socket.id, user = %session.user_id, "handshake accepted");
    socket.extensions.insert(Arc::new(session));
    Ok(())
}

/// The stored session named by `auth.sessionID`, if any.
async fn restore(auth: &Value, state: &AppState) -> Result<Option<Session>, HandshakeError> {
    let Some(id) = auth
        .get("sessionID")
        .and_then(Value::as_str)
        .and_then(SessionId::parse)
    else {
        return Ok(None);
    };
    let found = state.sessions.find(&id).await.map_err(|err| {
        tracing::error!(error = ?err, "cannot look up a session");
        HandshakeError::Unavailable
    })?;
    match found {
        // Checked here rather than counted atomically: a burst of simultaneous connections may
        // pass the limit by a few, which is all it is for (bounding one user's footprint).
        Some((_, sockets)) if sockets >= state.max_sockets_per_user => {
            Err(HandshakeError::TooManySockets)
        }
        Some((session, _)) => Ok(Some(session)),
        None => Ok(None),
    }
}
