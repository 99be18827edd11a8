//! The message log on a Redis Cluster, where a message's keys sit on different masters and no
//! script or transaction may span them: RPUSH, LTRIM, EXPIRE per history, each key's as one
//! pipeline that also reads what its trim drops, concurrently (each to its key's master), all
//! or none of them by [`cluster_append`] (which puts back what the trims dropped when it takes a
//! refused message back); for a message that makes contacts, SADD + EXPIRE per contact set
//! alongside, unmade when the message is refused; then, once stored, the message is added to
//! its conversation's index if the index exists (`index_message.lua`, the rule of both modes:
//! see [`crate::store::pages`]) while it is published (the introduction first, awaited, only
//! when it is new to the recipient). No script is needed per key: Redis runs one connection's
//! commands in order, so the trim and the expiry follow the push, and what another client runs
//! in between (another append) leaves the same result (the newest `cap` entries, the same TTL).
//! The messages arriving together start together ([`crate::store::cluster_batch`]).

use std::time::Duration;

use redis::{Cmd, Value};

use super::{MessageLimits, Record, Stored};
use crate::{
    domain::Message,
    routing::{Publication, publisher},
    store::{
        StoreError,
        cluster_append::{self, HistoryWrites, TakeBack},
        cluster_batch::ClusterBatches,
        redis::{Conn, RedisPool, keys, scripts},
        undo::Undos,
    },
};

#[derive(Clone)]
pub struct ClusterLog {
    pool: RedisPool,
    limits: MessageLimits,
    batches: ClusterBatches,
    /// The removals of refused messages ([`crate::store::undo`]).
    undos: Undos,
}

/// A message's writes to the two contact sets, beside its histories'.
struct ContactWrites {
    /// SADD then EXPIRE per set: the sender's, then the recipient's.
    cmds: Vec<Cmd>,
    /// The SREM that unmakes each set's add, for a refused message.
    undos: [Cmd; 2],
}

/// The reply of the recipient's SADD, in [`ContactWrites::cmds`].
const RECIPIENT_ADD: usize = 2;

impl ClusterLog {
    /// Starts the batch task and the undo worker.
    pub fn spawn(pool: RedisPool, limits: MessageLimits, batch_delay: Duration) -> Self {
        let sizes = pool.metrics().store_batch_messages.clone();
        Self {
            batches: ClusterBatches::spawn(batch_delay, sizes),
            undos: Undos::spawn(pool.clone()),
            pool,
            limits,
        }
    }

    pub fn limits(&self) -> MessageLimits {
        self.limits
    }

    /// Waits, up to `within`, for the messages on their way and the removals of refused ones
    /// ([`Undos::finish`]).
    pub async fn finish(&self, within: Duration) {
        self.undos.finish(within).await;
    }

