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

/// One history (or index) to append to: the writes (the push first; for a history, its reply
/// is the list's new length) that append there, the command that removes the message from it
/// again, and the one that keeps it bounded.
pub struct HistoryWrites {
    pub cmds: Vec<Cmd>,
    pub undo: Cmd,
    pub trim: Cmd,
}

/// What keeps the histories of a stored message bounded: run once every write took, never
/// before, since an undo after a trim would take the message back but not the oldest one the
/// trim dropped (the standalone scripts follow the same rule).
#[must_use]
pub struct Trims(Vec<Cmd>);

impl Trims {
    /// Trims every key when a history went over the cap (its index with it). A failure leaves
    /// a key one entry over its cap until the next append trims it: harmless, so not an error.
    pub async fn run(self, conn: &Conn) {
        if self.0.is_empty() {
            return;
        }
        let trims = self
            .0
            .into_iter()
            .map(|cmd| async move { timeout(APPEND_TIMEOUT, conn.on_one_slot(vec![cmd])).await });
        join_all(trims).await;
    }
}

/// Appends the message to every history in `writes` (each one's commands in order, on its
/// own master), or to none of them: when one fails, `undos` removes it from all of them again
/// (nothing was published, so no client has seen it), holding `busy` until it is done. `cap`
/// is the most a history keeps.
pub async fn append_all(
    undos: &Undos,
    busy: Busy,
    conn: &Conn,
    writes: Vec<HistoryWrites>,
    cap: usize,
) -> Result<Trims, StoreError> {
    let removals: Vec<Cmd> = writes.iter().map(|w| w.undo.clone()).collect();
    let (cmds, trims): (Vec<_>, Vec<_>) = writes.into_iter().map(|w| (w.cmds, w.trim)).unzip();
    let outcomes = join_all(
        cmds.into_iter()
            .map(|cmds| async move { timeout(APPEND_TIMEOUT, conn.on_one_slot(cmds)).await }),
    )
    .await;
    let mut failure = None;
    let mut late = false;
    let mut over_cap = false;
    for outcome in outcomes {
        match outcome {
            Ok(Ok(Value::Int(len))) => over_cap |= usize::try_from(len).is_ok_and(|n| n > cap),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => failure = failure.or(Some(err)),
            Err(_) => late = true,
        }
    }
    if failure.is_none() && !late {
        return Ok(Trims(if over_cap { trims } else { Vec::new() }));
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
