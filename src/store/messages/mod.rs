//! Message histories: `messages:{userID}` lists of JSON messages, one list per participant,
//! with their conversations' indexes and, in the `contacts` scope, the contact sets a message
//! fills. Every message is written by one verb, [`MessageLog::append`], whose two Redis
//! implementations sit beside it: [`standalone`] (one script call per batch of messages,
//! `redis-scripts/store_messages.lua`) and [`cluster`] (single-key commands per master, all or
//! none by removal). Which one a node runs is decided once, where its store is built
//! (`startup.rs`), from the Redis it talks to.

mod changes;
mod cluster;
pub use changes::Found;
mod cluster_index;
mod erasure;
mod standalone;

use std::time::Duration;

use super::{StoreError, redis::RedisPool, redis::keys};
use crate::{
    domain::{Message, UserId},
    routing::Publication,
    webhooks::Enqueued,
};

/// A message as the stores write it: its parties, its id and its JSON, encoded once.
pub struct Record<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub id: &'a str,
    pub json: &'a str,
    /// The webhook deliveries queued with it, in its own writes (none when webhooks are off):
    /// see [`crate::webhooks::Webhooks::jobs_for`].
    pub webhooks: &'a [Enqueued],
}

impl Record<'_> {
    /// The histories it goes to: both parties', once when they are the same user.
    pub fn parties(&self) -> Vec<&str> {
        if self.from == self.to {
            vec![self.from]
        } else {
            vec![self.from, self.to]
        }
    }

    pub fn index_key(&self) -> String {
        keys::conversation(self.from, self.to)
    }

    pub fn index_member(&self) -> String {
        keys::conversation_member(self.id, self.json)
    }
}

/// What storing a message did.
pub struct Stored {
    /// The message made the sender a contact of the recipient: the introduction was published
    /// (or its publication failed with the message's, below). Always false without one.
    pub introduced: bool,
    /// The recipient blocked the sender: the message went to the sender's history only, and
    /// was published on the sender's channel only (no introduction, no webhook).
    pub blocked: bool,
    /// Whether the publications reached Redis; the message is stored either way.
    pub published: Result<(), StoreError>,
}

/// How much the message log keeps, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct MessageLimits {
    /// The most messages a history keeps (oldest trimmed first; an index, up to 64 more).
    pub cap: usize,
    /// A history's and a conversation index's time to live, restarted by each message.
    pub history_ttl: Duration,
    /// A contact set's, restarted by each message that writes it.
    pub contact_ttl: Duration,
}

/// Where a node's messages are written: the one write path of a message, on the Redis the node
/// talks to. Both keep each message all or nothing (an error: neither stored nor published),
/// publish only after every write took, skip the channels only this node hears, and publish an
/// introduction before its message on the same channel.
#[derive(Clone)]
pub enum MessageLog {
    /// A standalone Redis: one script call for the messages waiting together.
    Standalone(standalone::StandaloneLog),
    /// A Redis Cluster: each message's single-key writes, concurrently, undone on failure.
    /// Boxed: it holds its own pool handle, batch task and undo worker.
    Cluster(Box<cluster::ClusterLog>),
}

impl MessageLog {
    /// The log for a standalone Redis; its writes wait up to `batch_delay` to share a call.
    pub fn standalone(pool: RedisPool, limits: MessageLimits, batch_delay: Duration) -> Self {
        Self::Standalone(standalone::StandaloneLog::spawn(pool, limits, batch_delay))
    }

    /// The log for a Redis Cluster; its writes wait up to `batch_delay` to start together.
    pub fn cluster(pool: RedisPool, limits: MessageLimits, batch_delay: Duration) -> Self {
        Self::Cluster(Box::new(cluster::ClusterLog::spawn(
            pool,
            limits,
            batch_delay,
        )))
    }

    fn limits(&self) -> MessageLimits {
        match self {
            Self::Standalone(log) => log.limits(),
            Self::Cluster(log) => log.limits(),
        }
    }

    /// Stores `record` in its parties' histories and its conversation's index (bounded and
    /// kept alive), and, with an `introduction`, makes the two users contacts of each other
    /// (they must be two different users); then publishes the introduction, when the
    /// recipient did not have the sender as a contact, and `message`. An error means the
    /// message is stored nowhere and nothing of it was published.
    pub async fn append(
        &self,
        record: &Record<'_>,
        message: &Publication,
        introduction: Option<&Publication>,
    ) -> Result<Stored, StoreError> {
        match self {
            Self::Standalone(log) => log.append(record, message, introduction).await,
            Self::Cluster(log) => log.append(record, message, introduction).await,
        }
    }

