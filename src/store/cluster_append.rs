//! One message appended to histories that sit on different masters of a Redis Cluster, where
//! no script or transaction may span them: in all of them, or in none (PROTOCOL.md: `{ error }`
//! means neither stored nor delivered).
//!
//! The rule: every history's writes run at once, each bounded by [`APPEND_TIMEOUT`]. If any
//! fails or times out, the message is removed again from every history (`LREM` of its exact
//! JSON, unique by its id, so the removal touches nothing else and can be repeated) and from
//! its conversation's index (`ZREM` of its member), and the
//! caller refuses it. A removal that Redis cannot take at once (the cluster refuses while a
//! master is down) is retried every [`UNDO_EVERY`] in the background until it succeeds or
//! [`UNDO_FOR`] has passed. Why a timeout and not redis-rs's own retries: those back off for
//! minutes; a request whose caller gave up is dropped before its next retry (redis-rs 1.8), so
//! a write that timed out on a master that was down never lands later. One that was already on
//! the wire to a slow master may still land: such a message is removed once more
//! [`LATE_UNDO`] after the refusal.

use std::time::Duration;

use futures_util::future::join_all;
use redis::{Cmd, Value};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::{
    StoreError,
    redis::{Conn, RedisPool},
};
use crate::metrics::Metrics;

/// How long one history's writes may take before the message is refused.
const APPEND_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a removal Redis refused is tried again.
const UNDO_EVERY: Duration = Duration::from_secs(1);
/// How long removals are tried before the node gives up (counted as `given_up`).
const UNDO_FOR: Duration = Duration::from_secs(600);
/// When a write timed out, how long after the refusal the message is removed once more, in
/// case that write was on its way and landed after the first removal.
const LATE_UNDO: Duration = Duration::from_secs(30);

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
/// own master), or to none of them; `cap` is the most a history keeps.
pub async fn append_all(
    pool: &RedisPool,
    conn: &Conn,
    writes: Vec<HistoryWrites>,
    cap: usize,
) -> Result<Trims, StoreError> {
    let undos: Vec<Cmd> = writes.iter().map(|w| w.undo.clone()).collect();
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
    undo(pool.clone(), undos, late);
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

/// Removes the message from every history, in the background (the refusal does not wait for
/// it: nothing was published, so no client has seen the message): at once, then every
/// [`UNDO_EVERY`] while Redis refuses; after a timeout (`late`), once more [`LATE_UNDO`] later.
fn undo(pool: RedisPool, undos: Vec<Cmd>, late: bool) {
    tokio::spawn(async move {
        let metrics = pool.metrics().clone();
        let refused = Instant::now();
        let mut left = undos.clone();
        let mut again_at = late.then(|| refused + LATE_UNDO);
        let (mut tries, mut counted) = (0, false);
        loop {
            if let Ok(conn) = pool.get().await {
                left = remove(&conn, left).await;
            }
            tries += 1;
            if left.is_empty() {
                if !counted {
                    counted = true;
                    let when = if tries == 1 { "at_once" } else { "later" };
                    metrics.messages_undone.with_label_values(&[when]).inc();
                }
                match again_at.take() {
                    Some(at) => {
                        sleep_until(at).await;
                        left = undos.clone();
                        continue;
                    }
                    None => return,
                }
            }
            if refused.elapsed() >= UNDO_FOR {
                return given_up(&metrics, &left);
            }
            sleep(UNDO_EVERY).await;
        }
    });
}

fn given_up(metrics: &Metrics, left: &[Cmd]) {
    metrics
        .messages_undone
        .with_label_values(&["given_up"])
        .inc();
    tracing::error!(
        histories = left.len(),
        "gave up removing a refused message from a history: it is stored there only"
    );
}

/// Each removal (`LREM` from a history, `ZREM` from an index); returns those that failed.
async fn remove(conn: &Conn, undos: Vec<Cmd>) -> Vec<Cmd> {
    let removals = undos.iter().map(|cmd| async move {
        timeout(APPEND_TIMEOUT, conn.each::<Value>(vec![cmd.clone()])).await
    });
    let results = join_all(removals).await;
    undos
        .into_iter()
        .zip(results)
        .filter_map(|(undo, result)| (!matches!(result, Ok(Ok(_)))).then_some(undo))
        .collect()
}
