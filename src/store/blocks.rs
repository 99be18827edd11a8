//! Block lists (`block user`): `privmsg:blocks:…` sets, see [`keys::blocks`]. Every command
//! here touches one key, so all of it is valid on Redis Cluster. What a block list does to a
//! message is not here: the message's own writes read it (`store_messages.lua`,
//! `append_unless_blocked.lua`), so that checking costs no round trip of its own.

use std::collections::HashSet;

use super::{
    StoreError,
    redis::{RedisPool, keys, scripts},
};

/// Whether a block took: the whole list after it, or `Full` when the list holds its limit.
pub enum Blocked {
    List(Vec<String>),
    Full,
}

#[derive(Clone)]
pub struct BlockStore {
    pool: RedisPool,
    /// The most users one list may hold.
    limit: usize,
}

impl BlockStore {
    pub fn new(pool: RedisPool, limit: usize) -> Self {
        Self { pool, limit }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Adds `user` to `me`'s block list (kept until unblocked: no expiry).
    pub async fn block(&self, me: &str, user: &str) -> Result<Blocked, StoreError> {
        let mut conn = self.pool.get().await?;
        let list: Option<Vec<String>> = scripts::BLOCK_USER
            .key(keys::blocks(me))
            .arg(user)
            .arg(self.limit)
            .invoke_async(&mut conn)
            .await?;
        Ok(list.map_or(Blocked::Full, |mut list| {
            list.sort();
            Blocked::List(list)
        }))
    }

    /// Takes `user` off `me`'s block list; answers the list left.
    pub async fn unblock(&self, me: &str, user: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.pool.get().await?;
        let key = keys::blocks(me);
        let replies = conn
            .on_one_slot(vec![
                redis::cmd("SREM").arg(&key).arg(user).to_owned(),
                redis::cmd("SMEMBERS").arg(&key).to_owned(),
            ])
            .await?;
        let mut list: Vec<String> = match replies.get(1) {
            Some(reply) => redis::from_redis_value_ref(reply)?,
            None => Vec::new(),
        };
        list.sort();
        Ok(list)
    }

    /// `me`'s block list: read once per `users` or `search users` listing.
    pub async fn of(&self, me: &str) -> Result<HashSet<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("SMEMBERS")
            .arg(keys::blocks(me))
            .query_async(&mut conn)
            .await?)
    }

    /// Erasure (`DELETE /api/users/{userID}`): the user's own block list goes with it. Other
    /// users' lists that name it are theirs, and stay.
    pub async fn forget(&self, user: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        redis::cmd("DEL")
            .arg(keys::blocks(user))
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether `blocker` blocked `user` (for `typing`, not on a message's path).
    pub async fn holds(&self, blocker: &str, user: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("SISMEMBER")
            .arg(keys::blocks(blocker))
            .arg(user)
            .query_async(&mut conn)
            .await?)
    }
}
