//! Refused messages removed again from the histories they reached on a Redis Cluster
//! ([`super::cluster_append`]). One worker per node runs every removal: at once, then every
//! [`UNDO_EVERY`] while Redis refuses it, for up to [`UNDO_FOR`]; after a write timed out, once
//! more [`LATE_UNDO`] later, in case that write was on its way and landed after the first
//! removal. The removals it holds are bounded ([`MAX_PENDING`], counted by
//! `privmsg_message_undos_pending`), and a node that stops waits for them ([`Undos::finish`]):
//! a removal dropped with its process would leave a message answered `{ error }` ("neither
//! stored nor delivered") stored for good.
//!
//! The pending removals are not handed to another node through Redis: they are pending
//! because the cluster refuses writes, and a record of them would be refused alike.

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, future::join_all, stream::FuturesUnordered};
use prometheus::IntGauge;
use redis::{Cmd, Value};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch},
    time::{Instant, sleep_until, timeout},
};

use super::{
    cluster_append::APPEND_TIMEOUT,
    redis::{Conn, RedisPool},
};
use crate::metrics::Metrics;

/// How often a removal Redis refused is tried again.
const UNDO_EVERY: Duration = Duration::from_secs(1);
/// How long removals are tried before the node gives up (counted as `given_up`).
const UNDO_FOR: Duration = Duration::from_secs(600);
/// When a write timed out, how long after the refusal the message is removed once more.
const LATE_UNDO: Duration = Duration::from_secs(30);
/// The most refused messages whose removal a node holds; past it a refused message is left
/// where it reached (counted as `no_room`). Each holds its JSON twice (two histories) and
/// what their trims dropped (one older message each once a history is
/// full; more only just after `HISTORY_CAP` was lowered): under ~100 MB with messages of the
/// default `MAX_MESSAGE_BYTES`, a few MB for ordinary ones.
const MAX_PENDING: usize = 4096;

/// Where the node is in its life, as the worker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The node is stopping: a removal waiting for its late pass runs it at once.
    Finishing,
    /// The node stopped waiting ([`Undos::finish`] counted what was left): removals end.
    Abandoned,
}

/// The removals of one node's refused messages, kept by its cluster message log; clones share the
/// worker.
#[derive(Clone)]
pub struct Undos {
    queue: mpsc::UnboundedSender<Undo>,
    /// One permit per removal held, [`MAX_PENDING`] in all (the queue is bounded by it).
    room: Arc<Semaphore>,
    /// Messages whose writes are on their way plus removals not finished: a stopping node
    /// waits for it to fall to 0.
    busy: Arc<watch::Sender<usize>>,
    phase: Arc<watch::Sender<Phase>>,
    metrics: Metrics,
}

/// Held from the moment a message is queued for its writes until nothing of it can change a
/// history any more: its writes all succeeded, or it was removed again (or given up).
pub struct Busy(Arc<watch::Sender<usize>>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|busy| *busy = busy.saturating_sub(1));
    }
}

impl Undos {
    /// Starts the node's worker, which removes messages through `pool`.
    pub fn spawn(pool: RedisPool) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        let (phase, watched) = watch::channel(Phase::Running);
        let metrics = pool.metrics().clone();
        tokio::spawn(work(pool, pending, watched));
        Self {
            queue,
            room: Arc::new(Semaphore::new(MAX_PENDING)),
            busy: Arc::new(watch::Sender::new(0)),
            phase: Arc::new(phase),
            metrics,
        }
    }

    /// Marks a message as on its way to Redis, for as long as the guard (then its removal)
    /// lives: [`Undos::finish`] waits for it.
    pub fn begin(&self) -> Busy {
        self.busy.send_modify(|busy| *busy += 1);
        Busy(self.busy.clone())
    }

    /// Hands the worker the `removals` of a refused message, which it runs at once; `late`:
    /// one of its writes timed out, so it runs them once more [`LATE_UNDO`] later. `busy` is
    /// released once they are done.
    pub fn undo(&self, busy: Busy, removals: Vec<Cmd>, late: bool) {
        let Ok(room) = self.room.clone().try_acquire_owned() else {
            return self.metrics.undo_without_room(removals.len());
        };
        let refused = Instant::now();
        let undo = Undo {
            left: removals.clone(),
            all: removals,
            refused,
            late_at: late.then(|| refused + LATE_UNDO),
            _held: Held::new(busy, room, &self.metrics.message_undos_pending),
        };
        // The worker lives as long as the store, which holds `self`.
        let _ = self.queue.send(undo);
    }

    /// For a node that stops, once its sockets are closed (no new message can start): waits
    /// up to `within` until every message on its way is stored or refused, and every refused
    /// one is removed again (a removal waiting for its late pass runs it now). What is left
    /// then stays in the histories it reached: counted (`stopped`) and logged.
    pub async fn finish(&self, within: Duration) {
        self.phase.send_replace(Phase::Finishing);
        let mut busy = self.busy.subscribe();
        let waiting = *busy.borrow_and_update();
        if waiting == 0 {
            return;
        }
        tracing::info!(
            messages = waiting,
            "waiting for messages still being stored or removed before stopping"
        );
        if timeout(within, busy.wait_for(|busy| *busy == 0))
            .await
            .is_ok()
        {
            return;
        }
        self.phase.send_replace(Phase::Abandoned);
        let left = self.metrics.message_undos_pending.get();
        let left = u64::try_from(left).unwrap_or(0);
        self.metrics
            .messages_undone
            .with_label_values(&["stopped"])
            .inc_by(left);
        tracing::error!(
            messages = left,
            writing = (*busy.borrow() as u64).saturating_sub(left),
            "stopping before refused messages could be removed from every history they \
             reached: they stay there"
        );
    }
}

