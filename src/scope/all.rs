//! `USERS_SCOPE=all` (the default, the Part IV protocol): `users` lists every stored user,
//! built from this node's in-memory [`Directory`], and every socket hears of every arrival and
//! departure: this node's sockets from this node, the other nodes through the
//! [`PresenceChannel`], each applying it to its own directory too.

use std::time::Duration;

use socketioxide::{SocketIo, adapter::Adapter, extract::SocketRef, operators::BroadcastOperators};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::users::{UsersError, on_connect_only, refuse_users};
use crate::{
    directory::{self, Directory, PresenceChannel},
    domain::{Message, ReadMarks, ReadView, Session, UserId},
    metrics::Metrics,
    socket::{AppState, payloads::UserEvent},
    store::redis::{ChannelMessage, PubSub},
};

/// How long a connect waits for the directory's first load. It waits only if that listing
/// failed (a node does not start without Redis, so Redis went away just after it started):
/// this connect has just written its session, so Redis answers again, and the loader retries
/// every second. Waiting rather than falling back to listing Redis per connect, which would
/// put the SCAN of every session the directory exists to avoid on each user joining then.
const LOAD_WAIT: Duration = Duration::from_secs(10);

pub struct All {
    /// Every user, in memory: what `users` is built from.
    directory: Directory,
    /// Where this node announces its users' arrivals and departures to every node.
    presence: PresenceChannel,
}

impl All {
    /// Subscribes to the presence channel before the directory's first listing starts (in
    /// [`All::spawn`]), so that no announcement falls between the two; what other nodes
    /// publish on it comes out of the returned receiver.
    pub(super) async fn new(
        pubsub: &PubSub,
        node_id: &str,
        metrics: &Metrics,
    ) -> redis::RedisResult<(Self, mpsc::Receiver<ChannelMessage>)> {
        let (presence, events) =
            PresenceChannel::subscribe(pubsub.clone(), node_id.to_owned()).await?;
        let directory = Directory::new(metrics.clone());
        Ok((
            Self {
                directory,
                presence,
            },
            events,
        ))
    }

    /// The directory's first load and resync, and the delivery of other nodes' presence events.
    pub(super) fn spawn<A: Adapter>(
        &self,
        io: SocketIo<A>,
        events: mpsc::Receiver<ChannelMessage>,
        state: &AppState,
        resync_every: Duration,
        resumed: watch::Receiver<u64>,
    ) -> Vec<JoinHandle<()>> {
        let (node_id, metrics) = (&state.node_id, &state.metrics);
        let resync = directory::spawn_resync(
            self.directory.clone(),
            state.sessions.clone(),
            resync_every,
            resumed,
            metrics.clone(),
        );
        let delivery = directory::spawn_delivery(
            io,
            events,
            self.directory.clone(),
            node_id.clone(),
            metrics.clone(),
        );
        vec![resync, delivery]
    }

    pub(super) async fn welcome<A: Adapter>(
        &self,
        socket: SocketRef<A>,
        session: &Session,
        state: &AppState,
    ) {
        // Announced before `users` goes out: once a client holds its `users`, its arrival is
        // in the other nodes' directories' way, so whoever joins after it finds it there.
        let local = socket.broadcast().local();
        let announce = self.announce_online(local, session, state);
        let own = tokio::join!(self.own_history(session, state), announce).0;
        self.send_users(socket, session, state, own);
    }

    /// Sends `users`: the directory's entries with this user's own history, serialized by the
    /// emit itself (once, under the directory's read lock).
    fn send_users<A: Adapter>(
        &self,
        socket: SocketRef<A>,
        session: &Session,
        state: &AppState,
        own: Result<OwnHistory, UsersError>,
    ) {
        let own = match own {
            Ok(own) => own,
            Err(err) => return refuse_users(socket, &err),
        };
        let me = session.user_id.as_str();
        let read = ReadView::new(&own.marks, &own.history, me);
        let history = on_connect_only(own.history, session, state);
        self.directory
            .with_users(session, &history, &read, &own.blocked, |users| {
                socket.emit("users", users)
            })
            .ok();
    }

    /// This user's history and read marks (the only Redis reads, at once), once the directory
    /// is loaded; the rest of `users` is the directory.
    async fn own_history(
        &self,
        session: &Session,
        state: &AppState,
    ) -> Result<OwnHistory, UsersError> {
        let (loaded, history, marks, blocked) = tokio::join!(
            self.directory.wait_loaded(LOAD_WAIT),
            state.messages.for_user(&session.user_id),
            state.read_marks.of(&session.user_id),
            state.blocks.of(session.user_id.as_str()),
        );
        let (history, marks, blocked) = (history?, marks?, blocked?);
        if !loaded {
            return Err(UsersError::NotLoaded);
        }
        Ok(OwnHistory {
            history,
            marks,
            blocked,
        })
    }

    /// Drops an erased user from this node's directory.
    pub(super) fn forget(&self, user: &str) {
        self.directory.forget(user);
    }

    /// This node's directory and its sockets in `local` at once, the other nodes through the
    /// presence channel.
    pub(super) async fn announce_online<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        session: &Session,
        state: &AppState,
    ) {
        self.directory
            .connected(&session.user_id, session.username.as_str());
        let online = UserEvent::announced(&session.user_id, session.username.as_str(), true);
        self.announce(local, "user connected", &online, state).await;
    }

    pub(super) async fn announce_offline<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        user: &UserId,
        state: &AppState,
    ) {
        self.directory.disconnected(user.as_str());
        self.announce(local, "user disconnected", user, state).await;
    }

    /// Emits `event` to `local`, then publishes it on the presence channel for the other
    /// nodes. The JSON is encoded once, here; each node emits it as it came (a `RawValue`),
    /// and socketioxide's local broadcast encodes the packet once for every socket it reaches
    /// (socketioxide-core 0.20, `CoreLocalAdapter::broadcast`): a join costs each node one
    /// encoding, not one per socket.
    async fn announce<A: Adapter>(
        &self,
        local: BroadcastOperators<A>,
        event: &str,
        data: &impl serde::Serialize,
        state: &AppState,
    ) {
        let json = match serde_json::value::to_raw_value(data) {
            Ok(json) => json,
            Err(err) => return tracing::error!(event, %err, "cannot encode an announcement"),
        };
        let sent = local.emit(event, &*json).await;
        state.metrics.emitted(event, sent);
        if let Err(err) = self.presence.publish(event, json.get()).await {
            state.metrics.adapter_error(event, &err);
        }
    }
}

/// What `users` takes from Redis: this user's history, read marks and block list.
struct OwnHistory {
    history: Vec<Message>,
    marks: ReadMarks,
    blocked: std::collections::HashSet<String>,
}
