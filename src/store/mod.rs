//! Typed Redis verbs. Handlers call these; no other module builds a Redis command or a key.
//!
//! Layout (shared with the Node server, see PROTOCOL.md):
//! - `session:{sessionID}`: hash `userID`, `username`, `connected`, with TTL;
//! - `messages:{userID}`: list of JSON messages, RPUSH / LRANGE, with TTL.

mod conn;
mod keys;
mod listing;
mod messages;
mod nodes;
mod redis_pool;
mod scripts;
mod sessions;

pub use conn::Conn;
pub use listing::SharedListing;
pub use messages::MessageStore;
pub use nodes::NodeStore;
pub use redis_pool::{RESPONSE_TIMEOUT, RedisPool, RedisTarget};
pub use sessions::{SessionStore, SocketTag, UserEntry};

/// What went wrong talking to Redis. Clients only ever see a short reason; the log gets this.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no Redis connection available")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("Redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected Redis reply")]
    Reply(#[from] redis::ParsingError),
    #[error("cannot encode a value for Redis")]
    Encode(#[from] serde_json::Error),
}

/// Answers whether Redis responds to PING, for `/readyz`.
pub async fn ping(pool: &RedisPool) -> Result<(), StoreError> {
    let mut conn = pool.get().await?;
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    Ok(())
}

/// Loads every Lua script at start-up, so the first calls are plain EVALSHA. Best effort:
/// `redis::Script` loads a script again whenever Redis answers NOSCRIPT.
pub async fn load_scripts(pool: &RedisPool) {
    let load = async {
        let mut conn = pool.get().await?;
        for script in scripts::ALL {
            script.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok::<_, StoreError>(())
    };
    if let Err(err) = load.await {
        tracing::warn!(error = ?err, "cannot load the Lua scripts now; they load on first use");
    }
}
