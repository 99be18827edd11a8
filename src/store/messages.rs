//! Message histories: `messages:{userID}` lists of JSON messages, one list per participant.

use std::time::Duration;

use super::{
    Announcement, StoreError,
    cluster_append::{self, HistoryWrites, PutBack},
    cluster_batch::ClusterBatches,
    message_batch::MessageBatches,
    redis::{RedisPool, keys, scripts},
    undo::Undos,
};
use crate::domain::{Message, UserId};

/// A message as the stores write it: its parties, its id and its JSON, encoded once.
pub struct Record<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub id: &'a str,
    pub json: &'a str,
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

#[derive(Clone)]
pub struct MessageStore {
    pub(super) pool: RedisPool,
    ttl: Duration,
    pub(super) cap: usize,
    /// The standalone path's writes ([`super::message_batch`]).
    batches: MessageBatches,
    /// The cluster path's ([`super::cluster_batch`]).
    cluster_batches: ClusterBatches,
    /// The cluster path's removals of refused messages ([`super::undo`]).
    undos: Undos,
}

impl MessageStore {
    /// A store whose standalone writes wait up to `batch_delay` to share a call with others.
    pub fn new(pool: RedisPool, ttl: Duration, cap: usize, batch_delay: Duration) -> Self {
        let head = vec![
            cap.to_string().into_bytes(),
            ttl.as_secs().to_string().into_bytes(),
        ];
        let batches =
            MessageBatches::spawn(pool.clone(), &scripts::STORE_MESSAGES, head, batch_delay);
        let sizes = pool.metrics().store_batch_messages.clone();
        Self {
            ttl,
            cap,
            batches,
            cluster_batches: ClusterBatches::spawn(batch_delay, sizes),
            undos: Undos::spawn(pool.clone()),
            pool,
        }
    }

    /// For a node that stops once its sockets are closed: waits, up to `within`, for the
    /// messages still on their way to a Redis Cluster and the removals of refused ones
    /// ([`Undos::finish`]). Nothing to wait for on a standalone Redis, where each message is
    /// one script call.
    pub async fn finish_writes(&self, within: Duration) {
        self.undos.finish(within).await;
    }

    /// Stores a message in the sender's and the recipient's histories (once when they are the
    /// same user) and in their conversation's index, keeping each bounded and alive; then
    /// publishes `announce` (the payload, and the channels to publish it on; on a standalone
    /// Redis, a channel that only this node receives is skipped).
    ///
    /// Standalone Redis: one script call, all or nothing for this message, shared with the
    /// messages that wait with it ([`super::message_batch`], `redis-scripts/store_messages.lua`).
    /// Redis Cluster, where the keys sit on
    /// different slots: RPUSH, LTRIM, EXPIRE per list (ZADD, ZREMRANGEBYRANK, EXPIRE for the
    /// index), each list's as one pipeline that also reads what its trim drops, concurrently
    /// (each to its key's master), all or none of them by [`cluster_append`] (which puts back
    /// what the trims dropped when it takes a refused message back), then the publication. No
    /// script is needed per key: Redis runs one connection's commands in order, so the trim
    /// and the expiry follow the push, and what another client runs in between (another
    /// append) leaves the same result (the newest `cap` entries, the same TTL).
    ///
    /// The outer error means the message is not stored (and not published); the inner one,
    /// that it is stored but the publication failed.
    pub async fn store_and_publish(
        &self,
        record: &Record<'_>,
        announce: &Announcement,
    ) -> Result<Result<(), StoreError>, StoreError> {
        if !self.pool.is_cluster() {
            let (keys, args) = batch_part(record, announce)?;
            self.batches.store(keys, args).await?;
            return Ok(Ok(()));
        }
        // The cluster path's future (~14 KB) is boxed by `run`: unboxed it would make every
        // message's handler future that large, copied at each spawn (4.5 % of a node's CPU in
        // memmove, measured in BENCHMARKS.md).
        let work = self.cluster_store_and_publish(record, announce);
        self.cluster_batches.run(work).await
    }