    /// See [`super::MessageLog::append`]. The work's future (~14 KB) is boxed by `run`: unboxed
    /// it would make every message's handler future that large, copied at each spawn (4.5 % of
    /// a node's CPU in memmove, measured in BENCHMARKS.md).
    pub fn append(
        &self,
        record: &Record<'_>,
        message: &Publication,
        introduction: Option<&Publication>,
    ) -> impl Future<Output = Result<Stored, StoreError>> + Send + '_ {
        let work = self.work(record, message, introduction);
        self.batches.run(work)
    }

    /// A message's writes and publications, owning what they need: they run with the other
    /// messages of their batch.
    fn work(
        &self,
        record: &Record<'_>,
        message: &Publication,
        introduction: Option<&Publication>,
    ) -> impl Future<Output = Result<Stored, StoreError>> + Send + 'static {
        let pool = self.pool.clone();
        let writes = self.writes(record);
        let contacts =
            introduction.map(|introduction| (self.contact_writes(record), introduction.clone()));
        let message = message.clone();
        let index = IndexAdd::of(record, self.limits);
        // From now: a node that stops waits for this message's writes (and their removal).
        let (undos, busy) = (self.undos.clone(), self.undos.begin());
        async move {
            let conn = pool.get().await?;
            let contact_writes = async {
                match &contacts {
                    Some((writes, _)) => {
                        Some(cluster_append::bounded(conn.each::<Value>(writes.cmds.clone())).await)
                    }
                    None => None,
                }
            };
            let (stored, added) = tokio::join!(
                cluster_append::append_all(&undos, busy, &conn, writes),
                contact_writes,
            );
            let new = |replies: &[Value], i: usize| matches!(replies.get(i), Some(Value::Int(1)));
            if let Err(err) = stored {
                // Refused: the contacts this message made are unmade (once; a contact left
                // over shows a user without a conversation, nothing more).
                if let (Some((writes, _)), Some(Ok(replies))) = (&contacts, &added) {
                    let unmade = writes
                        .undos
                        .iter()
                        .zip([0, RECIPIENT_ADD])
                        .filter(|(_, i)| new(replies, *i))
                        .map(|(undo, _)| undo.clone())
                        .collect();
                    let _ = cluster_append::bounded(conn.each::<Value>(unmade)).await;
                }
                return Err(err);
            }
            // When the recipient's SADD failed, introduce anyway: a `user connected` for a
            // known contact only refreshes its entry.
            let introduction = match (&contacts, &added) {
                (Some((_, introduction)), Some(Ok(replies))) if !new(replies, RECIPIENT_ADD) => {
                    None
                }
                (Some((_, introduction)), _) => Some(introduction),
                (None, _) => None,
            };
            let published = async {
                if let Some(introduction) = introduction {
                    let introduced = publisher::cluster::publish(&conn, introduction);
                    cluster_append::bounded(introduced).await?;
                }
                cluster_append::bounded(publisher::cluster::publish(&conn, &message)).await
            };
            let (published, ()) = tokio::join!(published, index.add(&conn));
            Ok(Stored {
                introduced: introduction.is_some(),
                published,
            })
        }
    }

    /// Every write of a message but the contacts' and its index's, for
    /// [`cluster_append::append_all`]: each party's history.
    fn writes(&self, record: &Record<'_>) -> Vec<HistoryWrites> {
        record
            .parties()
            .into_iter()
            .map(|user| self.history_writes(user, record.json))
            .collect()
    }

    /// Appends `json` to `user`'s history, keeping it bounded and alive.
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
                expire(&key, self.limits.history_ttl),
            ],
            take_back: TakeBack::list(key, json),
        }
    }

    /// Makes the two parties contacts of each other, each set kept alive.
    fn contact_writes(&self, record: &Record<'_>) -> ContactWrites {
        let (from, to) = (record.from, record.to);
        let mut cmds = Vec::with_capacity(4);
        for (owner, peer) in [(from, to), (to, from)] {
            let key = keys::contacts(owner);
            cmds.push(redis::cmd("SADD").arg(&key).arg(peer).to_owned());
            cmds.push(expire(&key, self.limits.contact_ttl));
        }
        let unmake = |owner: &str, peer: &str| {
            redis::cmd("SREM")
                .arg(keys::contacts(owner))
                .arg(peer)
                .to_owned()
        };
        ContactWrites {
            cmds,
            undos: [unmake(from, to), unmake(to, from)],
        }
    }

    /// See [`super::MessageLog::build_index`]. No script can read a history and write the
    /// index here (other slots), so the order does it: the index is made to exist first (a
    /// mark, [`keys::CONVERSATION_BUILT`]), so that every message whose addition
    /// ([`IndexAdd`]) comes later is added by it; one whose addition came earlier was in its
    /// histories already, so the history read next holds it.
    pub async fn build_index(&self, key: &str, me: &str, with: &str) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let ttl = self.limits.history_ttl;
        let exists = vec![
            redis::cmd("ZADD")
                .arg(key)
                .arg("NX")
                .arg(0)
                .arg(keys::CONVERSATION_BUILT)
                .to_owned(),
            expire(key, ttl),
        ];
        conn.on_one_slot(exists).await?;
        let history: Vec<String> = redis::cmd("LRANGE")
            .arg(keys::messages(me))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn.clone())
            .await?;
        let members = conversation_members(&history, me, with);
        if members.is_empty() {
            return Ok(());
        }
        let mut add = redis::cmd("ZADD");
        add.arg(key);
        for member in &members {
            add.arg(0).arg(member);
        }
        conn.on_one_slot(vec![add, expire(key, ttl)]).await?;
        Ok(())
    }

    fn cap_i64(&self) -> i64 {
        i64::try_from(self.limits.cap).unwrap_or(i64::MAX)
    }
}

/// A stored message's addition to its conversation's index, when the index exists: sent only
/// once its histories took it, so that a first page building the index (which makes the index
/// exist, then reads a history: `ClusterLog::build_index`) either finds it in the history or
/// is followed by this addition; and never for a refused message.
struct IndexAdd {
    key: String,
    id: String,
    json: String,
    limits: MessageLimits,
}

impl IndexAdd {
    fn of(record: &Record<'_>, limits: MessageLimits) -> Self {
        Self {
            key: record.index_key(),
            id: record.id.to_owned(),
            json: record.json.to_owned(),
            limits,
        }
    }

    /// Best effort, as the message is stored: an index that exists but cannot take it is
    /// deleted, so that the next page builds it again from the history rather than miss this
    /// message (only if Redis takes the deletion: otherwise a gap until the index expires).
    async fn add(&self, conn: &Conn) {
        let mut call = scripts::INDEX_MESSAGE.key(&self.key);
        call.arg(&self.id)
            .arg(&self.json)
            .arg(self.limits.cap)
            .arg(self.limits.history_ttl.as_secs());
        let added = cluster_append::bounded(async {
            Ok::<i64, StoreError>(call.invoke_async(&mut conn.clone()).await?)
        });
        if let Err(err) = added.await {
            tracing::warn!(error = ?err, "cannot add a message to its conversation's index");
            let deleted = redis::cmd("DEL").arg(&self.key).to_owned();
            let deleted = cluster_append::bounded(async {
                Ok::<i64, StoreError>(deleted.query_async(&mut conn.clone()).await?)
            });
            if let Err(err) = deleted.await {
                tracing::warn!(error = ?err, "cannot drop a conversation's index it lacks");
            }
        }
    }
}

/// The index members of `me`'s conversation with `with` in `history` (`me`'s, oldest first):
/// its messages from the newest back to the first entry without an id (written by the Node
/// server), which stays, with all that is older, where pages find it: in the history (as
/// `index_conversation.lua` selects them on a standalone Redis).
fn conversation_members(history: &[String], me: &str, with: &str) -> Vec<String> {
    let mut members = Vec::new();
    for entry in history.iter().rev() {
        // An entry that is not a message ends it too, as it does the script's.
        let Some((message, id)) = serde_json::from_str::<Message>(entry)
            .ok()
            .and_then(|message| Some((message.clone(), message.id?)))
        else {
            break;
        };
        if message.between(me, with) {
            members.push(keys::conversation_member(&id, entry));
        }
    }
    members
}

fn expire(key: &str, ttl: Duration) -> Cmd {
    redis::cmd("EXPIRE").arg(key).arg(ttl.as_secs()).to_owned()
}
