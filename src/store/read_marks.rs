//! Read marks (`messages read`): `privmsg:read:{userID}` hashes, see [`keys::read_marks`].
//! Every command touches one key, so all of it is valid on Redis Cluster.

use std::time::Duration;

use super::{
    StoreError,
    redis::{RedisPool, keys, scripts},
};
use crate::domain::{ReadMarks, UserId};

#[derive(Clone)]
pub struct ReadMarkStore {
    pool: RedisPool,
    /// As long as a contact set: the longer of a session and a history, restarted on every
    /// mark and every connect of the owner, so that unread counts outlive neither.
    ttl: Duration,
}

impl ReadMarkStore {
    pub fn new(pool: RedisPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    /// Moves `me`'s mark of its conversation with `with` up to `up_to` (never back), and the
    /// copy in `with`'s hash; returns the mark as it is now (a newer one may have been there).
    /// The two keys sit on different slots of a cluster: the copy is written after the mark,
    /// and both only ever move forward, so a copy a failure left behind is caught up by the
    /// next mark.
    pub async fn mark(
        &self,
        me: &UserId,
        with: &UserId,
        up_to: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.pool.get().await?;
        let mark: String = scripts::MARK_READ
            .key(keys::read_marks(me.as_str()))
            .arg(keys::read_field(with.as_str()).as_ref())
            .arg(up_to)
            .arg(self.ttl.as_secs())
            .invoke_async(&mut conn)
            .await?;
        if me != with {
            scripts::MARK_READ
                .key(keys::read_marks(with.as_str()))
                .arg(keys::read_by_field(me.as_str()))
                .arg(&mark)
                .arg(self.ttl.as_secs())
                .invoke_async::<String>(&mut conn)
                .await?;
        }
        Ok(mark)
    }

    /// `me`'s marks and its peers' marks of their conversations with `me`, in one read (and
    /// their time to live restarted).
    pub async fn of(&self, me: &UserId) -> Result<ReadMarks, StoreError> {
        let conn = self.pool.get().await?;
        let key = keys::read_marks(me.as_str());
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.ttl.as_secs())
            .ignore();
        let (fields,): (Vec<(String, String)>,) = pipe.query_async(&mut conn.clone()).await?;
        let mut marks = ReadMarks::default();
        for (field, mark) in fields {
            match keys::parse_read_field(&field) {
                Some((peer, true)) => marks.theirs.insert(peer, mark),
                Some((peer, false)) => marks.mine.insert(peer, mark),
                None => None,
            };
        }
        Ok(marks)
    }

    /// Erasure: removes the marks that name `user` from each of `peers`' hashes (how far the
    /// peer read its conversation with the user, and the copy of the user's own mark), then
    /// deletes the user's hash (last, so that a run that failed part-way still finds them).
    pub async fn forget(&self, user: &UserId, peers: &[String]) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let user = user.as_str();
        let removals = peers
            .iter()
            .map(|peer| {
                redis::cmd("HDEL")
                    .arg(keys::read_marks(peer))
                    .arg(keys::read_field(user).as_ref())
                    .arg(keys::read_by_field(user))
                    .to_owned()
            })
            .collect();
        conn.each::<redis::Value>(removals).await?;
        let own = redis::cmd("DEL").arg(keys::read_marks(user)).to_owned();
        conn.each::<redis::Value>(vec![own]).await?;
        Ok(())
    }
}