    /// `store_and_publish` on a Redis Cluster, owning what it needs: it runs with the other
    /// messages of its batch ([`super::cluster_batch`]).
    fn cluster_store_and_publish(
        &self,
        record: &Record<'_>,
        announce: &Announcement,
    ) -> impl Future<Output = Result<Result<(), StoreError>, StoreError>> + Send + 'static {
        let pool = self.pool.clone();
        let writes = self.cluster_writes(record);
        let announce = announce.clone();
        // From now: a node that stops waits for this message's writes (and their removal).
        let (undos, busy) = (self.undos.clone(), self.undos.begin());
        async move {
            let conn = pool.get().await?;
            cluster_append::append_all(&undos, busy, &conn, writes).await?;
            Ok(cluster_append::bounded(conn.publish_each(&announce.publications())).await)
        }
    }

    /// Where this node's messages meet on a cluster (the `contacts` scope's too).
    pub(super) fn cluster_batches(&self) -> &ClusterBatches {
        &self.cluster_batches
    }

    /// Who removes this node's refused messages on a cluster (the `contacts` scope's too).
    pub(super) fn undos(&self) -> &Undos {
        &self.undos
    }

    /// The most messages a history keeps, and a history's time to live.
    pub(super) fn limits(&self) -> (usize, Duration) {
        (self.cap, self.ttl)
    }

    /// Appends `json` to `user`'s history, keeping it bounded and alive: single-key commands,
    /// for a Redis Cluster (see `store_and_publish`).
    fn history_writes(&self, user: &str, json: &str) -> HistoryWrites {
        let key = keys::messages(user);
        HistoryWrites {
            cmds: vec![
                redis::cmd("RPUSH").arg(&key).arg(json).to_owned(),
                // What the trim drops: every entry before the newest `cap`.
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-self.cap_i64() - 1)
                    .to_owned(),
                redis::cmd("LTRIM")
                    .arg(&key)
                    .arg(-self.cap_i64())
                    .arg(-1)
                    .to_owned(),
                self.expire(&key),
            ],
            undo: redis::cmd("LREM").arg(&key).arg(0).arg(json).to_owned(),
            put_back: PutBack::List(key),
        }
    }

    /// Adds the message to its conversation's index, keeping it bounded and alive.
    fn index_writes(&self, record: &Record<'_>) -> HistoryWrites {
        let (key, member) = (record.index_key(), record.index_member());
        HistoryWrites {
            cmds: vec![
                redis::cmd("ZADD").arg(&key).arg(0).arg(&member).to_owned(),
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-self.cap_i64() - 1)
                    .to_owned(),
                redis::cmd("ZREMRANGEBYRANK")
                    .arg(&key)
                    .arg(0)
                    .arg(-self.cap_i64() - 1)
                    .to_owned(),
                self.expire(&key),
            ],
            undo: redis::cmd("ZREM").arg(&key).arg(&member).to_owned(),
            put_back: PutBack::Index(key),
        }
    }

    fn expire(&self, key: &str) -> redis::Cmd {
        redis::cmd("EXPIRE")
            .arg(key)
            .arg(self.ttl.as_secs())
            .to_owned()
    }

    fn cap_i64(&self) -> i64 {
        i64::try_from(self.cap).unwrap_or(i64::MAX)
    }

    /// Every write of a message on a cluster, for [`cluster_append::append_all`]: each
    /// party's history, and the conversation's index.
    pub(super) fn cluster_writes(&self, record: &Record<'_>) -> Vec<HistoryWrites> {
        let mut writes: Vec<HistoryWrites> = record
            .parties()
            .into_iter()
            .map(|user| self.history_writes(user, record.json))
            .collect();
        writes.push(self.index_writes(record));
        writes
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

/// One message's keys and arguments for `store_messages.lua`, in its order.
fn batch_part(
    record: &Record<'_>,
    announce: &Announcement,
) -> Result<(Vec<String>, Vec<Vec<u8>>), StoreError> {
    let mut keys = vec![record.index_key()];
    keys.extend(record.parties().into_iter().map(keys::messages));
    let mut args: Vec<Vec<u8>> = vec![
        keys.len().to_string().into_bytes(),
        record.json.as_bytes().to_vec(),
        announce.head_before(record.json)?,
        announce.held_flags().into_bytes(),
        record.id.as_bytes().to_vec(),
        announce.channels.len().to_string().into_bytes(),
    ];
    args.extend(announce.channel_names());
    Ok((keys, args))
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
        let store = MessageStore::new(pool, Duration::from_secs(1), 10, Duration::ZERO);
        let record = Record {
            from: "a",
            to: "b",
            id: "1",
            json: "{}",
        };
        let announce = Announcement {
            payload: Vec::new(),
            channels: Vec::new(),
        };
        let store = store.store_and_publish(&record, &announce);
        assert!(
            std::mem::size_of_val(&store) < 1024,
            "{} bytes",
            std::mem::size_of_val(&store)
        );
    }
}
