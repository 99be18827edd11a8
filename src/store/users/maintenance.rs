//! Background upkeep of the user index: at start, index the sessions written by another server
//! (the Node.js one, or this one before the index existed); then, every [`PRUNE_EVERY`], drop
//! the usernames whose session has expired and that no search has met since.
//!
//! Both are idempotent (SET NX, ZADD of a member already there, ZREM of a member already gone),
//! so every node runs them and a restart runs them again without harm.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::UserIndex;
use crate::store::{
    StoreError,
    redis::{Conn, keys},
};

/// How often a node walks the whole username index for expired users. Searches prune what
/// they meet, so this only bounds how long an expired member that nobody searched for takes
/// room (a pass over 1,000,000 members costs ~1,000 pipelined round trips).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long a backfill that failed (Redis unreachable at start) waits before trying again.
const RETRY_EVERY: Duration = Duration::from_secs(30);

/// Keys or members handled per round trip.
const PAGE: usize = 1000;

/// Runs the backfill (until it succeeds), then the prune pass every [`PRUNE_EVERY`].
pub fn spawn(index: UserIndex) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match index.backfill().await {
                Ok(indexed) => {
                    tracing::info!(indexed, "user index backfilled");
                    break;
                }
                Err(err) => tracing::warn!(error = ?err, "cannot backfill the user index yet"),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match index.prune_expired().await {
                Ok(pruned) => tracing::info!(pruned, "user index pruned"),
                Err(err) => tracing::warn!(error = ?err, "cannot prune the user index"),
            }
        }
    })
}

impl UserIndex {
    /// Indexes every stored session that has no `privmsg:user:` key yet, a page at a time:
    /// the key with the session's remaining TTL, then the username. Returns how many sessions
    /// it saw.
    pub async fn backfill(&self) -> Result<usize, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut seen = 0;
        for route in conn.scan_routes().await? {
            let mut cursor = 0;
            loop {
                let (next, page) = conn
                    .scan_page(&route, cursor, keys::SESSION_PATTERN, PAGE)
                    .await?;
                seen += page.len();
                self.backfill_page(&conn, &page).await?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
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
        let mut pruned = 0;
        let mut cursor: u64 = 0;
        loop {
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
