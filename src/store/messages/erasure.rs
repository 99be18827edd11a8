//! Erasure of a user's messages (the server API's `DELETE /api/users/{userID}`): what it sent
//! leaves its recipients' histories and their conversations' indexes; its own history goes
//! last. Single-key steps (`redis-scripts/erase_sent.lua` per key), each idempotent, so the
//! whole can run again after a failure part-way, on a standalone Redis and on a cluster alike.

use super::MessageStore;
use crate::{
    domain::UserId,
    store::{
        StoreError,
        redis::{keys, scripts},
    },
};

impl MessageStore {
    /// Removes every message `user` sent to each of `peers` from that peer's history and from
    /// their conversation's index (with the user's mark of it); returns how many entries went.
    pub async fn erase_sent(&self, user: &UserId, peers: &[String]) -> Result<u64, StoreError> {
        let mut conn = self.pool.get().await?;
        let user = user.as_str();
        let mark = keys::conversation_start(user);
        let mut removed = 0;
        for peer in peers.iter().filter(|peer| *peer != user) {
            let history: u64 = scripts::ERASE_SENT
                .key(keys::messages(peer))
                .arg("list")
                .arg(user)
                .arg(&mark)
                .invoke_async(&mut conn)
                .await?;
            let index: u64 = scripts::ERASE_SENT
                .key(keys::conversation(user, peer))
                .arg("index")
                .arg(user)
                .arg(&mark)
                .invoke_async(&mut conn)
                .await?;
            removed += history + index;
        }
        Ok(removed)
    }

    /// Deletes `user`'s own history, and the index of its notes to itself.
    pub async fn delete_history(&self, user: &UserId) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let user = user.as_str();
        let deletes = [keys::messages(user), keys::conversation(user, user)]
            .into_iter()
            .map(|key| redis::cmd("DEL").arg(key).to_owned())
            .collect();
        conn.each::<redis::Value>(deletes).await?;
        Ok(())
    }
}
