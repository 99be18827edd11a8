//! Private messages written to a standalone Redis in batches (the message log's
//! [`super::messages`] standalone implementation): one task per node takes every message
//! waiting when it is free, sends them in one `store_messages.lua` call, and hands each sender
//! its own outcome. Messages that arrive while a batch is on its way go in the
//! next one, so under load Redis reads, runs and answers many messages per system call and per
//! script call instead of one each. While messages keep coming, a batch also waits up to
//! `STORE_BATCH_DELAY_US` for more (as Kafka's `linger.ms`): fewer, larger calls, and bursts
//! of deliveries rather than one wake-up per message on every node (measured in
//! BENCHMARKS.md); a lone message goes at once ([`Linger`]).
//!
//! Each message stays all or nothing: the script undoes a message's own writes when one fails
//! and reports it, whatever happens to the others. A call that fails as a whole (Redis down,
//! timeout) stored none of its messages, and every one of them is refused.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use prometheus::Histogram;
use redis::{Script, Value};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

pub(super) use super::message_wait::Deferred;
use super::{StoreError, message_wait::Waiter, redis::RedisPool};

/// The most messages in one call: enough that a node at its highest rate needs few calls,
/// few enough that one script holds Redis for a few milliseconds at most.
const MAX_BATCH: usize = 128;

/// How many messages may wait for the batch task before senders wait for room.
const QUEUE: usize = 4096;

/// One message's part of a call, owned: its keys and its arguments, in the script's order.
pub(super) struct Job {
    pub(super) keys: Vec<String>,
    pub(super) args: Vec<Vec<u8>>,
    /// With REDIS_WAIT_REPLICAS, what to publish once the replicas confirm, and what to take
    /// back when they do not; `None` otherwise (the script publishes).
    pub(super) deferred: Option<Box<Deferred>>,
    queued: Instant,
    /// The script's answer for this message (an error: it is stored nowhere), and whether its
    /// publication reached Redis.
    pub(super) reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// What storing one message of a batch did.
pub struct Appended {
    /// The script's answer: 1 when the message made the recipient a contact of the sender.
    pub answer: i64,
    /// Whether its publications reached Redis (the message is stored either way).
    pub published: Result<(), StoreError>,
}

impl Appended {
    fn published(answer: i64) -> Self {
        Self {
            answer,
            published: Ok(()),
        }
    }
}

/// The sending side, kept by the standalone message log.
#[derive(Clone)]
pub struct MessageBatches {
    jobs: mpsc::Sender<Job>,
}

impl MessageBatches {
    /// Starts the batch task on `pool`, calling `script` with `head` (the arguments every
    /// message shares) then each message's own. `delay`: see [`Linger`]. With `waiter`
    /// (REDIS_WAIT_REPLICAS), each call goes on the waiter's own connection with its `WAIT`.
    pub fn spawn(
        pool: RedisPool,
        script: &'static LazyLock<Script>,
        head: Vec<Vec<u8>>,
        delay: Duration,
        waiter: Option<Waiter>,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let batcher = Batcher {
            sizes: pool.metrics().store_batch_messages.clone(),
            pool,
            script,
            head,
            delay,
            waiter,
        };
        tokio::spawn(batcher.run(queue));
        Self { jobs }
    }

    /// Stores one message (its `keys` and `args` as the script reads them), in the next
    /// batch; the script's answer for it. `deferred`: see [`Job::deferred`].
    pub async fn store(
        &self,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
        deferred: Option<Box<Deferred>>,
    ) -> Result<Appended, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            keys,
            args,
            deferred,
            queued: Instant::now(),
            reply,
        };
        queue_and_wait(&self.jobs, job, outcome).await
    }
}

/// Queues `job` for a batch task and waits for its answer on `outcome`; a batch task that is
/// gone (the node is stopping) answers [`StoreError::stopping`].
pub(super) async fn queue_and_wait<J, T>(
    jobs: &mpsc::Sender<J>,
    job: J,
    outcome: oneshot::Receiver<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    jobs.send(job).await.map_err(|_| StoreError::stopping())?;
    outcome
        .await
        .unwrap_or_else(|_| Err(StoreError::stopping()))
}

/// Whether a batch should wait `STORE_BATCH_DELAY_US` for more messages: only when others
/// are likely to come, so that a lone message (a quiet node) or a sender that waits for each
/// acknowledgement before the next (nothing else to gather) is not delayed for nothing.
#[derive(Debug)]
pub(super) struct Linger {
    /// When the newest message of the previous batch was queued.
    last: Option<Instant>,
    /// The last wait gathered something, or a batch filled up by itself since.
    paid: bool,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            last: None,
            paid: true,
        }
    }
}

impl Linger {
    /// Worth it when messages come closer together than the wait, and waiting last time
    /// gathered more. The wait runs from when `first` was queued: a batch that already waited
    /// for the previous call waits no more than that.
    fn worth_it(&self, first: Instant, delay: Duration) -> bool {
        !delay.is_zero()
            && self.paid
            && self
                .last
                .is_some_and(|last| first.saturating_duration_since(last) < delay)
    }
}

