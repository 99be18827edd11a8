//! REDIS_WAIT_REPLICAS on a standalone Redis: a batch's `store_messages.lua` call (told not to
//! publish) and a `WAIT` for the replicas, pipelined on a connection of the batch task's own
//! (one round trip; `WAIT` blocks the connection it is sent on, so never the shared one). When
//! enough replicas confirm, the batch's messages are published on that connection, in order,
//! and acknowledged; when they do not, the stored messages are taken back out of the
//! histories, indexes and webhook queue and refused, "storage unavailable": a message is
//! forwarded only once replicas hold it, and an `{ error }` still means neither kept nor
//! delivered. One `WAIT` per batch, not per message.
//!
//! Known gaps: a history at its cap lost its oldest message to the refused message's trim
//! (not put back); a contact made by a refused message stays (contacts are not waited for).

use redis::{
    AsyncConnectionConfig, Client, Pipeline, ProtocolVersion, Script, ScriptInvocation, Value,
};
use std::time::Duration;

use super::{
    StoreError,
    message_batch::{Appended, Job, answer, fail},
    replicas::{ReplicaStatus, WaitFor},
};
use crate::{
    routing::Publication,
    store::{RedisTarget, SentinelTarget},
};

/// How long to connect to the master before the batch is refused.
const CONNECT: Duration = Duration::from_secs(2);
/// How much longer than the `WAIT` timeout the whole round trip may take.
const SLACK: Duration = Duration::from_secs(2);

/// What a message does after its batch's `WAIT`: published when confirmed, taken back when not.
pub struct Deferred {
    /// Published first, when the message made the recipient a contact of the sender.
    pub introduction: Option<Publication>,
    pub message: Publication,
    /// The sender's own channel: the only one a message the recipient blocked goes on.
    pub sender_channel: String,
    /// Its writes, as `(key, entry)`: removed again when the replicas do not confirm.
    pub writes: Vec<Write>,
}

/// One write of a message that a refusal takes back.
pub enum Write {
    /// Its JSON at the tail of a history (a list).
    Pushed { key: String, entry: String },
    /// A member of a sorted set: its conversation's index, a webhook job.
    Added { key: String, member: String },
}

/// Where the waiter connects: the master at REDIS_URL, or the one the sentinels name when it
/// connects (after a failover, the new one: a broken or READONLY connection is dropped and
/// the next batch connects again).
pub enum Master {
    Url(Client),
    Sentinel(SentinelTarget),
}

impl Master {
    /// The master of a standalone Redis or of a Sentinel set (a cluster waits per key, with no
    /// waiter: `messages::cluster`).
    pub fn of(target: &RedisTarget) -> Result<Self, StoreError> {
        match target {
            RedisTarget::Standalone(url) => Ok(Self::Url(Client::open(url.as_str())?)),
            RedisTarget::Sentinel(sentinels) => Ok(Self::Sentinel(sentinels.clone())),
            RedisTarget::Cluster(_) => Err(StoreError::Refused(
                "a Redis Cluster has no single master to wait on".to_owned(),
            )),
        }
    }

    async fn client(&self) -> Result<Client, StoreError> {
        match self {
            Self::Url(client) => Ok(client.clone()),
            Self::Sentinel(target) => Ok(target.master(ProtocolVersion::RESP2).await?),
        }
    }
}

/// The batch task's own connection to the master and what it waits for.
pub struct Waiter {
    master: Master,
    conn: Option<redis::aio::MultiplexedConnection>,
    wait: WaitFor,
    status: ReplicaStatus,
}

impl Waiter {
    /// A waiter that connects to `master` when its first batch comes.
    pub fn new(master: Master, wait: WaitFor, status: ReplicaStatus) -> Self {
        Self {
            master,
            conn: None,
            wait,
            status,
        }
    }

