//! The connection handler: record the socket, tell the user who they are and who is there,
//! tell everyone else the user is here.

use std::{sync::Arc, time::Duration};

use serde_json::value::RawValue;
use socketioxide::{
    adapter::Adapter,
    extract::{Extension, SocketRef, State},
};

use super::{
    AppState, contacts, fetch_messages,
    handshake::Renamed,
    lifecycle::{Lifecycle, Phase},
    messages_read,
    payloads::SessionEvent,
    presence, private_message,
    rate_limit::Bucket,
    search, typing,
};
use crate::{
    domain::{Message, ReadMarks, ReadView, Session, newest_per_conversation},
    settings::UsersScope,
    store::StoreError,
};

pub async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    Extension(session): Extension<Arc<Session>>,
    State(state): State<Arc<AppState>>,
) {
    socket.extensions.insert(Bucket::full(state.rate_limit));
    // Held until this socket's arrival is announced: its departure waits for it (see
    // `lifecycle`), so no observer hears of it online after it left.
    let lifecycle = Lifecycle::default();
    let mut phase = lifecycle.joining().await;
    socket.extensions.insert(lifecycle);
    socket.on("private message", private_message::on_private_message::<A>);
    socket.on("search users", search::on_search_users::<A>);
    socket.on("typing", typing::on_typing::<A>);
    socket.on("fetch messages", fetch_messages::on_fetch_messages::<A>);
    socket.on("messages read", messages_read::on_messages_read::<A>);
    socket.on_disconnect(presence::on_disconnect::<A>);
    socket.join(session.user_id.as_str().to_owned());

    // Taken, not read: only the first arrival drops the old name (a repair records again).
    let renamed = socket.extensions.remove::<Renamed>();
    if let Err(err) = presence::arrive(&socket, &session, renamed.as_ref(), &state).await {
        tracing::error!(error = ?err, "cannot save a session; dropping the socket");
        socket.disconnect().ok();
        return;
    }
    // A socket that closed before its disconnect handler was in place would leave its presence
    // field behind; undo it here, once (the handler, if it also runs, finds it left).
    if !socket.connected() {
        *phase = Phase::Left;
        presence::leave(&socket, &session, &state).await;
        return;
    }
    joined(socket, &session, &state).await;
    *phase = Phase::Live;
}

/// `session`, `users`, and the arrival's announcement, for a recorded socket.
async fn joined<A: Adapter>(socket: SocketRef<A>, session: &Session, state: &AppState) {
    let event = SessionEvent {
        session_id: session.id.expose(),
        user_id: &session.user_id,
    };
    socket.emit("session", &event).ok();

    let local = socket.broadcast().local();
    match state.scope {
        // Announced before `users` goes out: once a client holds its `users`, its arrival is
        // in the other nodes' directories' way, so whoever joins after it finds it there.
        UsersScope::All => {
            let announce = presence::announce_online(local, session, state);
            let own = tokio::join!(own_history(session, state), announce).0;
            send_directory_users(socket, session, state, own);
        }
        // `users` first: a contact's `users` reads presence from Redis, written already, so
        // nothing depends on this order, and the announcement's publications (one per
        // contact) then do not queue ahead of this user's reads. It goes to the contacts
        // `users` listed online (see `contacts::announce_online_to`).
        UsersScope::Contacts => {
            let (users, online) = match contacts_users(session, state).await {
                Ok((users, online)) => (Ok(users), online),
                Err(err) => (Err(err), Vec::new()),
            };
            if send_users(socket, users) {
                contacts::announce_online_to(local, session, state, online).await;
            }
        }
    }
}

/// Sends `users`, or drops a socket that cannot have it (it would show nobody); false then.
fn send_users<A: Adapter>(socket: SocketRef<A>, users: Result<Box<RawValue>, UsersError>) -> bool {
    match users {
        Ok(users) => socket.emit("users", &*users).is_ok(),
        Err(err) => refuse_users(socket, &err),
    }
}

/// Sends `users` in the `all` scope: the directory's entries with this user's own history,
/// serialized by the emit itself (once, under the directory's read lock).
fn send_directory_users<A: Adapter>(
    socket: SocketRef<A>,
    session: &Session,
    state: &AppState,
    own: Result<OwnHistory, UsersError>,
) -> bool {
    let own = match own {
        Ok(own) => own,
        Err(err) => return refuse_users(socket, &err),
    };
    let me = session.user_id.as_str();
    let read = ReadView::new(&own.marks, &own.history, me);
    let history = on_connect_only(own.history, session, state);
    state
        .directory
        .with_users(session, &history, &read, |users| {
            socket.emit("users", users)
        })
        .is_ok()
}

fn refuse_users<A: Adapter>(socket: SocketRef<A>, err: &UsersError) -> bool {
    tracing::error!(error = ?err, "cannot list users; dropping the socket");
    socket.disconnect().ok();
    false
}

/// How long a connect waits for the directory's first load. It waits only if that listing
/// failed (a node does not start without Redis, so Redis went away just after it started):
/// this connect has just written its session, so Redis answers again, and the loader retries
/// every second. Waiting rather than falling back to listing Redis per connect, which would
/// put the SCAN of every session the directory exists to avoid on each user joining then.
const LOAD_WAIT: Duration = Duration::from_secs(10);

/// Why `users` could not be built.
#[derive(Debug, thiserror::Error)]
enum UsersError {
    #[error("the directory of users is not loaded yet")]
    NotLoaded,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Contacts(#[from] Arc<StoreError>),
    #[error("cannot encode users")]
    Encode(#[from] serde_json::Error),
}

/// `users` in the `contacts` scope: this user and its contacts, with its history and read
/// marks; and which of those contacts are online.
async fn contacts_users(
    session: &Session,
    state: &AppState,
) -> Result<(Box<RawValue>, Vec<String>), UsersError> {
    let (loaded, marks) = tokio::join!(
        contacts::load_users(session, state),
        state.read_marks.of(&session.user_id),
    );
    let ((users, history), marks) = (loaded?, marks?);
    let read = ReadView::new(&marks, &history, session.user_id.as_str());
    let history = on_connect_only(history, session, state);
    let event = contacts::users_event(&users, &history, session, &read);
    let online = contacts::online(&users, session.user_id.as_str());
    Ok((serde_json::value::to_raw_value(&event)?, online))
}

/// What `users` takes from Redis in the `all` scope: this user's history and read marks (the
/// only Redis reads, at once), once the directory is loaded; the rest is the directory.
struct OwnHistory {
    history: Vec<Message>,
    marks: ReadMarks,
}

async fn own_history(session: &Session, state: &AppState) -> Result<OwnHistory, UsersError> {
    let (loaded, history, marks) = tokio::join!(
        state.directory.wait_loaded(LOAD_WAIT),
        state.messages.for_user(&session.user_id),
        state.read_marks.of(&session.user_id),
    );
    let (history, marks) = (history?, marks?);
    if !loaded {
        return Err(UsersError::NotLoaded);
    }
    Ok(OwnHistory { history, marks })
}

/// What of the history `users` carries (`HISTORY_ON_CONNECT`).
fn on_connect_only(history: Vec<Message>, session: &Session, state: &AppState) -> Vec<Message> {
    match state.history_on_connect.0 {
        None => history,
        Some(n) => newest_per_conversation(history, session.user_id.as_str(), n),
    }
}