/// What waits in a batch queue: when it was queued.
pub(super) trait Queued {
    fn queued(&self) -> Instant;
}

impl Queued for Job {
    fn queued(&self) -> Instant {
        self.queued
    }
}

/// Fills `batch` (empty) with what `queue` holds, up to `max`, waiting up to `delay` for more
/// when [`Linger`] says it is worth it. False once the queue is closed and drained.
pub(super) async fn gather<J: Queued>(
    queue: &mut mpsc::Receiver<J>,
    batch: &mut Vec<J>,
    max: usize,
    linger: &mut Linger,
    delay: Duration,
) -> bool {
    if queue.recv_many(batch, max).await == 0 {
        return false;
    }
    let first = batch.first().map_or_else(Instant::now, Queued::queued);
    if linger.worth_it(first, delay) {
        let gathered = batch.len();
        let until = first + delay;
        while batch.len() < max {
            match tokio::time::timeout_at(until, queue.recv()).await {
                Ok(Some(job)) => batch.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        linger.paid = batch.len() > gathered;
    } else if batch.len() > 1 {
        linger.paid = true;
    }
    linger.last = batch.last().map(Queued::queued);
    true
}

struct Batcher {
    pool: RedisPool,
    script: &'static LazyLock<Script>,
    head: Vec<Vec<u8>>,
    delay: Duration,
    sizes: Histogram,
    /// REDIS_WAIT_REPLICAS, chosen at start: `None` sends each call as before.
    waiter: Option<Waiter>,
}

impl Batcher {
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut linger = Linger::default();
        while gather(&mut queue, &mut batch, MAX_BATCH, &mut linger, self.delay).await {
            self.sizes.observe(batch.len() as f64);
            self.send(std::mem::take(&mut batch)).await;
        }
    }

    /// One call for every job of `batch`; each job's reply gets its own outcome.
    async fn send(&mut self, batch: Vec<Job>) {
        let mut call = self.script.prepare_invoke();
        for arg in &self.head {
            call.arg(arg.as_slice());
        }
        for job in &batch {
            for key in &job.keys {
                call.key(key);
            }
            for arg in &job.args {
                call.arg(arg.as_slice());
            }
        }
        if let Some(waiter) = &mut self.waiter {
            return waiter.send(self.script, &call, batch).await;
        }
        let results = match self.pool.get().await {
            Ok(mut conn) => call.invoke_async::<Vec<Value>>(&mut conn).await,
            Err(err) => return fail(batch, err),
        };
        let results = match results {
            Ok(results) if results.len() == batch.len() => results,
            Ok(results) => {
                let err = StoreError::Refused(format!(
                    "{} results for {} messages",
                    results.len(),
                    batch.len()
                ));
                return fail(batch, err);
            }
            Err(err) => return fail(batch, err.into()),
        };
        for (job, result) in batch.into_iter().zip(results) {
            // A sender that gave up (its socket task was dropped) needs no answer.
            let _ = job.reply.send(answer(result).map(Appended::published));
        }
    }
}

/// The script's answer for one message: 1 or 0 when stored, else the refusal's text.
pub(super) fn answer(result: Value) -> Result<i64, StoreError> {
    match result {
        Value::Int(answer) => Ok(answer),
        Value::BulkString(text) => Err(StoreError::Refused(
            String::from_utf8_lossy(&text).into_owned(),
        )),
        other => Err(StoreError::Refused(format!("unexpected reply {other:?}"))),
    }
}

/// Every job of `batch` is told the call failed. Redis down, a refused connection: none of
/// them was stored. A reply lost after Redis ran the script (a timeout, a broken connection)
/// leaves them stored and published although refused, and so does a script error part-way
/// (an ACL that refuses a PUBLISH; a message's own failed write is its reply, not an error):
/// a known gap, the price of one call per batch.
pub(super) fn fail(batch: Vec<Job>, err: StoreError) {
    let err = Arc::new(err);
    for job in batch {
        let _ = job.reply.send(Err(StoreError::Batch(err.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_millis(5);

    #[test]
    fn a_batch_waits_only_while_messages_come_closer_than_the_wait_and_waiting_paid() {
        let now = Instant::now();
        let recent = Linger {
            last: Some(now - Duration::from_millis(1)),
            paid: true,
        };
        assert!(recent.worth_it(now, DELAY));
        assert!(!recent.worth_it(now, Duration::ZERO), "no wait asked for");
        assert!(
            !Linger::default().worth_it(now, DELAY),
            "the first message of a node"
        );
        let quiet = Linger {
            last: Some(now - Duration::from_millis(50)),
            paid: true,
        };
        assert!(
            !quiet.worth_it(now, DELAY),
            "a lone message after a quiet spell"
        );
        let unpaid = Linger {
            paid: false,
            ..recent
        };
        assert!(
            !unpaid.worth_it(now, DELAY),
            "the last wait gathered nothing"
        );
    }
}
