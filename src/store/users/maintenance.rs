//! Background upkeep of the user index: index the sessions written by another server (the
//! Node.js one, or this one before the index existed), then drop the usernames whose session
//! has expired and that no search has met since.
//!
//! Both walk the whole keyspace (a million sessions: ~4 million commands), so one node of the
//! deployment runs them per [`UPKEEP_EVERY`], not every node at every start: whoever claims
//! [`keys::INDEX_UPKEEP`] first (SET NX, with the interval as TTL). Before, each node walked
//! every session at start, at full speed: measured with 1,000,000 stored, a restart kept Redis
//! ~0.7 core busy for minutes and doubled the connect and search latencies of everyone else.
//! The walk is also paced ([`PAGE_EVERY`]) so that the one that runs leaves Redis to the users.
//!
//! Both are idempotent (SET NX, ZADD of a member already there, ZREM of a member already gone),
//! so two nodes running them at once (a claim that expired mid-walk) do no harm.

use std::time::Duration;

use tokio::{task::JoinHandle, time::MissedTickBehavior};

use super::UserIndex;
use crate::store::{
    StoreError,
    redis::{Conn, keys, pacer},
};

/// How often the deployment's upkeep runs (on one node), and how long a claim of it lasts. A
/// session the Node.js server wrote meanwhile is found by search within this interval (or as
/// soon as its user connects here); an expired member nobody searched for takes room as long.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(3600);

/// How long a walk that failed (Redis unreachable) waits before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(30);

/// Keys or members handled per round trip: small, so that a page's commands hold Redis (and
/// the node's shared connection) for a fraction of a millisecond.
const PAGE: usize = 100;

/// At most one page per this: 2,500 keys a second, a pass over 1,000,000 sessions in ~7
/// minutes at 2 % of Redis's core (measured; pages of 1,000 per 100 ms took 6 %, and the
/// connects that met a page waited for it: BENCHMARKS.md, "Presence to the contacts online").
const PAGE_EVERY: Duration = Duration::from_millis(40);

/// Every [`UPKEEP_EVERY`], from `delay` after start (`INDEX_UPKEEP_DELAY_SECS`: not in the
/// reconnect storm of a restart): claims the upkeep for this interval and, if this node got
/// it, runs the backfill then the prune pass (until they succeed).
pub fn spawn(index: UserIndex, node: String, delay: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + delay;
        let mut tick = tokio::time::interval_at(first, UPKEEP_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            while let Err(err) = index.upkeep(&node).await {
                tracing::warn!(error = ?err, "cannot run the user index's upkeep yet");
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    })
}

impl UserIndex {
    /// The backfill then the prune pass, if `node` holds this interval's claim.
    async fn upkeep(&self, node: &str) -> Result<(), StoreError> {
        if !self.claim_upkeep(node).await? {
            tracing::debug!("the user index's upkeep is another node's this interval");
            return Ok(());
        }
        let indexed = self.backfill().await?;
        let pruned = self.prune_expired().await?;
        tracing::info!(indexed, pruned, "user index upkeep done");
        Ok(())
    }

    /// Whether `node` runs this interval's upkeep: it claimed it now, or did before (a retry
    /// after a failed walk). A claim lasts a little less than the interval, so that the
    /// claimer's next tick finds it expired.
    pub async fn claim_upkeep(&self, node: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await?;
        let hold = UPKEEP_EVERY.as_secs() - 60;
        let claimed: Option<String> = redis::cmd("SET")
            .arg(keys::INDEX_UPKEEP)
            .arg(node)
            .arg("NX")
            .arg("EX")
            .arg(hold)
            .query_async(&mut conn)
            .await?;
        if claimed.is_some() {
            return Ok(true);
        }
        let holder: Option<String> = redis::cmd("GET")
            .arg(keys::INDEX_UPKEEP)
            .query_async(&mut conn)
            .await?;
        Ok(holder.as_deref() == Some(node))
    }

    /// Indexes every stored session that has no `privmsg:user:` key yet, a page at a time:
    /// the key with the session's remaining TTL, then the username. Returns how many sessions
    /// it saw.
    pub async fn backfill(&self) -> Result<usize, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut walk = conn
            .walk_keys(keys::SESSION_PATTERN, PAGE, PAGE_EVERY)
            .await?;
        let mut seen = 0;
        while let Some(page) = walk.next_page().await? {
            seen += page.len();
            self.backfill_page(&conn, &page).await?;
        }
        Ok(seen)
    }

    async fn backfill_page(&self, conn: &Conn, sessions: &[String]) -> Result<(), StoreError> {
        let reads = sessions
            .iter()
            .map(|key| {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("userID")
                    .arg("username")
                    .to_owned()
            })
            .collect();
        let ttls = sessions
            .iter()
            .map(|key| redis::cmd("TTL").arg(key).to_owned())
            .collect();
        let (rows, ttls) = tokio::try_join!(
            conn.each::<(Option<String>, Option<String>)>(reads),
            conn.each::<i64>(ttls)
        )?;
        let (mut sets, mut members) = (Vec::new(), Vec::new());
        for ((key, (user, username)), ttl) in sessions.iter().zip(rows).zip(ttls) {
            let (Some(user), Some(session)) = (user, key.strip_prefix("session:")) else {
                continue;
            };
            // -2: gone meanwhile; -1: no TTL (not written by a server we know): the default.
            let ttl = match ttl {
                -2 | 0 => continue,
                -1 => self.session_ttl.as_secs(),
                ttl => ttl.unsigned_abs(),
            };
            let mut set = redis::cmd("SET");
            set.arg(keys::user(&user))
                .arg(session)
                .arg("EX")
                .arg(ttl)
                .arg("NX");
            sets.push(set);
            members.push(keys::username_member(&username.unwrap_or_default(), &user));
        }
        if members.is_empty() {
            return Ok(());
        }
        // The keys before the usernames, as in `record`.
        conn.each::<redis::Value>(sets).await?;
        let mut add = redis::cmd("ZADD");
        add.arg(keys::USERNAMES);
        for member in &members {
            add.arg(0).arg(member);
        }
        conn.each::<redis::Value>(vec![add]).await?;
        Ok(())
    }

    /// One pass over the username index: removes every member whose user key is gone.
    /// Returns how many it removed.
    pub async fn prune_expired(&self) -> Result<u64, StoreError> {
        let conn = self.pool.get().await?;
        let (mut pruned, mut pace) = (0, pacer(PAGE_EVERY));
        let mut cursor: u64 = 0;
        loop {
            pace.tick().await;
            let (next, flat): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(keys::USERNAMES)
                .arg(cursor)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut conn.clone())
                .await?;
            // ZSCAN answers member, score, member, score...
            let members: Vec<&str> = flat.iter().step_by(2).map(String::as_str).collect();
            let users: Vec<(&str, &str)> = members
                .iter()
                .filter_map(|m| Some((*m, keys::user_of_member(m)?)))
                .collect();
            let checks = users
                .iter()
                .map(|(_, user)| redis::cmd("EXISTS").arg(keys::user(user)).to_owned())
                .collect();
            let alive: Vec<bool> = conn.each(checks).await?;
            let expired: Vec<&str> = users
                .iter()
                .zip(alive)
                .filter_map(|((member, _), alive)| (!alive).then_some(*member))
                .collect();
            pruned += self.prune(&conn, &expired).await;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(pruned)
    }
}
