//! One message appended to histories that sit on different masters of a Redis Cluster, where
//! no script or transaction may span them: in all of them, or in none (docs/protocol.md: `{ error }`
//! means neither stored nor delivered).
//!
//! The rule: every history's writes run at once, each bounded by [`APPEND_TIMEOUT`]. If any
//! fails or times out, the message is taken back out of every history (`take_back.lua`: `LREM`
//! of its exact JSON, unique by its id, and what the append's trim dropped put back, only if the message was still there, so the
//! removal touches nothing else and can be repeated), and the caller refuses it. The removals run on the node's undo worker ([`super::undo`]), which
//! tries again while the cluster refuses them (a master is down), and which a stopping node
//! waits for. Why a timeout and not redis-rs's own retries: those back off for minutes; a
//! request whose caller gave up is dropped before its next retry (redis-rs 1.8), so a write
//! that timed out on a master that was down never lands later. One that was already on the
//! wire to a slow master may still land: such a message is removed once more later.

use std::time::Duration;

use futures_util::future::join_all;
use redis::{Cmd, Value};
use tokio::time::timeout;

use super::{
    StoreError,
    redis::{Conn, scripts},
    replicas::WaitFor,
    undo::{Busy, Undos},
};

/// How long one history's writes may take before the message is refused (and one removal
/// before it is tried again).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(3);

/// One history to append to: its commands, in order (the append, then the read of
/// what the trim that follows it will drop, the trim, the expiry), and how to take the message
/// back out of it.
pub struct HistoryWrites {
    pub cmds: Vec<Cmd>,
    pub take_back: TakeBack,
}

/// How a refused message leaves one key again (`redis-scripts/take_back.lua`): removed, and
/// what the append's trim dropped put back, so that a refused message takes nothing else
/// with it (the trim runs with the append, one request per history; the standalone scripts
/// trim only once every write took). Idempotent: the undo worker may run it again.
pub struct TakeBack {
    kind: &'static str,
    key: String,
    entry: String,
}

impl TakeBack {
    /// From a history (a list): `json` is the message's entry.
    pub fn list(key: String, json: &str) -> Self {
        Self {
            kind: "list",
            key,
            entry: json.to_owned(),
        }
    }

    /// From the webhook queue (a sorted set): `job` is the delivery queued with the message.
    pub fn zset(key: String, job: &str) -> Self {
        Self {
            kind: "zset",
            key,
            entry: job.to_owned(),
        }
    }

    /// The removal, putting back `dropped` (the trim's read: an array of entries, oldest
    /// first), if known.
    fn cmd(&self, dropped: Option<&Value>) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::TAKE_BACK_SOURCE)
            .arg(1)
            .arg(&self.key)
            .arg(self.kind)
            .arg(&self.entry);
        if let Some(Value::Array(entries)) = dropped {
            for entry in entries {
                if let Value::BulkString(bytes) = entry {
                    cmd.arg(bytes.as_slice());
                }
            }
        }
        cmd
    }
}

/// Appends the message to every history in `writes` (each one's commands in order, on its
/// own master), or to none of them: when one fails, `undos` removes it from all of them again
/// and puts back what their trims dropped (nothing was published, so no client has seen it),
/// holding `busy` until it is done. A write that timed out answered nothing: what its trim may
/// have dropped is not known, so not put back. With `wait` (REDIS_WAIT_REPLICAS), each key's
/// commands end with a `WAIT` (on the same connection to its master: redis-rs routes a
/// pipeline by its first keyed command), and a key its replicas did not confirm fails the
/// message like a refused write. Answers the first reply of each write (the append's), in
/// order.
pub async fn append_all(
    undos: &Undos,
    busy: Busy,
    conn: &Conn,
    writes: Vec<HistoryWrites>,
    wait: Option<WaitFor>,
) -> Result<Vec<Value>, StoreError> {
    let (cmds, take_backs): (Vec<_>, Vec<_>) =
        writes.into_iter().map(|w| (w.cmds, w.take_back)).unzip();
    let outcomes = join_all(
        cmds.into_iter()
            .map(|cmds| async move { timeout(APPEND_TIMEOUT, conn.on_one_slot(cmds)).await }),
    )
    .await;
    let mut failure = None;
    let mut late = false;
    let mut removals = Vec::with_capacity(take_backs.len());
    let mut firsts = Vec::with_capacity(take_backs.len());
    for (outcome, take_back) in outcomes.into_iter().zip(take_backs) {
        match outcome {
            Ok(Ok(replies)) => {
                removals.push(take_back.cmd(replies.get(1)));
                if let Some(Err(err)) = wait.map(|wait| wait.confirmed(replies.last())) {
                    failure = failure.or(Some(err));
                }
                firsts.push(replies.into_iter().next().unwrap_or(Value::Nil));
            }
            Ok(Err(err)) => {
                failure = failure.or(Some(err));
                removals.push(take_back.cmd(None));
            }
            Err(_) => {
                late = true;
                removals.push(take_back.cmd(None));
            }
        }
    }
    if failure.is_none() && !late {
        return Ok(firsts);
    }
    undos.undo(busy, removals, late);
    Err(failure.unwrap_or_else(timed_out))
}

/// Runs `call` (cluster commands other than the appends: the publication, the contact sets)
/// within [`APPEND_TIMEOUT`], so that a master that is down fails it instead of redis-rs
/// retrying it for minutes while the client waits for its ack.
pub async fn bounded<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    timeout(APPEND_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

fn timed_out() -> StoreError {
    StoreError::Redis(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "a master of the cluster did not answer in time",
    )))
}
