//! Contacts (`USERS_SCOPE=contacts`): `privmsg:contacts:{userID}`, the set of users a user has
//! exchanged at least one message with, kept in Redis so that every node agrees and a restart
//! loses nothing. Written with the first message between two users, by the message log's append
//! ([`super::MessageLog`]); a user's history written before the set existed (by the Node.js
//! server) is folded in at its connect.

use std::time::Duration;

use super::{
    StoreError, UserEntry, UserIndex,
    redis::{RedisKind, RedisPool, keys, scripts},
};
use crate::domain::UserId;

/// The most contacts [`ContactStore::listed`] looks up inside one script call: each costs two
/// reads (~2 µs) during which Redis serves nobody else, so a set this large holds it ~1 ms.
const MAX_LOOKED_UP_IN_SCRIPT: usize = 512;

/// One member of a contact set, with its `users` entry; `None` when its user is gone.
pub type Listed = (String, Option<UserEntry>);

#[derive(Clone)]
pub struct ContactStore {
    pool: RedisPool,
    /// A contact set's time to live, restarted on every add and on each connect of its owner:
    /// as long as the longer of a session and a history, so that contacts outlive neither.
    ttl: Duration,
    /// How [`ContactStore::listed`] looks its contacts up, chosen from the pool's kind when
    /// built.
    lookup: Lookup,
}

/// The two ways to read a contact set with its members' entries.
#[derive(Clone, Copy)]
enum Lookup {
    /// A standalone Redis: one script call reads the set and every member's keys
    /// (`redis-scripts/contact_entries.lua`), up to [`MAX_LOOKED_UP_IN_SCRIPT`] members; the
    /// steps below past that.
    Script,
    /// A Redis Cluster: the members' keys sit on other slots than the set, where a script
    /// cannot reach them: single-key steps, three round trips.
    Steps,
}

impl ContactStore {
    /// A store whose sets live `ttl` (the message log, which writes them with a message,
    /// gets the same TTL: `MessageLimits::contact_ttl`).
    pub fn new(pool: RedisPool, ttl: Duration) -> Self {
        let lookup = match pool.kind() {
            RedisKind::Standalone => Lookup::Script,
            RedisKind::Cluster => Lookup::Steps,
        };
        Self { pool, ttl, lookup }
    }

    /// `user`'s contacts.
    pub async fn of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("SMEMBERS")
            .arg(keys::contacts(user))
            .query_async(&mut conn)
            .await?)
    }

    /// `user`'s contacts, each with its entry, and the set's TTL restarted (its owner is
    /// connecting). One script call on a standalone Redis (`redis-scripts/contact_entries.lua`)
    /// for a set of up to [`MAX_LOOKED_UP_IN_SCRIPT`]; else, and on a cluster, three round
    /// trips: the members, then their user keys, then their sessions (`index`).
    pub async fn listed(&self, user: &str, index: &UserIndex) -> Result<Vec<Listed>, StoreError> {
        if let Lookup::Script = self.lookup {
            let mut conn = self.pool.get().await?;
            type Row = (String, Option<String>, Option<String>);
            let rows: Option<Vec<Row>> = scripts::CONTACT_ENTRIES
                .key(keys::contacts(user))
                .arg(self.ttl.as_secs())
                .arg(keys::USER_PREFIX)
                .arg(keys::SESSION_PREFIX)
                .arg(MAX_LOOKED_UP_IN_SCRIPT)
                .invoke_async(&mut conn)
                .await?;
            if let Some(rows) = rows {
                return Ok(rows.into_iter().map(listed_row).collect());
            }
        }
        let members = self.of(user).await?;
        let peers: Vec<&str> = members.iter().map(String::as_str).collect();
        let (_, entries) = tokio::try_join!(self.keep(user, &[]), index.entries(&peers))?;
        Ok(members.into_iter().zip(entries).collect())
    }

    /// Adds `peers` (found in `user`'s history, missing from its set) and restarts the set's
    /// TTL.
    pub async fn keep(&self, user: &str, peers: &[&str]) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let key = keys::contacts(user);
        let mut cmds = Vec::with_capacity(2);
        if !peers.is_empty() {
            cmds.push(redis::cmd("SADD").arg(&key).arg(peers).to_owned());
        }
        cmds.push(
            redis::cmd("EXPIRE")
                .arg(&key)
                .arg(self.ttl.as_secs())
                .to_owned(),
        );
        conn.each::<redis::Value>(cmds).await?;
        Ok(())
    }
}

impl ContactStore {
    /// Erasure: takes `user` out of each of `peers`' contact sets, then deletes its own set
    /// (last, so that a run that failed part-way still finds the peers when run again).
    pub async fn forget(&self, user: &str, peers: &[String]) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let removals = peers
            .iter()
            .map(|peer| {
                redis::cmd("SREM")
                    .arg(keys::contacts(peer))
                    .arg(user)
                    .to_owned()
            })
            .collect();
        conn.each::<redis::Value>(removals).await?;
        let own = redis::cmd("DEL").arg(keys::contacts(user)).to_owned();
        conn.each::<redis::Value>(vec![own]).await?;
        Ok(())
    }
}

/// A row of `contact_entries.lua`: a username means the user is there.
fn listed_row((user, username, connected): (String, Option<String>, Option<String>)) -> Listed {
    let entry = username.map(|username| UserEntry {
        user_id: UserId::from_stored(user.clone()),
        username,
        connected: connected.as_deref() == Some("true"),
    });
    (user, entry)
}