/// What a removal holds while it is pending: its place in the bound, the gauge, and the
/// node's wait.
struct Held {
    _busy: Busy,
    _room: OwnedSemaphorePermit,
    gauge: IntGauge,
}

impl Held {
    fn new(busy: Busy, room: OwnedSemaphorePermit, gauge: &IntGauge) -> Self {
        gauge.inc();
        Self {
            _busy: busy,
            _room: room,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// One refused message's removals.
struct Undo {
    /// The removals not done yet.
    left: Vec<Cmd>,
    /// Every removal, for the late pass.
    all: Vec<Cmd>,
    refused: Instant,
    /// When every removal is run once more (a write timed out).
    late_at: Option<Instant>,
    _held: Held,
}

impl Undo {
    /// Runs the removals at once, then every [`UNDO_EVERY`] while some fail, for up to
    /// [`UNDO_FOR`]; then once more at `late_at`, or at once when the node is stopping (its
    /// connections close with it, so no write of this message can land after it exits). Ends
    /// early when the node stops waiting (`finish` counts what is left).
    async fn run(mut self, pool: RedisPool, mut phase: watch::Receiver<Phase>, metrics: Metrics) {
        let (mut tries, mut counted) = (0, false);
        loop {
            if let Ok(conn) = pool.get().await {
                self.left = remove(&conn, std::mem::take(&mut self.left)).await;
            }
            if *phase.borrow() == Phase::Abandoned {
                return;
            }
            tries += 1;
            let again_at = if self.left.is_empty() {
                if !counted {
                    counted = true;
                    let when = if tries == 1 { "at_once" } else { "later" };
                    metrics.messages_undone.with_label_values(&[when]).inc();
                }
                let Some(at) = self.late_at.take() else {
                    return;
                };
                self.left = self.all.clone();
                Pause::Late(at)
            } else if self.refused.elapsed() >= UNDO_FOR {
                return given_up(&metrics, &self.left);
            } else {
                Pause::Retry(Instant::now() + UNDO_EVERY)
            };
            if !again_at.wait(&mut phase).await {
                return;
            }
        }
    }
}

/// Until when a removal waits before it runs again.
enum Pause {
    /// A late pass: cut short when the node is stopping.
    Late(Instant),
    /// A retry: waited out while the node waits for it.
    Retry(Instant),
}

impl Pause {
    /// False when the node stopped waiting meanwhile.
    async fn wait(self, phase: &mut watch::Receiver<Phase>) -> bool {
        let (at, cut_short) = match self {
            Self::Late(at) => (at, true),
            Self::Retry(at) => (at, false),
        };
        let ends = move |now: &Phase| match now {
            Phase::Running => false,
            Phase::Finishing => cut_short,
            Phase::Abandoned => true,
        };
        let stopping = tokio::select! {
            () = sleep_until(at) => return true,
            seen = phase.wait_for(ends) => seen.map(|now| *now),
        };
        match stopping {
            Ok(now) => now != Phase::Abandoned,
            // The store is gone, so nobody stops this node's wait: the pause runs out.
            Err(_) => {
                sleep_until(at).await;
                true
            }
        }
    }
}

/// The worker: runs the removals of every refused message as they come, concurrently.
async fn work(
    pool: RedisPool,
    mut queue: mpsc::UnboundedReceiver<Undo>,
    phase: watch::Receiver<Phase>,
) {
    let metrics = pool.metrics().clone();
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            undo = queue.recv() => match undo {
                Some(undo) => running.push(undo.run(pool.clone(), phase.clone(), metrics.clone())),
                None => break,
            },
            Some(()) = running.next(), if !running.is_empty() => {}
        }
    }
    // The store is gone: what was refused is still removed.
    while running.next().await.is_some() {}
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

/// Each removal (`take_back.lua` on a history, idempotent, so a removal that
/// landed but whose answer was lost is safely run again); returns those that failed.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedisTarget;

    /// Removals that never succeed (no Redis there): the node holds at most its bound of them,
    /// counts the one past it, and counts what it holds when it stops without them.
    #[tokio::test]
    async fn a_node_holds_at_most_its_bound_of_removals_and_counts_what_it_leaves() {
        let target = RedisTarget::Standalone("redis://127.0.0.1:1".into());
        let metrics = Metrics::new();
        let undos = Undos::spawn(RedisPool::new(&target, 1, metrics.clone()).expect("a pool"));
        let removal = || {
            vec![
                redis::cmd("LREM")
                    .arg("messages:a")
                    .arg(0)
                    .arg("{}")
                    .to_owned(),
            ]
        };
        let count = |when: &str| metrics.messages_undone.with_label_values(&[when]).get();

        for _ in 0..=MAX_PENDING {
            undos.undo(undos.begin(), removal(), false);
        }
        let pending = metrics.message_undos_pending.get();
        undos.finish(Duration::from_millis(50)).await;

        assert_eq!(pending, MAX_PENDING as i64);
        assert_eq!(count("no_room"), 1);
        assert_eq!(count("stopped"), MAX_PENDING as u64);
        assert_eq!(count("at_once") + count("later") + count("given_up"), 0);
    }
}
