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

use super::cluster_index::{self, IndexAdd};
use super::{MessageLimits, Record, Stored};
use crate::{
    routing::{Publication, publisher},
    store::{
        StoreError,
        cluster_append::{self, HistoryWrites, TakeBack},
        cluster_batch::ClusterBatches,
        redis::{RedisPool, keys, scripts},
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
        // What a message the recipient blocked takes back or keeps to its sender.
        let blocking = (record.from != record.to).then(|| Blocking::of(record));
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
            let (appended, added) = tokio::join!(
                cluster_append::append_all(&undos, busy, &conn, writes),
                contact_writes,
            );
            let new = |replies: &[Value], i: usize| matches!(replies.get(i), Some(Value::Int(1)));
            let blocked = match (&appended, &blocking) {
                // The recipient's append (second) answers 0 when it blocked the sender.
                (Ok(firsts), Some(_)) => matches!(firsts.get(1), Some(Value::Int(0))),
                _ => false,
            };
            if let Err(err) = appended {
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
            if let (true, Some(blocking)) = (blocked, &blocking) {
                return Ok(blocking
                    .keep_to_sender(&conn, &message, &contacts, &added)
                    .await);
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
                blocked: false,
                published,
            })
        }
    }

    /// Every write of a message but the contacts' and its index's, for
    /// [`cluster_append::append_all`]: each party's history, and each webhook delivery queued
    /// with it (all or none with the histories: a refused message is taken out of the queue
    /// as out of a history).
    fn writes(&self, record: &Record<'_>) -> Vec<HistoryWrites> {
        let histories = record.parties().into_iter().map(|user| {
            let mut writes = self.history_writes(user, record.json);
            if user != record.from {
                // The recipient's: appended unless it blocked the sender, in the same request.
                writes.cmds[0] = redis::cmd("EVAL")
                    .arg(scripts::APPEND_UNLESS_BLOCKED_CODE.as_str())
                    .arg(2)
                    .arg(keys::messages(user))
                    .arg(keys::blocks(user))
                    .arg(record.json)
                    .arg(record.from)
                    .to_owned();
            }
            writes
        });
        let webhooks = record.webhooks.iter().map(|job| HistoryWrites {
            cmds: vec![
                redis::cmd("ZADD")
                    .arg(keys::WEBHOOKS)
                    .arg(job.due_ms)
                    .arg(&job.member)
                    .to_owned(),
            ],
            take_back: TakeBack::zset(keys::WEBHOOKS.to_owned(), &job.member),
        });
        histories.chain(webhooks).collect()
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

    /// See [`super::MessageLog::build_index`] and [`cluster_index::build`].
    pub async fn build_index(&self, key: &str, me: &str, with: &str) -> Result<(), StoreError> {
        cluster_index::build(&self.pool, self.limits, key, me, with).await
    }

    fn cap_i64(&self) -> i64 {
        i64::try_from(self.limits.cap).unwrap_or(i64::MAX)
    }
}

/// A message whose recipient blocked its sender, on a cluster: its webhook deliveries and the
/// recipient's contact went in beside the histories (on other masters, concurrently, before
/// the recipient's append could say), so they are taken back; it is published on the
/// sender's channel only, and never indexed or introduced.
struct Blocking {
    sender_channel: String,
    /// The ZREM of each webhook delivery queued with it.
    unqueue: Vec<Cmd>,
}

impl Blocking {
    fn of(record: &Record<'_>) -> Self {
        let unqueue = record
            .webhooks
            .iter()
            .map(|job| {
                redis::cmd("ZREM")
                    .arg(keys::WEBHOOKS)
                    .arg(&job.member)
                    .to_owned()
            })
            .collect();
        Self {
            sender_channel: keys::user_channel(record.from),
            unqueue,
        }
    }

    async fn keep_to_sender(
        &self,
        conn: &crate::store::Conn,
        message: &Publication,
        contacts: &Option<(ContactWrites, Publication)>,
        added: &Option<Result<Vec<Value>, StoreError>>,
    ) -> Stored {
        let mut undo = self.unqueue.clone();
        if let (Some((writes, _)), Some(Ok(replies))) = (contacts, added)
            && matches!(replies.get(RECIPIENT_ADD), Some(Value::Int(1)))
        {
            undo.push(writes.undos[1].clone());
        }
        if let Err(err) = cluster_append::bounded(conn.each::<Value>(undo)).await {
            tracing::warn!(error = ?err, "cannot take back the extras of a blocked message");
        }
        let own = |channels: &[String]| -> Vec<String> {
            channels
                .iter()
                .filter(|channel| **channel == self.sender_channel)
                .cloned()
                .collect()
        };
        let mine = Publication {
            payload: message.payload.clone(),
            channels: own(&message.channels),
            unless_alone: own(&message.unless_alone),
        };
        let published = cluster_append::bounded(publisher::cluster::publish(conn, &mine)).await;
        Stored {
            introduced: false,
            blocked: true,
            published,
        }
    }
}

pub(super) fn expire(key: &str, ttl: Duration) -> Cmd {
    redis::cmd("EXPIRE").arg(key).arg(ttl.as_secs()).to_owned()
}
