//! One message appended to histories that sit on different masters of a Redis Cluster, where
//! no script or transaction may span them: in all of them, or in none (PROTOCOL.md: `{ error }`
//! means neither stored nor delivered).
//!
//! The rule: every history's writes run at once, each bounded by [`APPEND_TIMEOUT`]. If any
//! fails or times out, the message is removed again from every history (`LREM` of its exact
//! JSON, unique by its id, so the removal touches nothing else and can be repeated) and from
//! its conversation's index (`ZREM` of its member), and the
//! caller refuses it. The removals run on the node's undo worker ([`super::undo`]), which
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
    redis::Conn,
    undo::{Busy, Undos},
};

/// How long one history's writes may take before the message is refused (and one removal
/// before it is tried again).
pub(super) const APPEND_TIMEOUT: Duration = Duration::from_secs(3);

/// One history (or index) to append to: its commands, in order (the append, then the read of
/// what the trim that follows it will drop, the trim, the expiry), the command that removes the
/// message again, and how to put back what the trim dropped.
pub struct HistoryWrites {
    pub cmds: Vec<Cmd>,
    pub undo: Cmd,
    pub put_back: PutBack,
}

/// Where the entries a trim dropped go back when the message is removed again: the trim runs
/// with the append (one request per history), so a refused message, taken back, would
/// otherwise take the oldest entry of a full history with it. The standalone script trims only
/// once every write took; here the dropped entries are read in the same pipeline and restored.
pub enum PutBack {
    /// A history (a list): back at its head, oldest first.
    List(String),
    /// A conversation's index (a sorted set, scores 0).
    Index(String),
}

impl PutBack {
    /// The command that restores `dropped` (the trim's entries, oldest first), if any.
    fn cmd(&self, dropped: &Value) -> Option<Cmd> {
        let Value::Array(entries) = dropped else {
            return None;
        };
        let entries: Vec<&[u8]> = entries
            .iter()
            .filter_map(|entry| match entry {
                Value::BulkString(bytes) => Some(bytes.as_slice()),
                _ => None,
            })
            .collect();
        if entries.is_empty() {
            return None;
        }
        Some(match self {
            Self::List(key) => {
                // LPUSH puts each argument at the head in turn: the newest first.
                let mut cmd = redis::cmd("LPUSH");
                cmd.arg(key);
                for entry in entries.iter().rev() {
                    cmd.arg(entry);
                }
                cmd
            }
            Self::Index(key) => {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(key);
                for entry in entries {
                    cmd.arg(0).arg(entry);
                }
                cmd
            }
        })
    }
}

/// Appends the message to every history in `writes` (each one's commands in order, on its
/// own master), or to none of them: when one fails, `undos` removes it from all of them again
/// and puts back what their trims dropped (nothing was published, so no client has seen it),
/// holding `busy` until it is done. A write that timed out answered nothing: what its trim may
/// have dropped is not known, so not put back.
pub async fn append_all(
    undos: &Undos,
    busy: Busy,
    conn: &Conn,
    writes: Vec<HistoryWrites>,
) -> Result<(), StoreError> {
    let mut removals: Vec<Cmd> = writes.iter().map(|w| w.undo.clone()).collect();
    let (cmds, put_backs): (Vec<_>, Vec<_>) =
        writes.into_iter().map(|w| (w.cmds, w.put_back)).unzip();
    let outcomes = join_all(
        cmds.into_iter()
            .map(|cmds| async move { timeout(APPEND_TIMEOUT, conn.on_one_slot(cmds)).await }),
    )
    .await;
    let mut failure = None;
    let mut late = false;
    for (outcome, put_back) in outcomes.into_iter().zip(put_backs) {
        match outcome {
            Ok(Ok(replies)) => removals.extend(replies.get(1).and_then(|d| put_back.cmd(d))),
            Ok(Err(err)) => failure = failure.or(Some(err)),
            Err(_) => late = true,
        }
    }
    if failure.is_none() && !late {
        return Ok(());
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
