//! The Socket.IO side: who may connect ([`handshake`]), what a connected socket may do
//! ([`handlers`], [`private_message`], which stores and delivers through [`send`], the one write
//! path the server API shares) and when a user goes offline ([`presence`]).

pub mod admission;
pub mod block;
pub mod change_message;
pub mod expiry;
pub mod fetch_messages;
pub mod handlers;
pub mod handshake;
pub mod lifecycle;
pub mod liveness;
pub mod messages_read;
pub mod payloads;
pub mod presence;
pub mod private_message;
pub mod rate_limit;
pub mod refresh;
pub mod search;
pub mod send;
pub mod token;
pub mod typing;

use crate::{
    metrics::Metrics,
    routing::{Publisher, UserRoutes},
    scope::Scope,
    store::{MessageStore, PresenceStore, ReadMarkStore, SessionStore, UserIndex},
};

/// What every handler shares, registered once (behind one `Arc`) with
/// `SocketIo::builder().with_state(..)`.
pub struct AppState {
    pub sessions: SessionStore,
    pub messages: MessageStore,
    /// Each socket's presence entries, and this node's liveness.
    pub presence: PresenceStore,
    /// Largest accepted message content, in bytes.
    pub max_message_bytes: usize,
    pub rate_limit: rate_limit::RateLimit,
    /// Permits for messages being stored and forwarded on this node (load shedding).
    pub pending_messages: std::sync::Arc<tokio::sync::Semaphore>,
    pub max_sockets_per_user: usize,
    /// The node's connection cap and the per-address limit on new sessions.
    pub admission: admission::Admission,
    /// This node's identity in the presence fields, unique per process run.
    pub node_id: String,
    pub metrics: Metrics,
    /// This node's users and their channels.
    pub routes: UserRoutes,
    /// What to publish for users' events, on which channels (the no-echo rule), and the
    /// publication of those that no write of their own carries (typing, read marks, presence).
    pub publisher: Publisher,
    /// How much of each conversation `users` carries.
    pub history_on_connect: crate::settings::HistoryOnConnect,
    /// Who a user sees and hears about (`USERS_SCOPE`), with that scope's own state.
    pub scope: Scope,
    /// userID -> session, and the username index behind `search users`.
    pub users: UserIndex,
    /// How far each user has read each conversation.
    pub read_marks: ReadMarkStore,
    /// Who blocked whom (`block user`); a message's own writes check it, not this.
    pub blocks: crate::store::BlockStore,
    /// EDIT_WINDOW_SECS: how long after its timestamp a message may be edited (zero: never).
    pub edit_window: std::time::Duration,
    /// `AUTH=jwt`: the key and rules a handshake's token is checked with; `None`: `AUTH=session`.
    pub tokens: Option<token::TokenVerifier>,
    /// WEBHOOK_URL: the deliveries each message queues, and this node's worker.
    pub webhooks: crate::webhooks::Webhooks,
}
