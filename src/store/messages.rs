//! Message histories: `messages:{userID}` lists of JSON messages, one list per participant.

use std::time::Duration;

use super::{
    StoreError,
    redis::{RedisPool, keys, scripts},
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

    /// Appends `message` to the sender's and the recipient's histories (once when they are the
    /// same user). One script call per key keeps it valid on Redis Cluster; both calls go out on
    /// one multiplexed connection before either answer is read, so it costs one round trip.
    pub async fn append(&self, message: &Message) -> Result<(), StoreError> {
        let json = serde_json::to_string(message)?;
        let conn = self.pool.get().await?;
        let append_to = |user: &str| {
            let mut conn = conn.clone();
            let mut call = scripts::APPEND_MESSAGE.key(keys::messages(user));
            call.arg(&json).arg(self.cap).arg(self.ttl.as_secs());
            async move { call.invoke_async::<i64>(&mut conn).await }
        };
        if message.from == message.to {
            append_to(&message.from).await?;
        } else {
            tokio::try_join!(append_to(&message.from), append_to(&message.to))?;
        }
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
