//! The pending deliveries in Redis: one sorted set, `privmsg:webhooks`, member the job (which
//! never changes, so a delivery keeps its id), score the ms it is due. Why a sorted set and not
//! a Stream with a consumer group: the work is scheduled (an unread delay, a retry's backoff),
//! which a score says directly; a claim is a lease (the score moved to the lease's end), which
//! lapses by itself when a node dies, with no consumer to clean up; a retry is one ZADD. Every
//! command touches this one key: valid on Redis Cluster.

use crate::store::{
    RedisPool, StoreError,
    redis::{keys, scripts},
};

#[derive(Clone)]
pub struct Queue {
    pool: RedisPool,
}

/// What became of a delivery's message, as [`Queue::current`] found it.
#[derive(Debug, PartialEq, Eq)]
pub enum Current {
    /// The recipient blocks the sender.
    Blocked,
    /// The recipient's history holds it as queued.
    Unchanged,
    /// The recipient's history holds it edited: its JSON now.
    Edited(String),
    /// Not in the recipient's history: deleted, erased with its sender, or trimmed away.
    Gone,
}

/// What a claim found.
pub struct Claimed {
    /// The queue's size.
    pub pending: u64,
    /// The lowest score (ms): the most overdue delivery, or the next one due.
    pub lowest_ms: Option<u64>,
    /// The jobs now leased to this node.
    pub jobs: Vec<String>,
}

impl Queue {
    pub fn new(pool: RedisPool) -> Self {
        Self { pool }
    }

    /// Leases to this node, until `lease_end_ms`, up to `most` deliveries due at `now_ms`.
    pub async fn claim(
        &self,
        now_ms: u64,
        lease_end_ms: u64,
        most: usize,
    ) -> Result<Claimed, StoreError> {
        let mut conn = self.pool.get().await?;
        let (pending, lowest, jobs): (u64, String, Vec<String>) = scripts::CLAIM_WEBHOOKS
            .key(keys::WEBHOOKS)
            .arg(now_ms)
            .arg(lease_end_ms)
            .arg(most)
            .invoke_async(&mut conn)
            .await?;
        // A score reads back as a double's text ("1.7e12" style is possible): parsed as one.
        let lowest_ms = lowest.parse::<f64>().ok().map(|ms| ms.max(0.0) as u64);
        Ok(Claimed {
            pending,
            lowest_ms,
            jobs,
        })
    }

    /// Removes a delivery that is done with (sent, read in time, expired).
    pub async fn remove(&self, job: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        redis::cmd("ZREM")
            .arg(keys::WEBHOOKS)
            .arg(job)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Makes a failed delivery due again at `due_ms`, if it is still queued (XX: another node
    /// that sent it meanwhile, after this node's lease lapsed, removed it for good).
    pub async fn retry_at(&self, job: &str, due_ms: u64) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        redis::cmd("ZADD")
            .arg(keys::WEBHOOKS)
            .arg("XX")
            .arg(due_ms)
            .arg(job)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// What became of `message` (queued as `json`, to `to` from `from`) since it was queued,
    /// read from the recipient's history and block list in one call (`webhook_message.lua`):
    /// a job holds the message as stored, and one edited, deleted or erased with its sender
    /// meanwhile must not be sent as it was. A message the recipient withheld queues no
    /// webhook, but on a cluster its jobs, written beside the appends on another slot, exist
    /// for the round trip before they are taken back: the same call asks.
    pub async fn current(
        &self,
        to: &str,
        from: &str,
        json: &str,
        id: Option<&str>,
    ) -> Result<Current, StoreError> {
        let mut conn = self.pool.get().await?;
        let reply: redis::Value = scripts::WEBHOOK_MESSAGE
            .key(keys::messages(to))
            .key(keys::blocks(to))
            .arg(from)
            .arg(if from == to { "0" } else { "1" })
            .arg(json)
            .arg(id.unwrap_or(""))
            .invoke_async(&mut conn)
            .await?;
        Ok(match reply {
            redis::Value::Int(2) => Current::Blocked,
            redis::Value::Int(1) => Current::Unchanged,
            redis::Value::BulkString(bytes) => match String::from_utf8(bytes) {
                Ok(json) => Current::Edited(json),
                // Not text: not a message this server wrote; nothing to send of it.
                Err(_) => Current::Gone,
            },
            _ => Current::Gone,
        })
    }

    /// How far `reader` has read its conversation with `peer` (`messages read`), if at all.
    pub async fn read_mark(&self, reader: &str, peer: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("HGET")
            .arg(keys::read_marks(reader))
            .arg(keys::read_field(peer).as_ref())
            .query_async(&mut conn)
            .await?)
    }
}
