//! Every node's worker: claims the deliveries that are due (a lease, so one node at a time
//! sends each, and another takes it over once the lease lapses after a crash), sends them at
//! most WEBHOOK_CONCURRENCY at once, and settles each: removed once delivered, read in time or
//! expired; otherwise due again after a growing delay. It runs beside messaging, never in its
//! way: a message only adds its jobs to its own writes.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use crate::store::{APPEND_TIMEOUT, StoreError};

use super::{
    On, Webhooks,
    config::{CREATED, UNREAD},
    job::{self, Job, MessageRef},
    queue::Current,
    send::{self, Outcome},
};

/// How often a node looks for due deliveries when it found none: a delivery waits at most
/// this long past its due time (and an idle node costs Redis 4 calls a second).
const POLL: Duration = Duration::from_millis(250);

/// How long a claim lasts: the 5 s a receiver has, and time to settle. A node that dies
/// mid-way leaves the delivery to the others once it lapses.
const LEASE: Duration = Duration::from_secs(15);

/// How long after its timestamp a message may still be on its way into its recipient's
/// history on a cluster: its appends are bounded by [`APPEND_TIMEOUT`] (and taken back with
/// its jobs when they fail), plus 2 s for the batch's wait and the nodes' clocks.
const IN_FLIGHT_AFTER: Duration = APPEND_TIMEOUT.saturating_add(Duration::from_secs(2));
/// How soon a job whose message was not found yet looks again.
const RECHECK: Duration = Duration::from_secs(1);

/// Whether `message`, not found in its recipient's history at `now_ms`, may still be on its
/// way there (see [`IN_FLIGHT_AFTER`]). A message without a timestamp (the Node server's) is
/// not: it was stored long ago.
fn unseen_yet(message: &MessageRef, now_ms: u64) -> bool {
    let after = IN_FLIGHT_AFTER.as_millis() as u64;
    message
        .timestamp
        .is_some_and(|stamp| now_ms < stamp.saturating_add(after))
}

/// The most deliveries claimed in one call.
const MOST_PER_CLAIM: usize = 64;

