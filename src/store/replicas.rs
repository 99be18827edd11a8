//! REDIS_WAIT_REPLICAS: how many replicas must hold a message before it is acknowledged, and
//! whether every master has that many right now (for `/readyz`). The waiting itself is done by
//! the message logs ([`super::message_wait`] on a standalone Redis, a `WAIT` after each
//! history's writes on a cluster); this module keeps the node's view of
//! the replicas, refreshed by every batch's `WAIT` answer and by a watcher that asks the master
//! every [`WATCH_EVERY`] (so that `/readyz` turns back to ready while no message flows).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{StoreError, redis::RedisPool};

/// How often the watcher asks the master how many replicas it has.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What a message waits for: `replicas` replicas to confirm its writes within `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitFor {
    pub replicas: u32,
    pub timeout: Duration,
}

impl WaitFor {
    /// `None` when no replica is required (REDIS_WAIT_REPLICAS=0): messages go as before.
    pub fn of(replicas: u32, timeout: Duration) -> Option<Self> {
        (replicas > 0).then_some(Self { replicas, timeout })
    }

    /// `WAIT` for this many replicas within this timeout.
    pub(super) fn cmd(&self) -> redis::Cmd {
        let timeout = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        redis::cmd("WAIT")
            .arg(self.replicas)
            .arg(timeout)
            .to_owned()
    }

    /// Whether a `WAIT`'s reply says enough replicas confirmed.
    pub(super) fn confirmed(&self, reply: Option<&redis::Value>) -> Result<(), StoreError> {
        match reply {
            Some(redis::Value::Int(n)) if *n >= i64::from(self.replicas) => Ok(()),
            Some(redis::Value::Int(n)) => Err(StoreError::NotReplicated(self.shortfall(*n))),
            other => Err(StoreError::Refused(format!(
                "unexpected WAIT reply {other:?}"
            ))),
        }
    }

    /// The refusal of a batch whose writes `confirmed` replicas took in time.
    pub(super) fn shortfall(&self, confirmed: i64) -> String {
        format!(
            "{confirmed} of the {} replicas REDIS_WAIT_REPLICAS requires confirmed within {} ms",
            self.replicas,
            self.timeout.as_millis()
        )
    }
}

/// Why messages are refused right now, if they are: `None` while the master has as many
/// replicas as required (or none are). Shared by the message log, its watcher and `/readyz`.
#[derive(Clone, Default)]
pub struct ReplicaStatus(Arc<Mutex<Option<String>>>);

impl ReplicaStatus {
    /// Why `/readyz` says not ready, if it does.
    pub fn shortfall(&self) -> Option<String> {
        self.0.lock().ok().and_then(|reason| reason.clone())
    }

    pub(super) fn set(&self, reason: Option<String>) {
        if let Ok(mut current) = self.0.lock()
            && *current != reason
        {
            match &reason {
                Some(reason) => tracing::warn!(%reason, "messages refused: too few replicas"),
                None => tracing::info!("enough replicas again: messages accepted"),
            }
            *current = reason;
        }
    }

    /// Asks every master for its `connected_slaves` every [`WATCH_EVERY`], for as long as the
    /// node runs; a master that does not answer leaves the status as it was (`/readyz` has
    /// its own check of Redis).
    pub fn watch(&self, pool: RedisPool, wait: WaitFor) {
        let status = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WATCH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match connected_replicas(&pool).await {
                    Ok(count) if count >= u64::from(wait.replicas) => status.set(None),
                    Ok(count) => status.set(Some(format!(
                        "a Redis master has {count} connected replicas, REDIS_WAIT_REPLICAS \
                         requires {}",
                        wait.replicas
                    ))),
                    Err(err) => tracing::debug!(error = ?err, "INFO replication failed"),
                }
            }
        });
    }
}

/// The fewest `connected_slaves` a master reports in `INFO replication` (the one Redis, or
/// every master of a cluster).
async fn connected_replicas(pool: &RedisPool) -> Result<u64, StoreError> {
    let mut conn = pool.get().await?;
    let info = redis::cmd("INFO").arg("replication").to_owned();
    let replies = conn.on_every_master(info).await?;
    let counts = replies.into_iter().map(|reply| {
        let info: String = redis::from_redis_value(reply).ok()?;
        parse_connected(&info)
    });
    counts
        .collect::<Option<Vec<u64>>>()
        .and_then(|counts| counts.into_iter().min())
        .ok_or_else(|| StoreError::Refused("no connected_slaves".into()))
}

fn parse_connected(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix("connected_slaves:"))
        .and_then(|count| count.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_replica_required_is_no_wait() {
        assert_eq!(WaitFor::of(0, Duration::from_millis(200)), None);
        let wait = WaitFor::of(1, Duration::from_millis(200)).expect("a wait");
        assert!(wait.shortfall(0).starts_with("0 of the 1 replicas"));
    }

    #[test]
    fn the_count_is_read_from_info_replication() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=x\r\n";
        assert_eq!(parse_connected(info), Some(2));
        assert_eq!(parse_connected("role:slave\r\n"), None);
    }
}
