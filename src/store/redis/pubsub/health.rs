//! The health check of the pub/sub connection: every half second (and at once when a
//! connection reports trouble), Redis is asked how many channels this node's connection holds
//! (`CLIENT INFO`, on every master of a cluster). Fewer than the node needs, and every wanted
//! channel is subscribed again; still failing after [`REBUILD_AFTER`], a cluster connection is
//! replaced by a new one, built on the cluster's current topology (through Sentinel: on the
//! master the sentinels name now; a check there also fails while the connection's Redis is no
//! longer the master).
//!
//! Why not trust the client library: after a whole cluster restarts, its resubscriptions can
//! fail (the cluster refuses them until it is whole again) and are not retried; a master that
//! gives a slot away unsubscribes its clients from the slot's channels, which the library then
//! forgets; after a failover its slot map can keep naming a dead master. In each case the node
//! would stop receiving cross-node traffic for good while every command still worked.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prometheus::IntGauge;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};

use super::Shared;

/// How often the subscriptions are checked.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a check may take. A Redis slower than this is not answering, as far as readiness
/// goes, but being slow is not broken: nothing is repaired for a timeout alone.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long subscribing every wanted channel again may take before the next check.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a cluster connection may keep failing its checks before it is replaced, and how
/// often it may be replaced. Short: after a failover, the connection is replaced until one is
/// built on the new topology (what a replaced connection was receiving is lost live meanwhile,
/// not from the histories).
const REBUILD_AFTER: Duration = Duration::from_secs(1);
/// How long building a new cluster connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this node receives cross-node traffic: its pub/sub connection answers and holds
/// every channel the node needs. Read by `/readyz`; mirrored by the `pubsub_connected` gauge.
#[derive(Clone)]
pub struct PubSubStatus {
    up: Arc<AtomicBool>,
    gauge: IntGauge,
    /// Other connections this one is read with ([`PubSubStatus::and`]).
    also: Vec<Arc<AtomicBool>>,
}

impl PubSubStatus {
    pub(super) fn new(gauge: IntGauge) -> Self {
        gauge.set(1);
        Self {
            up: Arc::new(AtomicBool::new(true)),
            gauge,
            also: Vec::new(),
        }
    }

    /// Up only while both this connection and `other` are (for `/readyz`).
    pub fn and(mut self, other: Self) -> Self {
        self.also.push(other.up);
        self.also.extend(other.also);
        self
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire) && self.also.iter().all(|up| up.load(Ordering::Acquire))
    }

    fn set(&self, up: bool, why: &str) {
        if self.up.swap(up, Ordering::AcqRel) != up {
            if up {
                tracing::info!("pub/sub connection healthy again: cross-node traffic resumes");
            } else {
                tracing::warn!(
                    why,
                    "pub/sub connection down: this node misses cross-node traffic"
                );
            }
        }
        self.gauge.set(i64::from(up));
    }
}

/// What a check found.
enum Check {
    /// Redis holds at least every channel the node needs.
    Whole,
    /// Redis answered, and some channels are missing.
    Missing { held: usize, needed: usize },
    /// Redis (or a master) answered with an error, or the connection is gone.
    Failed(redis::RedisError),
    /// No answer in time.
    Slow,
}

/// Checks and repairs `shared`'s connection until the node drops its pub/sub.
pub(super) async fn watch(shared: Arc<Shared>) {
    let mut tick = interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing_since: Option<Instant> = None;
    let mut last_rebuild = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.routes.alarm.notified() => {}
        }
        match check(&shared).await {
            Check::Whole => {
                failing_since = None;
                whole(&shared);
                continue;
            }
            Check::Slow => {
                shared.status.set(false, "Redis does not answer in time");
                continue;
            }
            Check::Missing { held, needed } => {
                tracing::debug!(held, needed, "subscriptions missing; subscribing again");
                shared.status.set(false, "subscriptions missing");
                repair(&shared).await;
            }
            Check::Failed(err) => {
                tracing::debug!(%err, "pub/sub check failed");
                shared.status.set(false, "Redis does not answer");
            }
        }
        // Still not whole after a while, even if every channel was subscribed again: the
        // connection's view of the cluster is wrong (a master it still counts on is gone).
        let since = *failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= REBUILD_AFTER
            && shared.can_rebuild()
            && last_rebuild.elapsed() >= REBUILD_AFTER
        {
            last_rebuild = Instant::now();
            if rebuild(&shared).await {
                repair(&shared).await;
            }
        }
        // Checked again at once, so that a repair shows without waiting for the next tick.
        if matches!(check(&shared).await, Check::Whole) {
            failing_since = None;
            whole(&shared);
        }
    }
}

/// The connection holds every wanted channel. After a spell without (a failed check, missing
/// channels, a lost connection the client repaired by itself), messages published meanwhile
/// were missed: [`super::PubSub::resumed`] says so, for those who must catch up from Redis.
fn whole(shared: &Shared) {
    let was_down = !shared.status.is_up();
    shared.status.set(true, "");
    if shared.routes.interrupted.swap(false, Ordering::AcqRel) || was_down {
        shared.resumed.send_modify(|times| *times += 1);
    }
}

async fn check(shared: &Shared) -> Check {
    // Compared with the smaller of the counts before and after the question, so that a
    // channel given up meanwhile does not look missing.
    let before = shared.confirmed_count();
    let conn = shared.conn();
    let held = match timeout(CHECK_TIMEOUT, conn.subscription_count()).await {
        Ok(Ok(held)) => held,
        Ok(Err(err)) => return Check::Failed(err),
        Err(_) => return Check::Slow,
    };
    let needed = before.min(shared.confirmed_count());
    if shared.has_refused() {
        // Wanted channels Redis has not taken: never counted as confirmed, so only this says
        // they are missing.
        Check::Missing {
            held,
            needed: needed.max(held + 1),
        }
    } else if held >= needed {
        Check::Whole
    } else {
        Check::Missing { held, needed }
    }
}

/// Subscribes every wanted channel again (Redis ignores a channel the connection already
/// holds).
async fn repair(shared: &Shared) {
    let _changing = shared.changing.lock().await;
    let wanted = shared.routes.wanted();
    if wanted.is_empty() {
        // Every channel given up since (Redis refuses a SUBSCRIBE of nothing): nothing is
        // missing, and nothing is left refused.
        shared.confirm_only(wanted);
        return;
    }
    let conn = shared.conn();
    match timeout(REPAIR_TIMEOUT, conn.subscribe(&wanted)).await {
        Ok(Ok(())) => {
            shared.confirm_only(wanted);
            shared.repairs.with_label_values(&["resubscribe"]).inc();
        }
        Ok(Err(err)) => tracing::debug!(%err, "cannot subscribe again yet"),
        Err(_) => tracing::debug!("subscribing again timed out"),
    }
}

/// Replaces the cluster connection by a new one. True once the new one is in place (it holds
/// no subscription yet).
async fn rebuild(shared: &Shared) -> bool {
    let _changing = shared.changing.lock().await;
    match timeout(CONNECT_TIMEOUT, shared.reconnect()).await {
        Ok(Ok(())) => {
            tracing::info!("pub/sub: replaced the connection (new topology or master)");
            shared.repairs.with_label_values(&["reconnect"]).inc();
            true
        }
        Ok(Err(err)) => {
            tracing::debug!(%err, "cannot open a new pub/sub connection yet");
            false
        }
        Err(_) => {
            tracing::debug!("opening a new pub/sub connection timed out");
            false
        }
    }
}
