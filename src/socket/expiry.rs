//! `AUTH=jwt`: a socket lives as long as its token (`exp` plus `JWT_LEEWAY_SECS`), unless the
//! client sends a fresher one first with `refresh token` `{ token }` (docs/protocol.md,
//! "Client to server", `refresh token`).
//!
//! One task per socket, parked on one `tokio::time::sleep` and a `watch` receiver: a refresh
//! moves the deadline through the channel, the task resets its sleep. Tokio's timer is already
//! a hierarchical wheel, so an idle socket's deadline costs an entry in it (O(1) to insert and
//! move) and its parked task a few hundred bytes, and no CPU until it fires or moves; a wheel
//! of our own would save the task's bytes at the cost of a second timer to get right. The
//! disconnect handler drops the channel's sender ([`stop`]), which ends the task at once.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde_json::{Value, json};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Extension, SocketRef, State},
};
use tokio::{sync::watch, time::Instant};

use super::{AppState, rate_limit::Metered, token::InvalidToken};
use crate::domain::Session;

/// When the socket's token stops being accepted, set by the handshake (its token's) and moved
/// on by `refresh token`. Kept in the socket's extensions.
#[derive(Clone)]
pub struct Expiry(Arc<watch::Sender<SystemTime>>);

/// Arms the socket's expiry: the socket is disconnected at `expires_at`, or at the later
/// moment a refresh sets.
pub fn watch<A: Adapter>(socket: &SocketRef<A>, expires_at: SystemTime) {
    let (deadline, mut changes) = watch::channel(expires_at);
    socket.extensions.insert(Expiry(Arc::new(deadline)));
    let socket = socket.clone();
    tokio::spawn(async move {
        let sleep = tokio::time::sleep_until(instant_of(expires_at));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                changed = changes.changed() => {
                    // The sender is gone: the socket left (or was never armed for good).
                    if changed.is_err() {
                        return;
                    }
                    let expires_at = *changes.borrow_and_update();
                    sleep.as_mut().reset(instant_of(expires_at));
                }
            }
        }
        if socket.connected() {
            tracing::debug!(sid = %socket.id, "token expired; disconnecting");
            socket.disconnect().ok();
        }
    });
}

/// Ends the socket's expiry task (the disconnect handler calls it).
pub fn stop<A: Adapter>(socket: &SocketRef<A>) {
    socket.extensions.remove::<Expiry>();
}

/// `refresh token` `{ token }`: answered `{}` when the token is valid and names the socket's
/// user (the socket then lives until the later of the two expiries), else `{ error: "invalid
/// token" }` and the old expiry stays in force. In `AUTH=session` no token is valid, so every
/// refresh gets that error (and the socket, which has no token to expire, stays open). A
/// refresh over the socket's message rate is not verified: it gets the same error.
pub async fn on_refresh_token<A: Adapter>(
    socket: SocketRef<A>,
    payload: Metered<Value>,
    ack: AckSender<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    let reply = match refresh(&socket, payload, &session, &state) {
        Ok(()) => ack.send(&json!({})),
        Err(InvalidToken) => ack.send(&json!({ "error": InvalidToken.to_string() })),
    };
    if let Err(err) = reply {
        tracing::debug!(sid = %socket.id, error = ?err, "cannot answer a token refresh");
    }
}

fn refresh<A: Adapter>(
    socket: &SocketRef<A>,
    payload: Metered<Value>,
    session: &Session,
    state: &AppState,
) -> Result<(), InvalidToken> {
    let tokens = state.tokens.as_ref().ok_or(InvalidToken)?;
    let payload = payload
        .admit(&state.metrics, "refresh token")
        .and_then(Result::ok)
        .ok_or(InvalidToken)?;
    let token = payload
        .get("token")
        .and_then(Value::as_str)
        .ok_or(InvalidToken)?;
    let identity = tokens.verify(token)?;
    if identity.user_id != session.user_id {
        return Err(InvalidToken);
    }
    let expiry = socket.extensions.get::<Expiry>().ok_or(InvalidToken)?;
    // Never earlier: a valid token that expires sooner than the one in force takes nothing
    // away from it.
    expiry.0.send_if_modified(|current| {
        let later = identity.expires_at > *current;
        if later {
            *current = identity.expires_at;
        }
        later
    });
    Ok(())
}

/// The furthest a deadline is set: a token valid for longer still closes its socket after a
/// decade, rather than overflowing the clock.
const MAX_WAIT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The tokio instant of a wall-clock moment (now, if it has passed).
fn instant_of(moment: SystemTime) -> Instant {
    let left = moment
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + left.min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/protocol.md documents the event and its one refusal with the text a client receives.
    #[test]
    fn the_protocol_names_the_event_and_its_refusal_as_sent() {
        let readme = include_str!("../../docs/protocol.md");
        assert!(readme.contains("**`refresh token`** *(ours, `AUTH=jwt`)* `{ token }`"));
        let refusal = format!("{{ error: \"{InvalidToken}\" }}");
        assert!(readme.contains(&refusal), "{refusal}");
    }

    #[test]
    fn a_deadline_far_away_or_past_is_a_valid_instant() {
        let now = Instant::now();
        assert!(instant_of(SystemTime::UNIX_EPOCH) <= Instant::now());
        let far = SystemTime::now() + Duration::from_secs(u64::from(u32::MAX) * 100);
        assert!(instant_of(far) <= now + MAX_WAIT + Duration::from_secs(1));
    }
}
