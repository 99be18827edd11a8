//! The connect middleware: a place on this node, then restore a session by its sessionID,
//! else create one from a username (within the address's quota of new sessions), else refuse.
//! Nothing is sent to the socket before this succeeds.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use serde_json::Value;
use socketioxide::{
    adapter::Adapter,
    extract::{SocketRef, State, TryData},
};

use super::{
    AppState,
    token::{Identity, InvalidToken, TokenVerifier},
};
use crate::{
    client_addr::ClientAddr,
    domain::{Session, SessionId, Username},
};

/// Why a handshake was refused; the `Display` text is what the client's `connect_error` shows.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The demo client matches this exact text to send the user back to the username screen.
    #[error("invalid username")]
    InvalidUsername,
    /// `AUTH=jwt`: no token, or one that does not name a user (see `token::InvalidToken`).
    #[error("invalid token")]
    InvalidToken,
    #[error("too many connections for this user")]
    TooManySockets,
    /// This client address created NEW_SESSIONS_PER_MINUTE sessions (plus the burst) lately.
    #[error("too many new sessions")]
    TooManyNewSessions,
    /// This node holds MAX_CONNECTIONS connections.
    #[error("server full")]
    ServerFull,
    #[error("service unavailable, retry later")]
    Unavailable,
}

impl HandshakeError {
    /// The `reason` label of `privmsg_handshakes_refused_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidUsername => "invalid_username",
            Self::InvalidToken => "invalid_token",
            Self::TooManySockets => "too_many_sockets",
            Self::TooManyNewSessions => "too_many_new_sessions",
            Self::ServerFull => "server_full",
            Self::Unavailable => "unavailable",
        }
    }
}

/// `AUTH=jwt`: when the handshake's token stops being accepted, kept in the socket's
/// extensions until the connect handler arms the socket's [`super::expiry`].
#[derive(Debug, Clone, Copy)]
pub struct TokenExpires(pub std::time::SystemTime);

/// The name a user's stored session had before its token renamed it (`AUTH=jwt`), kept in
/// the socket's extensions from the handshake to the socket's arrival, where the username
/// index drops it: else `search users` would find the user under a name it no longer has.
#[derive(Debug, Clone)]
pub struct Renamed(pub Username);

pub async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(state): State<Arc<AppState>>,
) -> Result<(), HandshakeError> {
    let admitted = admit(&socket, auth.ok(), &state).await;
    if let Err(refusal) = &admitted {
        let reason = refusal.metric_label();
        state
            .metrics
            .handshakes_refused
            .with_label_values(&[reason])
            .inc();
    }
    admitted
}

async fn admit<A: Adapter>(
    socket: &SocketRef<A>,
    auth: Option<Value>,
    state: &AppState,
) -> Result<(), HandshakeError> {
    // First, before any Redis work: a full node refuses at once. Restored sessions count too,
    // since what a connection costs the node does not depend on who it is.
    let slot = state
        .admission
        .connection_slot()
        .ok_or(HandshakeError::ServerFull)?;
    // A malformed auth payload is treated like a missing one: it can still fall through to
    // `invalid username`, the one refusal the client knows how to handle.
    let auth = auth.unwrap_or(Value::Null);
    let (session, renamed, expires) = match &state.tokens {
        Some(tokens) => {
            let identity = identity_of(&auth, tokens)?;
            let expires = TokenExpires(identity.expires_at);
            let (session, renamed) = session_of_token(&auth, identity, state).await?;
            (session, renamed, Some(expires))
        }
        None => (session_of_username(socket, &auth, state).await?, None, None),
    };
    tracing::debug!(sid = %socket.id, user = %session.user_id, "handshake accepted");
    if let Some(expires) = expires {
        socket.extensions.insert(expires);
    }
    if let Some(renamed) = renamed {
        socket.extensions.insert(renamed);
    }
    socket.extensions.insert(Arc::new(session));
    socket.extensions.insert(slot);
    Ok(())
}

