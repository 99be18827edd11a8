//! Message histories: `messages:{userID}` lists of JSON messages, one list per participant.

use std::time::Duration;

use super::{
    StoreError,
    redis::{RedisPool, keys},
};
use crate::domain::{Message, UserId};

#[derive(Clone)]
pub struct MessageStore {
    pool: RedisPool,
    ttl: Duration,
    cap: usize,
}

impl MessageStore {
    pub fn new(pool: RedisPool, ttl: Duration, cap: usize) -> Self {
        Self {
            pool,
            ttl,
            cap: cap.max(1),
        }
    }

    /// Appends a message (`json`, as encoded once for every use) to the sender's and the
    /// recipient's histories (once when they are the same user), keeping each bounded and alive.
    ///
    /// Per list: RPUSH, LTRIM, EXPIRE, in one pipeline with the other list's (one round trip;
    /// on a cluster each command goes to its key's master). No script is needed: Redis runs a
    /// connection's commands in order, so the trim and the expiry always follow the push, and
    /// what another client may run in between (another append) leaves the same result (the
    /// newest `cap` entries, the same TTL). The one difference from a script: a connection
    /// lost between the push and the trim leaves the list one entry over its cap until the
    /// next append, which is harmless (and the sender got an error ack for a message that may
    /// be stored, the case README documents for a hung Redis).
    pub async fn append(&self, from: &str, to: &str, json: &str) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let users: &[&str] = if from == to { &[from] } else { &[from, to] };
        let cap = i64::try_from(self.cap).unwrap_or(i64::MAX);
        let mut cmds = Vec::with_capacity(3 * users.len());
        for user in users {
            let key = keys::messages(user);
            cmds.push(redis::cmd("RPUSH").arg(&key).arg(json).to_owned());
            cmds.push(redis::cmd("LTRIM").arg(&key).arg(-cap).arg(-1).to_owned());
            cmds.push(
                redis::cmd("EXPIRE")
                    .arg(&key)
                    .arg(self.ttl.as_secs())
                    .to_owned(),
            );
        }
        conn.each::<redis::Value>(cmds).await?;
        Ok(())
    }

    /// A user's whole history, oldest first. Entries that are not messages (foreign or corrupt
    /// data) are skipped with a warning rather than failing the user's connection.
    pub async fn for_user(&self, user: &UserId) -> Result<Vec<Message>, StoreError> {
        let mut conn = self.pool.get().await?;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(keys::messages_of(user))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|entry| match serde_json::from_str(entry) {
                Ok(message) => Some(message),
                Err(err) => {
                    tracing::warn!(%user, %err, "skipping a stored entry that is not a message");
                    None
                }
            })
            .collect())
    }
}