/// Runs the worker until the task is aborted.
pub async fn run(webhooks: Webhooks) {
    let Some(on) = webhooks.0.clone() else {
        return;
    };
    let permits = Arc::new(Semaphore::new(on.config.concurrency));
    let mut failures = 0u64;
    loop {
        // Room for one delivery at least, waited for up to a poll: a node whose deliveries
        // all hang claims none, but still reads the gauges (the queue's bound needs its size).
        let first = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.ok(),
            () = tokio::time::sleep(POLL) => None,
        };
        let free = match first {
            Some(_) => (1 + permits.available_permits()).min(MOST_PER_CLAIM),
            None => 0,
        };
        let now = job::now_ms();
        let lease_end = now.saturating_add(LEASE.as_millis() as u64);
        let claimed = match on.queue.claim(now, lease_end, free).await {
            Ok(claimed) => claimed,
            Err(err) => {
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(error = ?err, failures, "cannot claim webhook deliveries");
                }
                drop(first);
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        failures = 0;
        on.metrics.pending.set(claimed.pending as i64);
        on.pending.store(claimed.pending, Ordering::Relaxed);
        let overdue = claimed
            .lowest_ms
            .map_or(0, |lowest| now.saturating_sub(lowest) / 1000);
        on.metrics.oldest_pending.set(overdue as i64);
        // Fewer due than there was room for: the queue is drained for now.
        let drained = claimed.jobs.len() < free;
        let mut first = first;
        for member in claimed.jobs {
            let permit = match first.take() {
                Some(permit) => permit,
                None => match permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    // Cannot happen (no more claimed than there was room for): its lease
                    // lapses and it is claimed again.
                    Err(_) => break,
                },
            };
            let webhooks = webhooks.clone();
            tokio::spawn(async move {
                webhooks.settle(member).await;
                drop(permit);
            });
        }
        drop(first);
        if drained && free > 0 {
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Webhooks {
    /// Sends one claimed delivery and settles it in the queue.
    async fn settle(&self, member: String) {
        let Some(on) = self.0.as_deref() else {
            return;
        };
        on.metrics.in_flight.inc();
        self.attempt(&member).await;
        on.metrics.in_flight.dec();
    }

    async fn attempt(&self, member: &str) {
        let Some(on) = self.0.as_deref() else {
            return;
        };
        let (queue, metrics) = (&on.queue, &on.metrics);
        let Ok(mut job) = serde_json::from_str::<Job>(member) else {
            // Not ours to interpret: removed, so it is not claimed again forever.
            metrics.counted("unknown", "invalid");
            let _ = queue.remove(member).await;
            return;
        };
        // A label from our own constants, whatever the entry says.
        let kind = if job.kind == UNREAD { UNREAD } else { CREATED };
        let Ok(message) = serde_json::from_str::<MessageRef>(job.data.message.get()) else {
            metrics.counted(kind, "invalid");
            let _ = queue.remove(member).await;
            return;
        };
        match deliver(on, member, &mut job, &message, kind).await {
            Ok(result) => metrics.counted(kind, result),
            // Redis failed mid-way: the lease lapses and a node tries again.
            Err(err) => {
                tracing::warn!(error = ?err, "cannot settle a webhook delivery; retried later");
                metrics.counted(kind, "redis_error");
            }
        }
    }
}

/// Sends `job` (queued as `member`) unless it is a `message.unread` read in time, and settles
/// it: the result to count, or a Redis error (the lease lapses, a node tries again).
async fn deliver(
    on: &On,
    member: &str,
    job: &mut Job,
    message: &MessageRef,
    kind: &'static str,
) -> Result<&'static str, StoreError> {
    let queue = &on.queue;
    if kind == UNREAD {
        // Checked when due rather than removed by `messages read`: a read costs nothing more,
        // and most unread checks find the mark in one HGET.
        let mark = queue.read_mark(&message.to, &message.from).await?;
        let read = matches!((&mark, &message.id), (Some(mark), Some(id)) if mark >= id);
        if read {
            queue.remove(member).await?;
            return Ok("read");
        }
    }
    // The message as the recipient's history holds it now, and whether the recipient blocks
    // the sender, in one call (`Queue::current`): a recipient that blocks the sender hears
    // nothing of it, not even through a job written in the moment before a cluster takes it
    // back; a message deleted, or erased with its sender, is never sent; an edited one is sent
    // as it is now (the member, and so the delivery's id, unchanged).
    match queue
        .current(
            &message.to,
            &message.from,
            job.data.message.get(),
            message.id.as_deref(),
        )
        .await?
    {
        Current::Blocked => {
            queue.remove(member).await?;
            return Ok("blocked");
        }
        Current::Unchanged => {}
        Current::Edited(json) => match RawValue::from_string(json) {
            Ok(current) => job.data.message = current,
            Err(_) => {
                queue.remove(member).await?;
                return Ok("invalid");
            }
        },
        // On a cluster the job is written beside the message's appends, not after them: a
        // `message.created` claimed at once may be read before its history's append lands.
        // Looked for again until every append has either landed or been taken back with it.
        Current::Gone if unseen_yet(message, job::now_ms()) => {
            let due = job::now_ms().saturating_add(RECHECK.as_millis() as u64);
            queue.retry_at(member, due).await?;
            return Ok("unseen");
        }
        Current::Gone => {
            queue.remove(member).await?;
            return Ok("deleted");
        }
    }
    let entry = on.users.entries(&[message.to.as_str()]).await?;
    let Some(Some(entry)) = entry.into_iter().next() else {
        // Erased (or never a user here): nobody to tell about.
        queue.remove(member).await?;
        return Ok("gone");
    };
    job.data.recipient.username = Some(entry.username);
    let Ok(body) = serde_json::to_string(&job) else {
        queue.remove(member).await?;
        return Ok("invalid");
    };
    let config = &on.config;
    let outcome = send::post(&on.client, &config.url, &config.secret, kind, &job.id, body).await;
    let now = job::now_ms();
    match outcome {
        Outcome::Delivered => {
            queue.remove(member).await?;
            Ok("delivered")
        }
        Outcome::Failed(why) if job::expired(job.created_at, now) => {
            tracing::warn!(delivery = %job.id, %why, "a webhook failed for 24 h: dropped");
            queue.remove(member).await?;
            Ok("expired")
        }
        Outcome::Failed(why) => {
            let delay = job::retry_delay(job.created_at, now);
            tracing::debug!(delivery = %job.id, %why, ?delay, "a webhook failed");
            let due = now.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            queue.retry_at(member, due).await?;
            Ok("retry")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(timestamp: Option<u64>) -> MessageRef {
        MessageRef {
            from: "a".into(),
            to: "b".into(),
            id: Some("x".into()),
            timestamp,
        }
    }

    #[test]
    fn a_message_not_found_is_looked_for_again_only_while_it_may_be_on_its_way() {
        let after = IN_FLIGHT_AFTER.as_millis() as u64;
        assert!(unseen_yet(&message(Some(1_000)), 1_000));
        assert!(unseen_yet(&message(Some(1_000)), 1_000 + after - 1));
        assert!(!unseen_yet(&message(Some(1_000)), 1_000 + after));
        assert!(!unseen_yet(&message(None), 0), "a legacy message");
    }
}