/// `AUTH=session`: the session `auth.sessionID` names, else a new one for `auth.username`.
async fn session_of_username<A: Adapter>(
    socket: &SocketRef<A>,
    auth: &Value,
    state: &AppState,
) -> Result<Session, HandshakeError> {
    Ok(match restore(auth, state).await? {
        Some(session) => session,
        None => {
            let username = auth
                .get("username")
                .and_then(Value::as_str)
                .and_then(Username::parse)
                .ok_or(HandshakeError::InvalidUsername)?;
            // Only creating a session is limited: it stores a user that every later `users`
            // carries for a day, whereas a restore adds nothing.
            if !state.admission.may_create_session(client_key(socket)) {
                return Err(HandshakeError::TooManyNewSessions);
            }
            Session::create(username)
        }
    })
}

/// `AUTH=jwt`: the user a valid `auth.token` names, in the session `auth.sessionID` names if
/// it is that user's (another tab's), else in the session the user already has (made on any
/// node), else in a new one. The username is the token's, whatever the session held: the name
/// the session held, when another, comes back as [`Renamed`].
async fn session_of_token(
    auth: &Value,
    identity: Identity,
    state: &AppState,
) -> Result<(Session, Option<Renamed>), HandshakeError> {
    let named = auth
        .get("sessionID")
        .and_then(Value::as_str)
        .and_then(SessionId::parse);
    if let Some(id) = named
        && let Some(own) = own_session(id, &identity, state).await?
    {
        return Ok(own);
    }
    let known = state.users.session_of(&identity.user_id).await;
    if let Some(id) = known.map_err(unavailable)?
        && let Some(own) = own_session(id, &identity, state).await?
    {
        return Ok(own);
    }
    let session = Session {
        id: SessionId::generate(),
        user_id: identity.user_id.clone(),
        username: identity.username.clone(),
    };
    if state.users.claim(&session).await.map_err(unavailable)? {
        return Ok((session, None));
    }
    // Another node claimed the user at the same moment (or a key outlived its session): the
    // session the key names is this user's, saved by this connect if it is not yet.
    let claimed = state.users.session_of(&identity.user_id).await;
    let id = claimed
        .map_err(unavailable)?
        .ok_or(HandshakeError::Unavailable)?;
    Ok((Session { id, ..session }, None))
}

/// The user a valid `auth.token` names.
fn identity_of(auth: &Value, tokens: &TokenVerifier) -> Result<Identity, HandshakeError> {
    auth.get("token")
        .and_then(Value::as_str)
        .ok_or(InvalidToken)
        .and_then(|token| tokens.verify(token))
        .map_err(|InvalidToken| HandshakeError::InvalidToken)
}

/// The stored session `id` names, if it belongs to the token's user, renamed as the token
/// says (with the name it had, if another); `TooManySockets` if that user has all its sockets
/// open already.
async fn own_session(
    id: SessionId,
    identity: &Identity,
    state: &AppState,
) -> Result<Option<(Session, Option<Renamed>)>, HandshakeError> {
    let found = state.sessions.find(&id).await.map_err(unavailable)?;
    match found {
        Some((session, sockets)) if session.user_id == identity.user_id => {
            if sockets >= state.max_sockets_per_user {
                return Err(HandshakeError::TooManySockets);
            }
            let renamed =
                (session.username != identity.username).then(|| Renamed(session.username.clone()));
            let session = Session {
                username: identity.username.clone(),
                ..session
            };
            Ok(Some((session, renamed)))
        }
        _ => Ok(None),
    }
}

fn unavailable(err: crate::store::StoreError) -> HandshakeError {
    tracing::error!(error = ?err, "cannot look up a session");
    HandshakeError::Unavailable
}

/// Whom the new-session limit counts this socket under. A request that reached Socket.IO
/// without going through the address middleware (none in this server) shares one key with
/// every other such request: limited together rather than not at all.
fn client_key<A: Adapter>(socket: &SocketRef<A>) -> IpAddr {
    socket
        .req_parts()
        .extensions
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ClientAddr::limit_key)
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
    let found = state.sessions.find(&id).await.map_err(unavailable)?;
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
