//! Erasure of a user's sessions (the server API's `DELETE /api/users/{userID}`): every session
//! naming it, and every node's note of them.

use super::{SCAN_COUNT, SessionStore};
use crate::{
    domain::UserId,
    store::{StoreError, redis::keys},
};

impl SessionStore {
    /// Every stored session of `user`, by raw sessionID (for erasure: a user may have several,
    /// two first tokens racing on two nodes, or data another server wrote). A walk of every
    /// session, as a directory resync does: erasure is rare, and must miss none.
    pub async fn of_user(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.get().await?;
        let keys = conn.scan_keys(keys::SESSION_PATTERN, SCAN_COUNT).await?;
        let reads = keys
            .iter()
            .map(|key| redis::cmd("HGET").arg(key).arg("userID").to_owned())
            .collect();
        let owners: Vec<Option<String>> = conn.each(reads).await?;
        Ok(keys
            .into_iter()
            .zip(owners)
            .filter(|(_, owner)| owner.as_deref() == Some(user.as_str()))
            .filter_map(|(key, _)| key.strip_prefix(keys::SESSION_PREFIX).map(str::to_owned))
            .collect())
    }

    /// Deletes the sessions `ids` (raw sessionIDs). Idempotent. A node's presence index
    /// (socketID -> sessionID) names a session only while one of its sockets is open there:
    /// closing the user's sockets removes those entries (`session_disconnect.lua`), and a
    /// node's refresh drops any that a failed leave left behind.
    pub async fn delete(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let conn = self.pool.get().await?;
        let deletes = ids
            .iter()
            .map(|id| redis::cmd("DEL").arg(keys::session_raw(id)).to_owned())
            .collect();
        conn.each::<redis::Value>(deletes).await?;
        Ok(())
    }
}
