//! Typed Redis verbs (`sessions.find`, `messages.append`, `presence.connect`, ...). Handlers call
//! these; no other module builds a Redis command or a key. The plumbing under them (connection
//! face for standalone and cluster, Lua scripts, key names) is in [`redis`].
//!
//! Layout (shared with the Node server, see docs/protocol.md):
//! - `session:{sessionID}`: hash `userID`, `username`, `connected`, with TTL;
//! - `messages:{userID}`: list of JSON messages, RPUSH / LRANGE, with TTL;
//! - extensions: `privmsg:user:{userID}` and `privmsg:usernames` ([`users`]),
//!   `privmsg:contacts:{userID}` ([`contacts`]), the presence fields and node keys ([`presence`]), the conversation
//!   indexes `privmsg:conversation:{a}:{b}` ([`pages`]) and the read marks `privmsg:read:{userID}`, the block lists `privmsg:blocks:…` ([`blocks`]).

mod blocks;
mod cluster_append;
mod cluster_batch;
mod contacts;
mod message_batch;
mod message_wait;
mod messages;
mod pages;
pub mod presence;
mod read_marks;
pub mod redis;
pub mod replicas;
mod sessions;
mod undo;
pub mod users;

pub use blocks::{BlockStore, Blocked};
pub use cluster_append::APPEND_TIMEOUT;
pub use contacts::ContactStore;
pub use message_wait::{Master, Waiter};
pub use messages::{Found, MessageLimits, MessageLog, MessageStore, Record, Stored};
pub use pages::Page;
pub use presence::{Departure, PresenceStore, SocketTag};
pub use read_marks::ReadMarkStore;
pub use redis::{Conn, RedisKind, RedisPool, RedisTarget, SentinelTarget, load_scripts, ping};
pub use sessions::{SessionStore, UserEntry};
pub use users::UserIndex;

/// What went wrong talking to Redis. Clients only ever see a short reason; the log gets this.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no Redis connection available")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("Redis command failed")]
    Redis(#[from] ::redis::RedisError),
    #[error("unexpected Redis reply")]
    Reply(#[from] ::redis::ParsingError),
    /// The call that carried this message with others failed as a whole (nothing of it was
    /// stored); every message of it gets this.
    #[error("the batch of writes failed")]
    Batch(#[source] std::sync::Arc<StoreError>),
    /// Redis refused this one write (a key of another type): nothing of it was stored.
    #[error("Redis refused the write: {0}")]
    Refused(String),
    /// REDIS_WAIT_REPLICAS: the replicas did not confirm the batch in time; its messages
    /// were taken back (neither kept nor delivered).
    #[error("storage unavailable: {0}")]
    NotReplicated(String),
    #[error("cannot encode a value for Redis")]
    Encode(#[from] serde_json::Error),
}

impl StoreError {
    /// The node is stopping: its batch task is gone, and the write did not run.
    pub(crate) fn stopping() -> Self {
        Self::Refused("the node is stopping".into())
    }
}
