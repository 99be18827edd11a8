//! Typed Redis verbs. Handlers call these; no other module builds a Redis command or a key.
//!
//! Layout (shared with the Node server, see PROTOCOL.md):
//! - `session:{sessionID}`: hash `userID`, `username`, `connected`, with TTL;
//! - `messages:{userID}`: list of JSON messages, RPUSH / LRANGE, with TTL.

mod keys;
mod messages;
mod scripts;
mod sessions;

use std::time::Duration;

use deadpool_redis::{Config, Pool, Runtime};

pub use messages::MessageStore;
pub use sessions::{SessionStore, SocketTag, UserEntry};

/// What went wrong talking to Redis. Clients only ever see a short reason; the log gets this.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no Redis connection available")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("Redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("cannot encode a value for Redis")]
    Encode(#[from] serde_json::Error),
}

/// Builds the connection pool. Connections are opened lazily, so a node can start while Redis
/// is still coming up; `/readyz` tells when it answers.
pub fn pool(redis_url: &str, size: usize) -> anyhow::Result<Pool> {
    let pool = Config::from_url(redis_url)
        .builder()?
        .max_size(size)
        .runtime(Runtime::Tokio1)
        // Without a wait timeout a request would queue forever behind a dead Redis.
        .wait_timeout(Some(Duration::from_secs(2)))
        .create_timeout(Some(Duration::from_secs(2)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()?;
    Ok(pool)
}

/// Answers whether Redis responds to PING, for `/readyz`.
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    let mut conn = pool.get().await?;
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    Ok(())
}

/// Loads every Lua script at start-up, so the first calls are plain EVALSHA. Best effort:
/// `redis::Script` loads a script again whenever Redis answers NOSCRIPT.
pub async fn load_scripts(pool: &Pool) {
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
