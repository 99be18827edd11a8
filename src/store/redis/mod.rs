//! Redis plumbing under the typed stores: one connection face for standalone Redis and Redis
//! Cluster ([`RedisPool`], [`Conn`]), the Lua scripts, and every key name. Nothing here knows
//! what a session or a message is; the stores one level up do.

mod conn;
pub(crate) mod keys;
mod pool;
mod pubsub;
pub(crate) mod scripts;
mod sentinel;

use std::time::Duration;

pub use conn::{Conn, KeyWalk, ScanRoute, pacer};
pub use pool::RedisPool;
pub use pubsub::{ChannelMessage, PubSub, PubSubStatus};
pub use sentinel::{SentinelTarget, SentinelWatch};

use super::StoreError;

/// How long a command may wait for its reply before it counts as failed: long, because a
/// write that times out may still be performed, and a refusal must mean "not stored".
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the data lives: one Redis, the seed nodes of a Redis Cluster, or a master found
/// through Redis Sentinel (a standalone Redis as far as the stores go).
#[derive(Clone)]
pub enum RedisTarget {
    Standalone(String),
    Cluster(Vec<String>),
    Sentinel(SentinelTarget),
}

/// The kind of Redis a pool reaches ([`RedisPool::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisKind {
    Standalone,
    Cluster,
}

/// URLs may carry a password (`redis://:secret@host`): it never reaches a log.
impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Standalone(url) => f.debug_tuple("Standalone").field(&redact(url)).finish(),
            Self::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redact(n)).collect::<Vec<_>>())
                .finish(),
            Self::Sentinel(sentinel) => sentinel.fmt(f),
        }
    }
}

/// `url` with any user information (user, password) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Answers whether Redis responds to PING, for `/readyz`.
pub async fn ping(pool: &RedisPool) -> Result<(), StoreError> {
    let mut conn = pool.get().await?;
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    Ok(())
}

/// Loads every Lua script (`scripts::ALL`) at start-up, so the first calls are plain
/// EVALSHA; on a cluster redis-rs sends SCRIPT LOAD to every node. Best effort:
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

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_in_a_url_is_redacted() {
        assert_eq!(
            redact("rediss://:s3cret@10.0.0.1:6380/0#insecure"),
            "rediss://***@10.0.0.1:6380/0#insecure"
        );
        assert_eq!(redact("redis://user:pw@host"), "redis://***@host");
    }

    #[test]
    fn a_url_without_credentials_is_kept() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("127.0.0.1:7000"), "127.0.0.1:7000");
    }
}