    /// Builds the index `key` of `me`'s conversation with `with` from `me`'s history, the first
    /// time a page or a read mark finds none; both logs add a message to an index only once it
    /// exists (see [`crate::store::pages`]). On a standalone Redis one script, atomic with the
    /// stores; on a cluster the index is made to exist first, then filled from the history.
    async fn build_index(
        &self,
        pool: &RedisPool,
        key: &str,
        me: &str,
        with: &str,
    ) -> Result<(), StoreError> {
        match self {
            Self::Standalone(log) => log.build_index(pool, key, me, with).await,
            Self::Cluster(log) => log.build_index(key, me, with).await,
        }
    }

    /// For a node that stops: waits, up to `within`, for the writes still on their way.
    async fn finish(&self, within: Duration) {
        match self {
            // Each message is one script call, answered before its sender goes on.
            Self::Standalone(_) => {}
            Self::Cluster(log) => log.finish(within).await,
        }
    }
}

#[derive(Clone)]
pub struct MessageStore {
    pub(super) pool: RedisPool,
    pub(super) cap: usize,
    log: MessageLog,
}

impl MessageStore {
    /// A store that writes through `log` and reads through `pool`.
    pub fn new(pool: RedisPool, log: MessageLog) -> Self {
        let cap = log.limits().cap;
        Self { pool, cap, log }
    }

    /// For a node that stops once its sockets are closed: waits, up to `within`, for the
    /// messages still on their way to a Redis Cluster and the removals of refused ones.
    pub async fn finish_writes(&self, within: Duration) {
        self.log.finish(within).await;
    }

    /// Stores a message in the sender's and the recipient's histories (once when they are the
    /// same user) and in their conversation's index, then publishes `announce` (the payload,
    /// and the channels to publish it on; a channel that only this node receives is skipped).
    /// See [`MessageLog::append`].
    ///
    /// An error means the message is not stored (and not published); [`Stored::published`],
    /// that it is stored but the publication failed.
    pub async fn store_and_publish(
        &self,
        record: &Record<'_>,
        announce: &Publication,
    ) -> Result<Stored, StoreError> {
        self.log.append(record, announce, None).await
    }

    /// The same append, for a message between two different users that also makes them
    /// contacts, `introduction` published first when it is new to the recipient (the
    /// `contacts` scope): all or nothing, an error means the message is stored nowhere and
    /// nothing was published.
    pub async fn store_making_contacts(
        &self,
        record: &Record<'_>,
        message: &Publication,
        introduction: &Publication,
    ) -> Result<Stored, StoreError> {
        self.log.append(record, message, Some(introduction)).await
    }

    /// See [`MessageLog::build_index`].
    pub(super) async fn build_index(
        &self,
        key: &str,
        me: &str,
        with: &str,
    ) -> Result<(), StoreError> {
        self.log.build_index(&self.pool, key, me, with).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{metrics::Metrics, store::RedisTarget};

    /// Every message's handler holds this future across its await: it must stay small, since
    /// socketioxide copies the handler's future at each spawn (the cluster path is boxed).
    #[tokio::test]
    async fn storing_a_message_is_a_small_future() {
        let target = RedisTarget::Standalone("redis://127.0.0.1:1".into());
        let pool = RedisPool::new(&target, 1, Metrics::new()).expect("a pool");
        let limits = MessageLimits {
            cap: 10,
            history_ttl: Duration::from_secs(1),
            contact_ttl: Duration::from_secs(1),
        };
        let record = Record {
            from: "a",
            to: "b",
            id: "1",
            json: "{}",
            webhooks: &[],
        };
        let announce = Publication::default();
        for log in [
            MessageLog::standalone(pool.clone(), limits, Duration::ZERO),
            MessageLog::cluster(pool.clone(), limits, Duration::ZERO),
        ] {
            let store = MessageStore::new(pool.clone(), log);
            let plain = store.store_and_publish(&record, &announce);
            let contacts = store.store_making_contacts(&record, &announce, &announce);
            for size in [size_of_val(&plain), size_of_val(&contacts)] {
                assert!(size < 1024, "{size} bytes");
            }
        }
    }
}