    async fn connection(&mut self) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT))
            .set_response_timeout(Some(self.wait.timeout + SLACK));
        let conn = (self.master.client().await?)
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Sends `call` (the batch's script call) with a `WAIT`, then publishes or takes back.
    pub(super) async fn send(
        &mut self,
        script: &Script,
        call: &ScriptInvocation<'_>,
        batch: Vec<Job>,
    ) {
        // A master known short of replicas (the last batch's `WAIT`, or the watcher's count
        // every second): refused before any write, as on a cluster. Sent anyway, every batch
        // would hold its senders for the whole REDIS_WAIT_TIMEOUT_MS only to be taken back.
        if let Some(shortfall) = self.status.shortfall() {
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(StoreError::NotReplicated(shortfall.clone())));
            }
            return;
        }
        let mut conn = match self.connection().await {
            Ok(conn) => conn,
            Err(err) => return fail(batch, err),
        };
        let mut pipe = redis::pipe();
        pipe.invoke_script(call).add_command(self.wait.cmd());
        let mut reply = pipe.query_async::<(Vec<Value>, i64)>(&mut conn).await;
        // Redis lost its scripts (a restart): nothing of the call ran; load it and go again.
        if reply
            .as_ref()
            .is_err_and(|err| err.code() == Some("NOSCRIPT"))
        {
            reply = match script.load_async(&mut conn).await {
                Ok(_) => pipe.query_async(&mut conn).await,
                Err(err) => Err(err),
            };
        }
        let (results, confirmed) = match reply {
            Ok((results, confirmed)) if results.len() == batch.len() => (results, confirmed),
            Ok((results, _)) => {
                let err = format!("{} results for {} messages", results.len(), batch.len());
                return fail(batch, StoreError::Refused(err));
            }
            Err(err) => {
                // The script may have run before the connection failed: whatever of the batch
                // is stored is taken back (the removals are harmless where nothing was).
                self.conn = None;
                let stored = Value::Int(0);
                let everything = batch.iter().map(|job| (job, &stored));
                take_back(&mut self.connection().await.ok(), everything).await;
                return fail(batch, err.into());
            }
        };
        let enough = confirmed >= i64::from(self.wait.replicas);
        self.status
            .set((!enough).then(|| self.wait.shortfall(confirmed)));
        if enough {
            let published = publish(&mut conn, &batch, &results).await;
            let published = published.map_err(std::sync::Arc::new);
            for (job, result) in batch.into_iter().zip(results) {
                let outcome = answer(result).map(|answer| Appended {
                    answer,
                    published: published.clone().map_err(StoreError::Batch),
                });
                let _ = job.reply.send(outcome);
            }
        } else {
            take_back(&mut Some(conn), batch.iter().zip(&results)).await;
            let shortfall = self.wait.shortfall(confirmed);
            for (job, result) in batch.into_iter().zip(results) {
                let outcome =
                    answer(result).and_then(|_| Err(StoreError::NotReplicated(shortfall.clone())));
                let _ = job.reply.send(outcome);
            }
        }
    }
}

/// Publishes every stored message of the batch, in order, each after its introduction: every
/// channel with PUBLISH, in one pipeline. A channel the node may be alone on is published too
/// (the script's count is skipped): that node drops its own echo.
async fn publish(
    conn: &mut redis::aio::MultiplexedConnection,
    batch: &[Job],
    results: &[Value],
) -> Result<(), StoreError> {
    let mut pipe = Pipeline::new();
    let mut any = false;
    for (job, result) in batch.iter().zip(results) {
        let (Value::Int(answer), Some(deferred)) = (result, &job.deferred) else {
            continue;
        };
        let introduction = deferred.introduction.as_ref().filter(|_| *answer == 1);
        // 2: the recipient blocked the sender (store_messages.lua): the sender's tabs only.
        let only = (*answer == 2).then_some(deferred.sender_channel.as_str());
        for publication in introduction.into_iter().chain([&deferred.message]) {
            let channels = publication.channels.iter().chain(&publication.unless_alone);
            for channel in channels.filter(|channel| only.is_none_or(|only| *channel == only)) {
                pipe.cmd("PUBLISH")
                    .arg(channel)
                    .arg(&publication.payload)
                    .ignore();
                any = true;
            }
        }
    }
    if any {
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// Takes back the writes of every message the script stored (an `Int` result). A removal that
/// fails leaves that message stored although refused: logged, as it breaks the promise.
async fn take_back<'a>(
    conn: &mut Option<redis::aio::MultiplexedConnection>,
    stored: impl Iterator<Item = (&'a Job, &'a Value)>,
) {
    let mut pipe = Pipeline::new();
    let mut any = false;
    for (job, _) in stored.filter(|(_, result)| matches!(result, Value::Int(_))) {
        for write in job.deferred.iter().flat_map(|deferred| &deferred.writes) {
            match write {
                Write::Pushed { key, entry } => pipe.cmd("LREM").arg(key).arg(-1).arg(entry),
                Write::Added { key, member } => pipe.cmd("ZREM").arg(key).arg(member),
            }
            .ignore();
            any = true;
        }
    }
    if !any {
        return;
    }
    let Some(conn) = conn else {
        tracing::error!("refused messages left stored: no connection to take them back");
        return;
    };
    if let Err(err) = pipe.query_async::<()>(conn).await {
        tracing::error!(error = ?err, "refused messages left stored: taking them back failed");
    }
}
